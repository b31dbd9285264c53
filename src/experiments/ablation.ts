/**
 * The ablation of a hardware spec: accuracy with each of its non-idealities alone and with all
 * but one, next to the ideal model and the full spec, every row on the same examples and the same
 * Monte Carlo instances (seeds), so that rows compare as paired differences. Each row is the spec
 * with `--set` assignments that switch non-idealities off (`switchOff`), which the report lists
 * so any row can be rerun with `xbar eval`. This module is the design (the rows and their
 * assignments) and the report; the rows' instances run as a sweep's points (sweep/ablation.ts),
 * each calibrated and evaluated as `xbar eval --hw … --set … --seed S` does.
 */
import { join } from 'node:path';
import { loadSpec } from '../analog/presets.js';
import type { ResolvedSpec } from '../analog/resolve.js';
import type { Crossbar } from '../analog/spec.js';
import type { Model } from '../models/index.js';
import { figure, intervalChart } from '../report/charts.js';
import { writeFigure } from '../report/render.js';
import { InputError } from '../util/errors.js';
import { writeFileAtomic } from '../util/files.js';
import { type CellRecord, interval95, pairedDifferences, signedInterval, withInterval } from './cells.js';

export const NONIDEALITIES = [
  'dac',
  'adc',
  'bound-management',
  'read-noise',
  'write-noise',
  'programming-noise',
  'drift',
  'output-noise',
  'weight-quantization',
  'weight-clip',
] as const;
export type NonIdeality = (typeof NONIDEALITIES)[number];

/**
 * Each non-ideality: what it is, the field that switches it and its off value, whether it acts on
 * the static crossbars, on the K/V ones (attention on crossbars) or on both, and when a crossbar has it.
 */
const SWITCHES: Record<
  NonIdeality,
  { label: string; field: string; off: string; on: (x: Crossbar) => boolean; where: 'both' | 'static' | 'kv' }
> = {
  dac: { label: 'DAC', field: 'dac.kind', off: 'ideal', on: (x) => x.dac.kind !== 'ideal', where: 'both' },
  adc: { label: 'ADC', field: 'adc.kind', off: 'ideal', on: (x) => x.adc.kind !== 'ideal', where: 'both' },
  'bound-management': {
    label: 'bound management',
    field: 'adc.boundManagement.kind',
    off: 'none',
    on: (x) => x.adc.kind === 'uniform' && x.adc.boundManagement.kind !== 'none',
    where: 'both',
  },
  'read-noise': {
    label: 'read noise',
    field: 'readNoise.kind',
    off: 'none',
    on: (x) => x.readNoise.kind !== 'none',
    where: 'both',
  },
  'write-noise': {
    label: 'K/V write noise',
    field: 'program.kind',
    off: 'none',
    on: (x) => x.program.kind !== 'none',
    where: 'kv',
  },
  'programming-noise': {
    label: 'programming noise',
    field: 'program.kind',
    off: 'none',
    on: (x) => x.program.kind !== 'none',
    where: 'static',
  },
  drift: {
    label: 'drift',
    field: 'drift.kind',
    off: 'none',
    on: (x) => x.drift.kind !== 'none',
    where: 'both',
  },
  'output-noise': {
    label: 'output noise',
    field: 'outputNoise.kind',
    off: 'none',
    on: (x) => x.outputNoise.kind !== 'none',
    where: 'both',
  },
  'weight-quantization': {
    label: 'weight quantisation',
    field: 'cells.kind',
    off: 'analog',
    on: (x) => x.cells.kind !== 'analog',
    where: 'both',
  },
  'weight-clip': {
    label: 'weight clipping',
    field: 'mapping.clip.kind',
    off: 'none',
    on: (x) => x.mapping.clip.kind !== 'none',
    where: 'both',
  },
};

/** Bound management reruns conversions the ADC saturated: without the ADC it does nothing. */
const REQUIRES: Partial<Record<NonIdeality, NonIdeality>> = { 'bound-management': 'adc' };

const labelOf = (n: NonIdeality): string => SWITCHES[n].label;

/** The static crossbars' fields of a spec (its base: the ablation refuses per-layer overrides of them). */
const staticCrossbar = (hw: ResolvedSpec): Crossbar => hw.spec;

/** The non-idealities `hw` has, on its static crossbars or on the K/V ones, in NONIDEALITIES order. */
export function nonIdealitiesOf(hw: ResolvedSpec): NonIdeality[] {
  return NONIDEALITIES.filter((n) => {
    const s = SWITCHES[n];
    return (
      (s.where !== 'kv' && s.on(staticCrossbar(hw))) ||
      (s.where !== 'static' && !!hw.attention && s.on(hw.attention))
    );
  });
}

/**
 * The `--set` assignments that switch `off` non-idealities of `hw` off and leave the rest as they
 * are: on the base fields (the static crossbars, which K/V inherit), and on `attention.device`
 * where the K/V crossbars set the field themselves. Static programming noise off keeps the K/V
 * writes K/V inherited from it.
 */
export function switchOff(hw: ResolvedSpec, off: ReadonlySet<NonIdeality>): string[] {
  const { attention } = hw;
  const device = hw.spec.attention.kind === 'crossbar' ? hw.spec.attention.device : {};
  const sets: string[] = [];
  for (const n of NONIDEALITIES) {
    const s = SWITCHES[n];
    // the ADC switched off takes what depends on it along
    if (!off.has(n) || (REQUIRES[n] && off.has(REQUIRES[n]))) continue;
    const assignment = `${s.field}=${s.off}`;
    if (s.where !== 'kv' && s.on(staticCrossbar(hw))) sets.push(assignment);
    const own = s.where === 'kv' || s.field.split('.')[0]! in device;
    if (s.where !== 'static' && attention && s.on(attention) && own)
      sets.push(`attention.device.${assignment}`);
  }
  const inherited = attention && attention.program.kind !== 'none' && !('program' in device);
  if (inherited && off.has('programming-noise') && !off.has('write-noise'))
    sets.push(`attention.device.program=${JSON.stringify(attention.program)}`);
  return sets;
}

/**
 * The user's `sets` that a row keeps: a switch-off that sets a field's kind (`adc.kind=ideal`)
 * replaces that field, so the user's assignments of its other fields (`adc.bits=8`) go with it
 * (an ideal ADC has no bits).
 */
export function keptSets(sets: readonly string[], offs: readonly string[]): string[] {
  const replaced = offs.map((a) => a.split('=')[0]!.trim()).filter((f) => f.endsWith('.kind'));
  const under = (s: string, f: string) => s.trim().startsWith(f.slice(0, -'kind'.length));
  return sets.filter((s) => !replaced.some((f) => under(s, f)));
}

/**
 * `hw` (a preset or spec file with `sets`) with the non-idealities `off` switched off, checked to
 * have exactly the others left.
 */
export function specWithout(
  hw: string,
  sets: readonly string[],
  off: ReadonlySet<NonIdeality>,
  model?: Model,
): ResolvedSpec {
  const full = loadSpec(hw, sets, model);
  const offs = switchOff(full, off);
  const spec = loadSpec(hw, [...keptSets(sets, offs), ...offs], model);
  const want = nonIdealitiesOf(full).filter((n) => !off.has(n) && !(REQUIRES[n] && off.has(REQUIRES[n])));
  const got = nonIdealitiesOf(spec);
  if (got.join() !== want.join())
    throw new Error(
      `${hw}: switching off ${[...off].join(', ')} left ${got.join(', ')}, not ${want.join(', ')}`,
    );
  return spec;
}

/** Refuses specs whose per-layer overrides set a field the ablation switches (they would keep theirs). */
function checkOverrides(hw: ResolvedSpec, where: string): void {
  const fields = new Set(NONIDEALITIES.map((n) => SWITCHES[n].field.split('.')[0]!));
  const bad = hw.spec.overrides.flatMap((o, i) =>
    Object.keys(o.set)
      .filter((k) => fields.has(k))
      .map(
        (k) =>
          `overrides[${i}].set.${k}: per-layer non-idealities are not ablated; set them for the whole spec`,
      ),
  );
  if (bad.length) throw new InputError(where, bad);
}

/** What the ablation is of: a preset or spec file with `--set` assignments applied to it first. */
export interface AblationDesign {
  hw: string;
  sets: readonly string[];
  /** The non-idealities to ablate (default: all the spec has). */
  ablate?: readonly string[];
  /** Resolves per-layer overrides (and checks the spec against the model's layers). */
  model?: Model;
}

/** A row of the table: the non-idealities it switches off (the cell is named after them). */
export interface AblationRow {
  /** `full`, or `off:` and the non-idealities switched off. */
  id: string;
  label: string;
  off: Set<NonIdeality>;
  /** The non-ideality an "only" or "all but" row is about. */
  about?: { n: NonIdeality; only: boolean };
  /** The assignments that switch its non-idealities off (the report lists them). */
  switches: string[];
  /** Every `--set` of its spec: the user's that stay, then the switches (what its points run). */
  sets: string[];
}

export interface AblationPlan {
  full: ResolvedSpec;
  /** The non-idealities the spec has. */
  present: NonIdeality[];
  rows: AblationRow[];
}

const cellId = (off: ReadonlySet<NonIdeality>) =>
  off.size ? `off:${NONIDEALITIES.filter((n) => off.has(n)).join(',')}` : 'full';

/** The non-idealities to ablate: `--ablate` checked against the list and against what the spec has. */
function chosen(
  present: readonly NonIdeality[],
  ablate: readonly string[] | undefined,
  hw: string,
): NonIdeality[] {
  if (!ablate) return [...present];
  for (const a of ablate) {
    if (!(NONIDEALITIES as readonly string[]).includes(a))
      throw new InputError('--ablate', {
        field: 'non-ideality',
        value: a,
        allowed: `use ${NONIDEALITIES.join(', ')}`,
      });
    if (!present.includes(a as NonIdeality))
      throw new InputError('--ablate', {
        field: 'non-ideality',
        value: a,
        allowed: `${hw} has none; it has ${present.join(', ') || 'no non-ideality'}`,
      });
  }
  return present.filter((n) => ablate.includes(n));
}

/** The rows: the full spec, then "only X" and "all but X" for each non-ideality ablated. */
export function ablationPlan(d: AblationDesign): AblationPlan {
  const full = loadSpec(d.hw, d.sets, d.model);
  checkOverrides(full, `--hw ${d.hw}`);
  const present = nonIdealitiesOf(full);
  const ablate = chosen(present, d.ablate, d.hw);
  const needs = (n: NonIdeality) => [n, ...(REQUIRES[n] ? [REQUIRES[n]] : [])];
  const dependents = (n: NonIdeality) => present.filter((m) => REQUIRES[m] === n);
  const rows = [
    { label: 'full', off: new Set<NonIdeality>() },
    ...ablate.map((n) => ({
      label: `only ${labelOf(n)}${REQUIRES[n] ? ` (with the ${labelOf(REQUIRES[n])})` : ''}`,
      off: new Set(present.filter((m) => !needs(n).includes(m))),
      about: { n, only: true },
    })),
    ...ablate.map((n) => ({
      label: `all but ${labelOf(n)}`,
      off: new Set([n, ...dependents(n)]),
      about: { n, only: false },
    })),
  ];
  return {
    full,
    present,
    rows: rows.map((row) => {
      // checked to leave exactly the other non-idealities
      specWithout(d.hw, d.sets, row.off, d.model);
      const switches = switchOff(full, row.off);
      return { ...row, id: cellId(row.off), switches, sets: [...keptSets(d.sets, switches), ...switches] };
    }),
  };
}

/** What the report says of the run beside its numbers. */
export interface AblationReportInput extends AblationPlan {
  hw: string;
  sets: readonly string[];
  modelDir: string;
  /** The data's name (as `EvalData.name`) and the examples evaluated (its first). */
  dataName: string;
  examples: number;
  repeats: number;
  seed: number;
  /** The floating-point model's accuracy on the examples. */
  ideal: number;
  /** Each row's instances (seed and accuracy), by row id. */
  cells: ReadonlyMap<string, CellRecord>;
  /** Where the rows' ranges set on data were calibrated (the calibrations' lines, from "the first …"). */
  calibratedOn: readonly string[];
}

/** Writes `results.md` and the chart `ablation.{vl.json,svg,png}` into `out`. */
export async function writeAblationReport(out: string, r: AblationReportInput): Promise<void> {
  const { ideal, rows, present, full } = r;
  const cellOf = (row: AblationRow): CellRecord | undefined => r.cells.get(row.id);
  const fullCell = r.cells.get('full');
  const values = (c: CellRecord | undefined) => c?.instances.map((i) => i.value) ?? [];
  const vsFull = (c: CellRecord | undefined) => (c && fullCell ? pairedDifferences(c, fullCell) : []);
  const vsIdeal = (c: CellRecord | undefined) => values(c).map((v) => v - ideal);
  const absent = NONIDEALITIES.filter((n) => !present.includes(n));
  const at = full.spec.timeS ? ` at t = ${full.spec.timeS} s` : '';
  const withSets = r.sets.length ? ` with --set ${r.sets.join(' ')}` : '';
  const lines = [
    `# Ablation of ${r.hw}${withSets}${at}: accuracy (%)`,
    '',
    `Model ${r.modelDir}; data ${r.dataName}, the first ${r.examples} examples; ${r.repeats} instances per row, seeds ${r.seed}..${r.seed + r.repeats - 1}, the same in every row.`,
    ...(r.calibratedOn.length
      ? [
          `Ranges set on data (kind 'calibrated') are calibrated for each row's spec on ${r.calibratedOn.join('; ')}, as \`xbar eval\` calibrates them.`,
        ]
      : []),
    'Accuracy: the mean over instances and its 95 % confidence interval (Student’s t over instances). ' +
      'Δ: the paired difference over the same instances, with its 95 % interval. ' +
      'The examples are fixed, so the intervals leave out how a set of this size samples the task.',
    '',
    '| configuration | accuracy [95 % CI] | Δ vs full [95 % CI] | Δ vs ideal [95 % CI] |',
    '|---|---|---|---|',
    `| ideal (floating point) | ${(100 * ideal).toFixed(2)} | ${signedInterval(values(fullCell).map((v) => ideal - v))} | 0 |`,
    ...rows.map((row) => {
      const c = cellOf(row);
      const dFull = row.off.size ? signedInterval(vsFull(c)) : '0';
      return `| ${row.label} | ${withInterval(values(c))} | ${dFull} | ${signedInterval(vsIdeal(c))} |`;
    }),
    '',
    `Non-idealities of ${r.hw}: ${present.map(labelOf).join(', ') || 'none'}; not in it: ${absent.map(labelOf).join(', ') || 'none'}.`,
    '',
    '## How each row is made',
    '',
    `Each row is \`--hw ${r.hw}\`${withSets} and these assignments (\`xbar eval --hw … --set …\` reruns it; an assignment of a field's kind replaces your sets of that field's other parts):`,
    '',
    '| configuration | --set |',
    '|---|---|',
    ...rows.map(
      (row) =>
        `| ${row.label} | ${row.switches.length ? row.switches.map((s) => `\`${s}\``).join(' ') : '—'} |`,
    ),
  ];
  writeFileAtomic(join(out, 'results.md'), `${lines.join('\n')}\n`);

  // per non-ideality: what it costs alone (ideal − only X) and what removing it regains (all but X − full)
  const point = (d: readonly number[]) => {
    if (!d.length) return null;
    const { mean, half } = interval95(d);
    return { mid: 100 * mean, lo: 100 * (mean - half), hi: 100 * (mean + half) };
  };
  const rowOf = (n: NonIdeality, only: boolean) =>
    rows.find((row) => row.about?.n === n && row.about.only === only)!;
  const ablated = [...new Set(rows.flatMap((row) => (row.about ? [row.about.n] : [])))];
  const chart = intervalChart({
    title: `${r.hw}: accuracy each non-ideality costs`,
    xTitle: 'accuracy points (95 % CI)',
    series: ['alone: ideal − only it', 'removed: all but it − full'],
    rows: ablated.map((n) => ({
      label: rowOf(n, true).label.slice('only '.length),
      values: [point(vsIdeal(cellOf(rowOf(n, true))).map((v) => -v)), point(vsFull(cellOf(rowOf(n, false))))],
    })),
  });
  await writeFigure(out, 'ablation', figure([[chart]]));
}
