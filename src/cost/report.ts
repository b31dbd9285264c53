/** Views of a CostReport: breakdowns by stage and component, text tables, JSON, and charts. */
import type { TopLevelSpec } from 'vega-lite';
import { barChart, colorMap, figure, pieChart } from '../report/charts.js';
import { table } from '../util/table.js';
import {
  COMPONENTS,
  type Component,
  type CostReport,
  STAGES,
  type Stage,
  type StageCost,
  total,
} from './cost.js';

/** Stage groups as TReX's Fig. 1 pies draw them. */
export const STAGE_LABELS: Record<Stage, string> = {
  patchEmbedding: 'patch embedding',
  norm1: 'LayerNorm',
  qkv: 'Q/K/V',
  kvWrite: 'K/V write',
  scores: 'QKᵀ',
  softmax: 'softmax',
  mix: 'S·V',
  tbNorm: 'transformation',
  tbLinear: 'transformation',
  tbActivation: 'transformation',
  projection: 'projection',
  norm2: 'LayerNorm',
  ffnIn: 'MLP',
  activation: 'MLP',
  ffnOut: 'MLP',
  classifier: 'head',
};

export const COMPONENT_LABELS: Record<Component, string> = {
  array: 'crossbar array',
  write: 'crossbar writes',
  adc: 'ADC',
  dac: 'DAC/drivers',
  shiftAdd: 'shift-add',
  buffer: 'score buffer',
  softmax: 'softmax unit',
  layerNorm: 'LayerNorm unit',
  activation: 'GELU unit',
  digitalMac: 'digital MACs',
  peripheral: 'PE/tile overhead',
};

export interface Share {
  energyPJ: number;
  delayNs: number;
  areaMm2: number;
  crossbars: number;
  macs: number;
}
const zero = (): Share => ({ energyPJ: 0, delayNs: 0, areaMm2: 0, crossbars: 0, macs: 0 });
const GROUPS = [...new Set(STAGES.map((s) => STAGE_LABELS[s]))];

/** g with stage s's totals added. */
function addStage(g: Share, s: StageCost): Share {
  g.energyPJ += total(s.energyPJ);
  g.delayNs += total(s.delayNs);
  g.areaMm2 += total(s.areaMm2);
  g.crossbars += s.crossbars;
  g.macs += s.macs;
  return g;
}

/** Totals per stage group (summed over encoders), in execution order. */
export function byStage(r: CostReport): Map<string, Share> {
  const out = new Map<string, Share>();
  for (const g of GROUPS) out.set(g, zero());
  for (const s of r.stages) addStage(out.get(STAGE_LABELS[s.stage])!, s);
  for (const [k, v] of out) if (!v.energyPJ && !v.delayNs && !v.areaMm2 && !v.macs) out.delete(k);
  return out;
}

export function byComponent(r: CostReport): Map<Component, Share> {
  const out = new Map<Component, Share>(COMPONENTS.map((c) => [c, zero()]));
  for (const s of r.stages)
    for (const key of ['energyPJ', 'delayNs', 'areaMm2'] as const)
      for (const [c, v] of Object.entries(s[key]) as [Component, number][]) out.get(c)![key] += v;
  for (const [k, v] of out) if (!v.energyPJ && !v.delayNs && !v.areaMm2) out.delete(k);
  return out;
}

/** Totals per encoder (null: patch embedding and heads). */
export function byLayer(r: CostReport): Map<number | null, Share> {
  const out = new Map<number | null, Share>();
  for (const s of r.stages) out.set(s.layer, addStage(out.get(s.layer) ?? zero(), s));
  return out;
}

const sig = (v: number, n = 4) => (v === 0 ? '0' : Math.abs(v) >= 10 ** n ? v.toFixed(0) : v.toPrecision(n));
const share = (v: number, of: number) => (of > 0 ? ((100 * v) / of).toFixed(1) : '0.0');

/**
 * The shares of the totals that rest on the FITTED constants: the softmax units' energy and delay
 * and the score buffers' area (their other parts are estimates).
 */
export function fittedShare(r: CostReport): { energy: number; delay: number; area: number } {
  const c = byComponent(r);
  const t = r.totals;
  return {
    energy: (c.get('softmax')?.energyPJ ?? 0) / (t.energyMJ * 1e9),
    delay: (c.get('softmax')?.delayNs ?? 0) / (t.delayMs * 1e6),
    area: (c.get('buffer')?.areaMm2 ?? 0) / t.areaMm2,
  };
}

/** The header lines: model, hardware, architecture, reuse. */
export function headerRows(r: CostReport): string[][] {
  const m = r.model;
  const a = r.architecture;
  const h = r.hardware;
  const reuse = r.reuse.length
    ? `encoders ${r.reuse.join(', ')} (${r.reuse.length}), transformation blocks ${r.transformationBlocks ? 'costed' : 'not costed'}`
    : 'none';
  return [
    [
      'model',
      `${m.name} (${m.layers} layers, d ${m.hidden}, ${m.heads} heads, ffn ${m.ffn}, ${m.tokens} tokens)`,
    ],
    [
      'hardware',
      `${h.name} (${h.technology}; attention ${h.attention === 'digital' ? 'digital' : `on ${h.attention} crossbars`}; ` +
        `${h.weightSlices} weight slices${h.kvSlices === null ? '' : `, ${h.kvSlices} K/V slices`}${r.beta === 1 ? '' : `, β ${r.beta}`})`,
    ],
    [
      'architecture',
      `crossbars/PE ${a.crossbarsPerPe}, PEs/tile ${a.pesPerTile}, columns/ADC ${a.colsPerAdc}, ` +
        `input bits/cycle ${a.inputBitsPerCycle}, PEs written at once ${a.concurrentWritePes}`,
    ],
    ['reuse', reuse],
  ];
}

/** The totals as label/value/unit rows (for `xbar cost`, and next to accuracy in `xbar eval`). */
export function totalsRows(r: CostReport): string[][] {
  const t = r.totals;
  return [
    ['energy', sig(t.energyMJ), 'mJ'],
    ['delay', sig(t.delayMs), 'ms'],
    ['area', sig(t.areaMm2), 'mm²'],
    ['EDAP', sig(t.edap), 'mJ·ms·mm²'],
    ['TOPS/W', sig(t.topsPerW), 'one MAC = one operation'],
    ['TOPS/mm²', sig(t.topsPerMm2), ''],
    [
      'MACs',
      sig(t.macs / 1e9),
      `G costed${t.uncostedMacs ? ` (+${sig(t.uncostedMacs / 1e9)} G in embedding/head, off the accelerator)` : ''}`,
    ],
    ['crossbars', String(t.crossbars), `in ${t.pes} PEs, ${t.tiles} tiles`],
  ];
}

/** The text report: header, a table per stage group and per component, totals, notes. */
export function formatCost(r: CostReport, o: { layers?: boolean } = {}): string {
  const t = r.totals;
  const [eT, dT, aT] = [t.energyMJ * 1e9, t.delayMs * 1e6, t.areaMm2];
  const rows = (m: Map<string, Share>, label: (k: string) => string, counts: boolean) =>
    [...m].map(([k, v]) => [
      label(k),
      sig(v.energyPJ * 1e-6),
      share(v.energyPJ, eT),
      sig(v.delayNs * 1e-3),
      share(v.delayNs, dT),
      sig(v.areaMm2),
      share(v.areaMm2, aT),
      ...(counts ? [String(v.crossbars), sig(v.macs / 1e9, 3)] : []),
    ]);
  const cols = ['energy µJ', '%', 'delay µs', '%', 'area mm²', '%'];
  const parts = [
    table(headerRows(r)),
    '',
    table(
      rows(byStage(r), (k) => k, true),
      ['stage', ...cols, 'crossbars', 'GMAC'],
    ),
    '',
    table(
      rows(byComponent(r) as Map<string, Share>, (k) => COMPONENT_LABELS[k as Component], false),
      ['component', ...cols],
    ),
  ];
  if (o.layers) {
    const layerRows = [...byLayer(r)].map(([l, v]) => [
      l === null ? 'embedding/head' : `${l}${r.reuse.includes(l) ? ' (reuse)' : ''}`,
      sig(v.energyPJ * 1e-6),
      sig(v.delayNs * 1e-3),
      sig(v.areaMm2),
      String(v.crossbars),
    ]);
    parts.push('', table(layerRows, ['encoder', 'energy µJ', 'delay µs', 'area mm²', 'crossbars']));
  }
  parts.push('', table(totalsRows(r)));
  const f = fittedShare(r);
  parts.push(
    '',
    `fitted: ${share(f.energy, 1)}% of the energy, ${share(f.delay, 1)}% of the delay and ${share(f.area, 1)}% of ` +
      'the area rest on constants solved from TReX Table IV (docs/cost-model.md §3)',
  );
  if (r.notes.length) parts.push('', ...r.notes.map((n) => `note: ${n}`));
  return parts.join('\n');
}

/**
 * One row per report in the layout of TReX's Table IV (its rows differ in how many encoders reuse
 * attention), with EDAP, TOPS/W and TOPS/mm² also as ratios to the first row.
 */
export function reuseTable(reports: readonly CostReport[]): string {
  const base = reports[0]!.totals;
  const ratio = (v: number, of: number, digits: number) => `${(v / of).toFixed(digits)}×`;
  const rows = reports.map(({ reuse, totals: t }) => [
    String(reuse.length),
    sig(t.energyMJ),
    sig(t.delayMs),
    sig(t.areaMm2),
    sig(t.edap),
    ratio(base.edap, t.edap, 2),
    sig(t.topsPerW),
    ratio(t.topsPerW, base.topsPerW, 3),
    sig(t.topsPerMm2),
    ratio(t.topsPerMm2, base.topsPerMm2, 2),
  ]);
  const head = [
    'N_reuse',
    'energy mJ',
    'delay ms',
    'area mm²',
    'EDAP',
    'EDAP ↓',
    'TOPS/W',
    '↑',
    'TOPS/mm²',
    '↑',
  ];
  const r0 = reports[0]!;
  const tb = ['transformation blocks', r0.transformationBlocks ? 'costed' : 'not costed'];
  return [table([...headerRows(r0).slice(0, 3), tb]), '', table(rows, head)].join('\n');
}

/** JSON for `--json` and cost.json: totals with units in the key names, then the breakdowns. */
export function costJson(r: CostReport): Record<string, unknown> {
  const t = r.totals;
  const shares = (m: Map<string, Share>) =>
    Object.fromEntries(
      [...m].map(([k, v]) => [
        k,
        {
          energy_pJ: v.energyPJ,
          delay_ns: v.delayNs,
          area_mm2: v.areaMm2,
          crossbars: v.crossbars,
          macs: v.macs,
        },
      ]),
    );
  return {
    energy_mJ: t.energyMJ,
    delay_ms: t.delayMs,
    area_mm2: t.areaMm2,
    edap: t.edap,
    tops_per_w: t.topsPerW,
    tops_per_mm2: t.topsPerMm2,
    macs: t.macs,
    uncosted_macs: t.uncostedMacs,
    crossbars: t.crossbars,
    pes: t.pes,
    tiles: t.tiles,
    model: r.model,
    hardware: r.hardware,
    architecture: r.architecture,
    reuse: r.reuse,
    transformation_blocks: r.transformationBlocks,
    beta: r.beta,
    by_stage: shares(byStage(r)),
    by_component: shares(byComponent(r) as Map<string, Share>),
    stages: r.stages.map((s: StageCost) => ({
      layer: s.layer,
      stage: s.stage,
      macs: s.macs,
      crossbars: s.crossbars,
      energy_pJ: s.energyPJ,
      delay_ns: s.delayNs,
      area_mm2: s.areaMm2,
    })),
    notes: r.notes,
  };
}

/** Pies of energy, delay and area by stage (as TReX's Fig. 1) and bars by component, as one Vega-Lite figure. */
export function breakdownChart(r: CostReport): TopLevelSpec {
  const stages = byStage(r);
  const t = r.totals;
  // colours by summed share of the three pies, so the big slices get the clearest colours
  const weight = (s: Share) =>
    s.energyPJ / (t.energyMJ * 1e9) + s.delayNs / (t.delayMs * 1e6) + s.areaMm2 / t.areaMm2;
  const colors = colorMap([...stages].sort((a, b) => weight(b[1]) - weight(a[1])).map(([k]) => k));
  type Measure = [what: string, pick: (s: Share) => number, unit: string];
  const energy: Measure = ['Energy', (s) => s.energyPJ * 1e-6, 'µJ'];
  const delay: Measure = ['Delay', (s) => s.delayNs * 1e-3, 'µs'];
  const area: Measure = ['Area', (s) => s.areaMm2, 'mm²'];
  const format = (unit: string) => (v: number) => `${sig(v, 3)} ${unit}`;
  const pie = ([what, pick, unit]: Measure) =>
    pieChart({
      title: `${what} by stage`,
      data: [...stages].map(([label, s]) => ({ label, value: pick(s) })),
      format: format(unit),
      colors,
    });
  const comps = byComponent(r);
  const bars = ([what, pick, unit]: Measure) =>
    barChart({
      title: `${what} by component`,
      data: [...comps].map(([c, s]) => ({ label: COMPONENT_LABELS[c], value: pick(s) })),
      xTitle: `${what.toLowerCase()} (${unit})`,
      format: format(unit),
      colors: colorMap(COMPONENTS.map((c) => COMPONENT_LABELS[c])),
    });
  const title =
    `${r.model.name} on ${r.hardware.name}${r.reuse.length ? `, ${r.reuse.length} encoders reuse attention` : ''}: ` +
    `${sig(t.energyMJ, 3)} mJ, ${sig(t.delayMs, 3)} ms, ${sig(t.areaMm2, 4)} mm², EDAP ${sig(t.edap, 4)}`;
  return figure([[energy, delay, area].map(pie), [energy, area].map(bars)], { title });
}
