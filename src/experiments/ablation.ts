/**
 * The ablation of a hardware spec: accuracy with each of its non-idealities alone and with all
 * but one, next to the ideal model and the full spec, every row on the same examples and the same
 * Monte Carlo instances (seed + i), so that rows compare as paired differences. Each row is the
 * spec with `--set` assignments that switch non-idealities off (`switchOff`), which the report
 * lists so any row can be rerun with `xbar eval`. Ranges the spec sets on data (`dac.range` or
 * `adc.range` kind 'calibrated') are calibrated for each row's spec on the first examples of the
 * training split, as `xbar eval` calibrates them, so that the rerun gives the row's numbers.
 */
import { analogInstances } from '../analog/instances.js';
import { loadSpec } from '../analog/presets.js';
import type { ResolvedSpec } from '../analog/resolve.js';
import type { Crossbar } from '../analog/spec.js';
import { type EvalData, subset } from '../eval/data.js';
import { evaluate, runOn } from '../eval/evaluate.js';
import type { Model } from '../models/index.js';
import { figure, intervalChart } from '../report/charts.js';
import type { Provider } from '../runtime/session.js';
import { InputError } from '../util/errors.js';
import { calibrateRanges, calibrationFor } from './ranges.js';
import {
  type CellRecord,
  Experiment,
  interval95,
  pairedDifferences,
  signedInterval,
  withInterval,
} from './runner.js';

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

export interface AblationOptions {
  model: Model;
  modelDir: string;
  data: EvalData;
  dataSpec: string;
  /** A preset or spec file, and `--set` assignments applied to it first. */
  hw: string;
  sets: readonly string[];
  /** The non-idealities to ablate (default: all the spec has). */
  ablate?: readonly string[];
  out: string;
  repeats: number;
  seed: number;
  /** Examples evaluated (the first of the data). */
  limit: number;
  batch?: number;
  /** Where the forwards run (default: the CPU). */
  provider?: Provider;
  /**
   * Opens the data that calibrate ranges set on data (`calibratedOnData`, ranges.ts): the training split,
   * as `xbar eval` takes it. Needed only by such specs.
   */
  calibration?: () => EvalData;
  quiet?: boolean;
}

/** A row of the table: the non-idealities it switches off (the cell is named after them). */
interface Row {
  label: string;
  off: Set<NonIdeality>;
  /** The non-ideality an "only" or "all but" row is about. */
  about?: { n: NonIdeality; only: boolean };
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

function ablationRows(present: readonly NonIdeality[], ablate: readonly NonIdeality[]): Row[] {
  const needs = (n: NonIdeality) => [n, ...(REQUIRES[n] ? [REQUIRES[n]] : [])];
  const dependents = (n: NonIdeality) => present.filter((m) => REQUIRES[m] === n);
  return [
    { label: 'full', off: new Set() },
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
}

export async function runAblation(o: AblationOptions): Promise<Experiment> {
  const full = loadSpec(o.hw, o.sets, o.model);
  checkOverrides(full, `--hw ${o.hw}`);
  const calibration = calibrationFor(full, o.calibration, `--hw ${o.hw}`);
  const calibratedOn = new Set<string>();
  const present = nonIdealitiesOf(full);
  const ablate = chosen(present, o.ablate, o.hw);
  const evalIdx = Array.from({ length: Math.min(o.limit, o.data.size) }, (_, i) => i);
  const data = subset(o.data, evalIdx, o.data.name);
  const exp = new Experiment(
    o.out,
    'ablation',
    {
      model: o.modelDir,
      data: o.dataSpec,
      hw: o.hw,
      sets: o.sets,
      evaluated: [evalIdx[0], evalIdx.at(-1)],
      seed: o.seed,
      ...(calibration ? { calibration: 'the training split' } : {}),
    },
    o.quiet ? { quiet: true } : {},
  );
  const batch = runOn(o);
  await exp.once('ideal', async () => (await evaluate(o.model, data, batch)).value);
  const rows = ablationRows(present, ablate);
  for (const row of rows) {
    const id = cellId(row.off);
    const spec = specWithout(o.hw, o.sets, row.off, o.model);
    // what the row ran with, kept with its results
    await exp.once(`sets.${id}`, async () => switchOff(full, row.off));
    const note = (line: string) => calibratedOn.add(line.replace(/^.* on the first/, 'the first'));
    const ranges = await calibrateRanges(o.model, calibration, spec, { log: note });
    const instance = analogInstances(o.model, spec, ranges);
    await exp.cell(id, { off: [...row.off].join(',') }, o.repeats, o.seed, async (seed) => {
      const r = await evaluate(o.model, data, { ...batch, matmuls: await instance(seed), fresh: true });
      return { value: r.value };
    });
  }
  await writeReport(exp, o, full, present, rows, [...calibratedOn]);
  return exp;
}

async function writeReport(
  exp: Experiment,
  o: AblationOptions,
  full: ResolvedSpec,
  present: readonly NonIdeality[],
  rows: readonly Row[],
  /** Where the rows' ranges set on data were calibrated (what the calibration logged). */
  calibratedOn: readonly string[],
): Promise<void> {
  const r = exp.record;
  const ideal = r.extra['ideal'] as number;
  const cellOf = (row: Row): CellRecord | undefined => r.cells[cellId(row.off)];
  const fullCell = r.cells['full'];
  const values = (c: CellRecord | undefined) => c?.instances.map((i) => i.value) ?? [];
  const vsFull = (c: CellRecord | undefined) => (c && fullCell ? pairedDifferences(c, fullCell) : []);
  const vsIdeal = (c: CellRecord | undefined) => values(c).map((v) => v - ideal);
  const absent = NONIDEALITIES.filter((n) => !present.includes(n));
  const at = full.spec.timeS ? ` at t = ${full.spec.timeS} s` : '';
  const lines = [
    `# Ablation of ${o.hw}${o.sets.length ? ` with --set ${o.sets.join(' ')}` : ''}${at}: accuracy (%)`,
    '',
    `Model ${o.modelDir}; data ${o.data.name}, the first ${Math.min(o.limit, o.data.size)} examples; ${o.repeats} instances per row, seeds ${o.seed}..${o.seed + o.repeats - 1}, the same in every row.`,
    ...(calibratedOn.length
      ? [
          `Ranges set on data (kind 'calibrated') are calibrated for each row's spec on ${calibratedOn.join('; ')}, as \`xbar eval\` calibrates them.`,
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
    `Non-idealities of ${o.hw}: ${present.map(labelOf).join(', ') || 'none'}; not in it: ${absent.map(labelOf).join(', ') || 'none'}.`,
    '',
    '## How each row is made',
    '',
    `Each row is \`--hw ${o.hw}\`${o.sets.length ? ` with --set ${o.sets.join(' ')}` : ''} and these assignments (\`xbar eval --hw … --set …\` reruns it; an assignment of a field's kind replaces your sets of that field's other parts):`,
    '',
    '| configuration | --set |',
    '|---|---|',
    ...rows.map((row) => {
      const sets = r.extra[`sets.${cellId(row.off)}`] as string[] | undefined;
      return `| ${row.label} | ${sets?.length ? sets.map((s) => `\`${s}\``).join(' ') : '—'} |`;
    }),
  ];
  exp.write('results.md', `${lines.join('\n')}\n`);

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
    title: `${o.hw}: accuracy each non-ideality costs`,
    xTitle: 'accuracy points (95 % CI)',
    series: ['alone: ideal − only it', 'removed: all but it − full'],
    rows: ablated.map((n) => ({
      label: rowOf(n, true).label.slice('only '.length),
      values: [point(vsIdeal(cellOf(rowOf(n, true))).map((v) => -v)), point(vsFull(cellOf(rowOf(n, false))))],
    })),
  });
  await exp.figure('ablation', figure([[chart]]));
}
