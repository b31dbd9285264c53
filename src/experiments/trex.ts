/**
 * `xbar experiment trex`'s design and report: TReX Table IV for several target delays (energy,
 * delay, area, EDAP, TOPS/W, TOPS/mm², ideal and non-ideal accuracy per hardware), the baselines
 * (weight sharing, token pruning) on the same cost model, data and training, a Pareto plot of
 * non-ideal accuracy against EDAP, and the patterns compared. The experiment runs as a sweep
 * (src/sweep/trex.ts: searches, trainings and evaluations as points in `OUT/results.duckdb`);
 * this module keeps what it compares and how it reports it.
 */
import { join } from 'node:path';
import { loadSpec } from '../analog/presets.js';
import type { CostTotals } from '../cost/cost.js';
import { reuseDelays } from '../methods/trex/search.js';
import type { Model } from '../models/index.js';
import type { Variants } from '../models/variants.js';
import { figure, scatterChart } from '../report/charts.js';
import { writeFigure } from '../report/render.js';
import { writeFileAtomic } from '../util/files.js';

export interface Baseline {
  name: string;
  kind: 'weight sharing' | 'token pruning';
  variants: Variants;
}

/** A model's cost and ideal and non-ideal accuracy per hardware. */
export interface TrexRow {
  cost: Record<string, CostTotals>;
  ideal: number;
  nonIdeal: Record<string, { mean: number; std: number }>;
}

/** A trained pattern: its held-out loss and ideal accuracy. */
export interface TrexPattern {
  label: string;
  kind: string;
  n: number;
  loss: number;
  ideal: number;
}

export interface TrexModel {
  name: string;
  group: 'baseline' | 'TReX' | 'weight sharing' | 'token pruning';
  dir: string;
  detail: string;
  /** The architecture relative to the original (for the cost model, which needs no weights). */
  variants: Variants;
}

/** Default baselines for `layers` encoders: adjacent pairs share; tokens pruned after a third of the stack. */
export function defaultBaselines(layers: number): Baseline[] {
  const pairs = Object.fromEntries(
    Array.from({ length: Math.floor(layers / 2) }, (_, k) => [2 * k + 1, 2 * k]),
  );
  const last: Record<number, number> = { [layers - 1]: layers - 2 };
  const third = Math.max(0, Math.floor(layers / 3) - 1);
  const every = Object.fromEntries(Array.from({ length: layers - 1 }, (_, i) => [i, 0.7]));
  return [
    { name: 'share pairs', kind: 'weight sharing', variants: { shareWeights: pairs } },
    { name: `share ${layers - 1}←${layers - 2}`, kind: 'weight sharing', variants: { shareWeights: last } },
    { name: `prune 0.5 after ${third}`, kind: 'token pruning', variants: { tokenKeep: { [third]: 0.5 } } },
    { name: 'prune 0.7 each', kind: 'token pruning', variants: { tokenKeep: every } },
  ];
}

/** The target delays that make Algorithm 1 pick N_reuse = 1..L−1 on `hw` (a hair above each delay). */
export function defaultTargets(model: Model, hw: string, seqLen?: number): number[] {
  return reuseDelays({ model, hw: loadSpec(hw), ...(seqLen === undefined ? {} : { seqLen }) })
    .slice(1)
    .map((d) => {
      const unit = 10 ** (Math.floor(Math.log10(d)) - 3); // 4 significant digits, rounded up
      return Number((Math.ceil((d * (1 + 1e-9)) / unit) * unit).toPrecision(4));
    });
}

const pct = (v: number | undefined) => (v === undefined ? '—' : (100 * v).toFixed(2));

/** What the report shows, as the experiment's stored points give it. */
export interface TrexReportInput {
  modelDir: string;
  /** The data's names: evaluation (ideal accuracy), brief training, held-out losses. */
  data: { eval: string; train: string; heldOut: string };
  /** Examples of the evaluation data (the ideal accuracy's). */
  evalSize: number;
  hardware: readonly string[];
  hwLimit: number;
  repeats: number;
  seed: number;
  epochs: number;
  finetune: boolean;
  models: readonly TrexModel[];
  rows: Readonly<Record<string, TrexRow>>;
  patterns: readonly TrexPattern[];
}

/** results.md (also printed), patterns.* and pareto-HW.* (Vega-Lite, SVG, PNG) in `out`. */
export async function writeTrexReport(out: string, r: TrexReportInput): Promise<void> {
  const { models, rows, patterns } = r;
  const lines: string[] = [`# TReX on ${r.modelDir}`, ''];
  lines.push(
    `Data: ${r.data.eval} (ideal), first ${Math.min(r.hwLimit, r.evalSize)} of it on hardware, ` +
      `${r.repeats} instance(s) from seed ${r.seed}; brief training on ${r.data.train}, ` +
      `${r.epochs} epoch(s), losses on ${r.data.heldOut}; noise-aware fine-tuning ${r.finetune ? 'on' : 'off'}.`,
    '',
  );
  for (const hw of r.hardware) {
    const base = rows['baseline']!.cost[hw]!;
    lines.push(`## ${hw}`, '');
    const head = [
      'model',
      'detail',
      'energy mJ',
      'delay ms',
      'area mm²',
      'EDAP',
      'EDAP ↓',
      'TOPS/W',
      'TOPS/mm²',
      'acc ideal %',
      'acc non-ideal %',
    ];
    const body = models.map((m) => {
      const r = rows[m.name]!;
      const c = r.cost[hw]!;
      const ni = r.nonIdeal[hw]!;
      return [
        m.name,
        m.detail,
        c.energyMJ.toPrecision(3),
        c.delayMs.toPrecision(3),
        c.areaMm2.toPrecision(4),
        c.edap.toPrecision(4),
        `${(base.edap / c.edap).toFixed(2)}×`,
        c.topsPerW.toPrecision(4),
        c.topsPerMm2.toPrecision(3),
        pct(r.ideal),
        `${pct(ni.mean)} ± ${pct(ni.std)}`,
      ];
    });
    lines.push(markdownTable(head, body), '');
  }
  lines.push(
    '## Patterns',
    '',
    markdownTable(
      ['pattern', 'kind', 'N_reuse', 'held-out loss', 'acc ideal %'],
      patterns.map((p) => [p.label, p.kind, String(p.n), p.loss.toFixed(4), pct(p.ideal)]),
    ),
    '',
  );
  const kinds = ['strided', 'continuous', 'pyramid'];
  const byN = [...new Set(patterns.map((p) => p.n))].sort();
  lines.push('Best ideal accuracy per kind and N_reuse (— : the kind does not fit this many encoders):', '');
  lines.push(
    markdownTable(
      ['N_reuse', ...kinds],
      byN.map((n) => [
        String(n),
        ...kinds.map((k) => {
          const v = patterns.filter((p) => p.n === n && p.kind === k).map((p) => p.ideal);
          return v.length ? pct(Math.max(...v)) : '—';
        }),
      ]),
    ),
    '',
  );
  writeFileAtomic(join(out, 'results.md'), `${lines.join('\n')}\n`);
  console.log(lines.join('\n'));

  if (patterns.length) {
    const chart = scatterChart({
      title: 'patterns: ideal accuracy after brief training',
      xTitle: 'N_reuse',
      yTitle: 'accuracy (%)',
      points: patterns.map((p) => ({
        series: p.kind,
        label: p.label.replace(/^\w+ /, ''),
        x: p.n,
        y: 100 * p.ideal,
      })),
    });
    await writeFigure(out, 'patterns', figure([[chart]]));
  }
  for (const hw of r.hardware) {
    const chart = scatterChart({
      title: `non-ideal accuracy vs EDAP on ${hw}`,
      xTitle: 'EDAP (mJ·ms·mm², log scale)',
      yTitle: 'accuracy (%)',
      logX: true,
      points: models.map((m) => ({
        series: m.group,
        label: m.name,
        x: rows[m.name]!.cost[hw]!.edap,
        y: 100 * rows[m.name]!.nonIdeal[hw]!.mean,
      })),
    });
    await writeFigure(out, `pareto-${hw}`, figure([[chart]]));
  }
}

function markdownTable(head: string[], body: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...body.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}
