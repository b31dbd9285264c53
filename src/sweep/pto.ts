/**
 * `xbar experiment pto` as a sweep: per model, the ideal model (a point without hardware), the
 * conductance rule's saturation counts at each I_S (`pto-saturation` points), and every cell ×
 * seed of the 1 h table and the time sweep (`pto-instance` points), run on the local pool or a
 * Redis queue into a DuckDB store in the output folder (`OUT/results.duckdb`), resumable as
 * `xbar sweep` is (a rerun runs only the points not stored). A table cell and a time-sweep cell
 * of the same policy at 1 h are the same points, run once. The report (results.md and the chart)
 * is made from the store's rows, paired by seed; `xbar report` reads the store too.
 */
import type { EvalData } from '../eval/data.js';
import type { CellRecord } from '../experiments/cells.js';
import {
  calibratedAdcRange,
  checkSets,
  type PtoCell,
  type PtoDesign,
  type PtoModelRow,
  ptoCells,
  SATURATIONS,
  type Saturation,
  writePtoReport,
} from '../experiments/pto.js';
import type { Model } from '../models/index.js';
import { typedCommand } from '../util/command.js';
import { meanStd } from '../util/math.js';
import {
  type ExperimentOutcome,
  type ExperimentRunOptions,
  experimentStore,
  experimentSweepName,
  runExperimentSweep,
} from './experiment.js';
import { sweepOf } from './file.js';
import { computedOn, storedCommand } from './run.js';
import type { PointResult, SweepDefinition } from './types.js';

/** The points' token limit when none is given (sweep points take `xbar eval`'s). */
const MAX_LENGTH = 128;

export interface PtoOptions extends Required<PtoDesign>, ExperimentRunOptions {
  /**
   * The models, each a row group, with their data opened (the size bounds the held-out split).
   * `learned`: trained with learned input ranges and conductance scales (xbar train --hwa with
   * 'learned' ranges; analog_ranges.safetensors in `dir`), so its rows start from those instead
   * of dynamic ranges and full columns. `dir` as the points name it (from the working directory).
   */
  models: (PtoModelRow & { model: Model; data: EvalData })[];
  /** The data (`KIND:PATH`), as the points name it. */
  dataSpec: string;
  repeats: number;
  timeRepeats: number;
  seed: number;
  /** Examples scored: the first of those not held out. */
  limit: number;
  batch?: number;
  maxLength?: number;
}

export type PtoOutcome = ExperimentOutcome;

/** What a list entry of the sweep is: which model, and what of it. */
type Entry =
  | { kind: 'ideal'; model: string }
  | { kind: 'saturation'; model: string; max: number }
  | { kind: 'instance'; cell: PtoCell; seed: number };

/** The experiment's points as a sweep, and what each list entry is (entries that come out the same are one point). */
export function ptoSweep(
  o: Omit<PtoOptions, 'models'> & { models: readonly PtoModelRow[] },
  withoutRule: ReadonlySet<string>,
): { sweep: SweepDefinition; entries: Entry[]; settings: Record<string, unknown>[] } {
  const name = experimentSweepName(o.out, 'pto');
  const cells = ptoCells(o.models, withoutRule, o.repeats, o.timeRepeats);
  const entries: Entry[] = [];
  const settings: Record<string, unknown>[] = [];
  const hardware = { hw: o.hw, ...(o.sets.length ? { set: [...o.sets] } : {}) };
  for (const m of o.models) {
    entries.push({ kind: 'ideal', model: m.name });
    settings.push({ model: m.dir, limit: o.limit });
    for (const max of withoutRule.has(m.name) ? [] : SATURATIONS) {
      entries.push({ kind: 'saturation', model: m.name, max });
      settings.push({
        task: 'pto-saturation',
        model: m.dir,
        ...hardware,
        'saturation.max': max,
        'saturation.calibration': o.calibration,
        'saturation.learned': !!m.learned,
        'saturation.sigmas': o.sigmas,
        'saturation.current': o.current,
      });
    }
    for (const cell of cells.filter((c) => c.model === m.name))
      for (let i = 0; i < cell.repeats; i++) {
        const input = cell.range === 'calibrated' || cell.range === 'recalibrated';
        entries.push({ kind: 'instance', cell, seed: o.seed + i });
        settings.push({
          task: 'pto-instance',
          model: m.dir,
          limit: o.limit,
          ...hardware,
          time: cell.timeS,
          'pto.calibration': o.calibration,
          'pto.learned': !!m.learned,
          'pto.range': cell.range,
          'pto.conductance': cell.conductance,
          // the rules' parameters where the cell applies them: other cells' points stay the same
          ...(input ? { 'pto.percentile': o.percentile } : {}),
          ...(cell.conductance === 'calibrated' ? { 'pto.sigmas': o.sigmas, 'pto.current': o.current } : {}),
          ...(o.batch === undefined ? {} : { batch: o.batch }),
          seed: o.seed + i,
        });
      }
  }
  const sweep = sweepOf(
    {
      name,
      description: o.command ?? typedCommand(),
      data: o.dataSpec,
      ...(o.maxLength === undefined || o.maxLength === MAX_LENGTH ? {} : { maxLength: o.maxLength }),
      list: settings,
    },
    `the PTO experiment's points (${name})`,
  );
  return { sweep, entries, settings };
}

export async function runPto(o: PtoOptions): Promise<PtoOutcome> {
  checkSets(o.sets);
  /** The models whose ADC range is calibrated, so without the conductance rule. */
  const withoutRule = new Set(
    o.models.filter((m) => calibratedAdcRange(o, m.model, !!m.learned)).map((m) => m.name),
  );
  const { sweep, entries, settings } = ptoSweep(o, withoutRule);
  // each entry's point: the entries that come out the same (a 1 h cell in the table and the
  // time sweep) share the first one's, in the order sweepOf keeps them
  const pointOf: number[] = [];
  const first = new Map<string, number>();
  for (const s of settings) {
    const key = JSON.stringify(Object.entries(s).sort(([a], [b]) => (a < b ? -1 : 1)));
    if (!first.has(key)) first.set(key, first.size);
    pointOf.push(first.get(key)!);
  }
  if (sweep.points.length !== first.size)
    throw new Error(
      `the PTO experiment made ${sweep.points.length} points, not its ${first.size} distinct entries`,
    );

  const store = experimentStore(o.out);
  const run = await runExperimentSweep(sweep, o, 'the PTO experiment');

  const stored = new Map(run.rows.map((r) => [r.point.id, r.result]));
  const result = (entry: number): PointResult => {
    const r = stored.get(sweep.points[pointOf[entry]!]!.id);
    if (!r) throw new Error(`${store}: point ${pointOf[entry]} has no result`);
    return r;
  };
  const ideal = new Map<string, number>();
  const saturation = new Map<string, Saturation>();
  const instances = new Map<string, { seed: number; value: number }[]>();
  for (const [i, e] of entries.entries()) {
    const m = result(i).metrics;
    if (e.kind === 'ideal') ideal.set(e.model, m['metric']!);
    else if (e.kind === 'saturation')
      saturation.set(`${e.model}.${e.max}`, {
        shrunk: m['shrunk']!,
        columns: m['columns']!,
        beyondMean: m['beyond_mean']!,
        beyondMax: m['beyond_max']!,
      });
    else {
      const list = instances.get(e.cell.key) ?? [];
      list.push({ seed: e.seed, value: m['metric']! });
      instances.set(e.cell.key, list);
    }
  }
  const cells = new Map<string, CellRecord>(
    [...instances].map(([key, list]) => [
      key,
      { id: key, labels: {}, instances: list, ...meanStd(list.map((x) => x.value)) },
    ]),
  );
  await writePtoReport(o.out, {
    ...o,
    // the first run's command and machine, as the store keeps them: a resume writes the same report
    command: storedCommand(run.stored) ?? o.command ?? typedCommand(),
    machine: computedOn(run.rows, run.stored),
    withoutRule,
    ideal,
    saturation,
    cells,
  });
  return { out: o.out, store, rows: run.rows, storedNow: run.storedNow, storedBefore: run.storedBefore };
}
