/**
 * `xbar experiment clipformer` as a sweep, in two stages into one DuckDB store in the output
 * folder (`OUT/results.duckdb`), each resumable as `xbar sweep` is:
 *
 *   1. the automatic (α, β) searches, one `clipformer-search` point per model × γ, on the held-out
 *      calibration part (the last examples of the data), seeds from the experiment's seed + 10000;
 *   2. those points again, the ideal model per model, and every cell instance (model × γ × method
 *      none/paper/auto × seed): each what `xbar eval --hw HW --set … --set
 *      attention.device.program.gamma=γ [--clipformer α,β] --snr --seed S` measures on the first
 *      examples of the data (the evaluation part), its ranges set on data calibrated as `xbar
 *      eval` calibrates them (on the training split, for the K/V its transform writes).
 *
 * A store may only gain points, so the second stage's sweep holds the first's points too. The
 * report (experiments/clipformer.ts) is made from the store's rows; the K/V conductance
 * histograms, a noise-free forward of a few examples, are computed when the report is written.
 */
import { existsSync } from 'node:fs';
import { loadSpec } from '../analog/presets.js';
import { type EvalData, holdOut, subset } from '../eval/data.js';
import type { CellRecord } from '../experiments/cells.js';
import {
  type ClipFormerModelName,
  cellId,
  checkSets,
  GAMMA_FIELD,
  GAMMAS,
  type KvHistograms,
  kvConductances,
  METHODS,
  PAPER_CHOICE,
  SEARCH_GRID,
  SEARCH_SEED_OFFSET,
  type SearchObjective,
  writeClipFormerReport,
} from '../experiments/clipformer.js';
import type { Model } from '../models/index.js';
import { typedCommand } from '../util/command.js';
import { InputError } from '../util/errors.js';
import { meanStd } from '../util/math.js';
import { openStore } from './duckdb.js';
import {
  type ExperimentOutcome,
  type ExperimentRunOptions,
  experimentStore,
  experimentSweepName,
  runExperimentSweep,
} from './experiment.js';
import { samePath, sweepOf } from './file.js';
import { CLIPFORMER_SEARCH } from './tasks/clipformer-search.js';
import type { Point, PointResult, PointSettings, StoredRow, SweepDefinition } from './types.js';

/** The points' token limit when none is given (sweep points take `xbar eval`'s). */
const MAX_LENGTH = 128;

/** The field of a point that holds γ. */
const GAMMA_SETTING = `set.${GAMMA_FIELD}`;

export interface ClipFormerOptions extends ExperimentRunOptions {
  /** The model rows; `dir` as the points name it (a path from the working directory). */
  models: { name: ClipFormerModelName; dir: string; model: Model }[];
  /** The labelled set (opened for the first model); its last `calibration` examples are held out for the search. */
  data: EvalData;
  /** The data as the points name it (`KIND:PATH`, the path from the working directory). */
  dataSpec: string;
  hw: string;
  /** `--set` assignments applied to `hw` in every point (before the cell's γ). */
  sets: readonly string[];
  repeats: number;
  seed: number;
  /** Examples evaluated per instance (the first of the evaluation part). */
  limit: number;
  calibration: number;
  /** Instances per search candidate, and what the automatic (α, β) maximises. */
  searchInstances: number;
  searchObjective: SearchObjective;
  batch?: number;
  maxLength?: number;
}

export interface ClipFormerOutcome extends ExperimentOutcome {
  /** The cells' instances by `model.gγ.method`, in the table's order. */
  cells: ReadonlyMap<string, CellRecord>;
}

/** The examples each point reads: the search's held-out part and the evaluated first examples. */
export interface ClipFormerParts {
  /** The first held-out example and how many there are (the data's last). */
  first: number;
  calibration: number;
  /** Examples evaluated: the first of the data, never a held-out one. */
  examples: number;
}

export function clipformerParts(data: EvalData, limit: number, calibration: number): ClipFormerParts {
  const { calibration: held, evaluation } = holdOut(data, calibration);
  return { first: held[0]!, calibration: held.length, examples: Math.min(limit, evaluation.length) };
}

/** The user's assignments and the cell's γ (last: γ is the cell's). */
const setsAt = (sets: readonly string[], gamma: number): string[] => [...sets, `${GAMMA_FIELD}=${gamma}`];

/** (α, β) of a method at γ: none, the paper's, or the search's choice (null: no transform won). */
export type AutoChoice = (
  model: ClipFormerModelName,
  gamma: number,
) => { alpha: number; beta: number } | null;

/** What the points are made of: the options without the opened data and models, and the parts of the data. */
export type ClipFormerDesign = Omit<ClipFormerOptions, 'data' | 'models'> & {
  models: readonly { name: ClipFormerModelName; dir: string }[];
  parts: ClipFormerParts;
};

/** The searches' points as sweep-file entries: one per model × γ. */
function searchEntries(o: ClipFormerDesign): Record<string, unknown>[] {
  return o.models.flatMap((m) =>
    GAMMAS.map((gamma) => ({
      task: CLIPFORMER_SEARCH,
      model: m.dir,
      hw: o.hw,
      set: setsAt(o.sets, gamma),
      limit: o.parts.calibration,
      'search.first': o.parts.first,
      'search.alphas': SEARCH_GRID.alphas.join(','),
      'search.betas': SEARCH_GRID.betas.join(','),
      'search.instances': o.searchInstances,
      'search.objective': o.searchObjective,
      seed: o.seed + SEARCH_SEED_OFFSET,
    })),
  );
}

/** The transform of a cell: null for none. */
function transformOf(method: (typeof METHODS)[number], gamma: number, auto: () => ReturnType<AutoChoice>) {
  if (method === 'none') return null;
  if (method === 'paper') return PAPER_CHOICE[gamma]!;
  return auto();
}

/** The ideal points and the cells' instances as sweep-file entries. */
function cellEntries(o: ClipFormerDesign, auto: AutoChoice): Record<string, unknown>[] {
  const seeds = Array.from({ length: o.repeats }, (_, i) => o.seed + i);
  return o.models.flatMap((m) => [
    { model: m.dir, limit: o.parts.examples },
    ...GAMMAS.flatMap((gamma) =>
      METHODS.flatMap((method) => {
        const c = transformOf(method, gamma, () => auto(m.name, gamma));
        return seeds.map((seed) => ({
          model: m.dir,
          limit: o.parts.examples,
          hw: o.hw,
          set: setsAt(o.sets, gamma),
          ...(c ? { method: 'clipformer', 'clipformer.alpha': c.alpha, 'clipformer.beta': c.beta } : {}),
          snr: true,
          seed,
        }));
      }),
    ),
  ]);
}

/** The sweep of the searches alone (stage 1), or with the cells of `auto`'s choices (stage 2). */
export function clipformerSweep(o: ClipFormerDesign, auto?: AutoChoice): SweepDefinition {
  const name = experimentSweepName(o.out, 'clipformer');
  return sweepOf(
    {
      name,
      description: o.command ?? typedCommand(),
      data: o.dataSpec,
      ...(o.batch === undefined ? {} : { batch: o.batch }),
      ...(o.maxLength === undefined || o.maxLength === MAX_LENGTH ? {} : { maxLength: o.maxLength }),
      list: [...searchEntries(o), ...(auto ? cellEntries(o, auto) : [])],
    },
    `the ClipFormer experiment's points (${name})`,
  );
}

/** What identifies a point of the experiment among its points: its model, γ, task, transform and seed. */
const keyOf = (s: PointSettings): string =>
  JSON.stringify([
    s['task'] ?? null,
    s['model'],
    s['hw'] === undefined ? null : (s[GAMMA_SETTING] ?? null),
    s['clipformer.alpha'] ?? null,
    s['clipformer.beta'] ?? null,
    // a search is one per model and γ; the ideal model one per model
    s['hw'] === undefined || s['task'] !== undefined ? null : s['seed'],
  ]);

/** The points of a sweep by what identifies them, with their results where stored. */
function resultsOf(sweep: SweepDefinition, rows: readonly StoredRow[], store: string) {
  const stored = new Map(rows.flatMap((r) => (r.result ? [[r.point.id, r.result]] : [])));
  const byKey = new Map(sweep.points.map((p) => [keyOf(p.settings), p]));
  return (s: PointSettings): { point: Point; result: PointResult } => {
    const point = byKey.get(keyOf(s));
    if (!point) throw new Error(`the ClipFormer experiment has no point ${keyOf(s)}`);
    const result = stored.get(point.id);
    if (!result) throw new Error(`${store}: point ${point.index} has no result`);
    return { point, result };
  };
}

/** Throws, naming the first failure, where points failed every attempt. */
/** The stored rows of `store`, or none where it does not exist yet. */
async function storedRows(store: string): Promise<StoredRow[]> {
  if (!existsSync(store)) return [];
  const reader = await openStore(store);
  try {
    return await reader.rows();
  } finally {
    await reader.close();
  }
}

export async function runClipFormer(o: ClipFormerOptions): Promise<ClipFormerOutcome> {
  checkSets(o.sets);
  for (const m of o.models)
    for (const gamma of GAMMAS)
      if (!loadSpec(o.hw, setsAt(o.sets, gamma), m.model).attention)
        throw new InputError(`${o.hw}: attention is digital; ClipFormer needs K/V on crossbars`);
  const parts = clipformerParts(o.data, o.limit, o.calibration);
  const design: ClipFormerDesign = {
    ...o,
    models: o.models.map((m) => ({ name: m.name, dir: m.dir })),
    parts,
  };
  const store = experimentStore(o.out);

  // stage 1, unless a run before finished it (its store then holds stage 2's points, which a
  // sweep of the searches alone may not drop)
  const searches = clipformerSweep(design);
  const before = await storedRows(store);
  const done = new Set(before.flatMap((r) => (r.result ? [r.point.id] : [])));
  let stage1: { rows: readonly StoredRow[]; storedNow: number } = { rows: before, storedNow: 0 };
  if (!searches.points.every((p) => done.has(p.id))) {
    const run = await runExperimentSweep(searches, o, 'the ClipFormer experiment');
    stage1 = run;
  }
  const searchOf = resultsOf(searches, stage1.rows, store);
  const auto: AutoChoice = (model, gamma) => {
    const dir = o.models.find((m) => m.name === model)!.dir;
    const { result } = searchOf({
      task: CLIPFORMER_SEARCH,
      model: samePath(dir),
      [GAMMA_SETTING]: gamma,
      hw: o.hw,
    });
    const { off, alpha, beta } = result.metrics;
    return off ? null : { alpha: alpha!, beta: beta! };
  };

  // stage 2: the searches again (stored), the ideal models and the cells
  const sweep = clipformerSweep(design, auto);
  const run = await runExperimentSweep(sweep, o, 'the ClipFormer experiment');
  const pointOf = resultsOf(sweep, run.rows, store);

  const cells = new Map<string, CellRecord>();
  const calibratedOn = new Set<string>();
  const noteCalibration = (r: PointResult) => {
    // the calibrations' lines: "ADC ranges of 14 products calibrated … on the first 2 examples of …"
    for (const line of r.labels?.['calibration']?.split('; ') ?? [])
      calibratedOn.add(line.replace(/^.* on the first/, 'the first'));
  };
  const searchChoices = new Map<string, { alpha: number; beta: number } | null>();
  for (const m of o.models) {
    const model = samePath(m.dir);
    for (const gamma of GAMMAS) {
      searchChoices.set(`${m.name}.${gamma}`, auto(m.name, gamma));
      noteCalibration(searchOf({ task: CLIPFORMER_SEARCH, model, [GAMMA_SETTING]: gamma, hw: o.hw }).result);
      for (const method of METHODS) {
        const c = transformOf(method, gamma, () => auto(m.name, gamma));
        const instances = Array.from({ length: o.repeats }, (_, i) => {
          const { point, result } = pointOf({
            model,
            hw: o.hw,
            [GAMMA_SETTING]: gamma,
            ...(c ? { 'clipformer.alpha': c.alpha, 'clipformer.beta': c.beta } : {}),
            seed: o.seed + i,
          });
          noteCalibration(result);
          return {
            seed: Number(point.settings['seed']),
            value: result.metrics['metric']!,
            extra: { snrDb: snrBlocks(result) },
          };
        });
        const id = cellId(m.name, gamma, method);
        cells.set(id, {
          id,
          labels: { model: m.name, gamma: String(gamma), method },
          instances,
          ...meanStd(instances.map((i) => i.value)),
        });
      }
    }
  }
  // the histograms' examples: the first of the evaluation part
  const evaluated = subset(
    o.data,
    Array.from({ length: parts.examples }, (_, i) => i),
    `${o.data.name} evaluation part`,
  );
  const histograms = new Map<string, KvHistograms>();
  for (const m of o.models)
    histograms.set(
      m.name,
      await kvConductances(m.model, evaluated, loadSpec(o.hw, setsAt(o.sets, 5), m.model)),
    );
  await writeClipFormerReport(o.out, {
    models: o.models.map((m) => m.name),
    dataName: o.data.name,
    limit: parts.examples,
    calibration: parts.calibration,
    searchObjective: o.searchObjective,
    searchInstances: o.searchInstances,
    hw: o.hw,
    sets: o.sets,
    repeats: o.repeats,
    seed: o.seed,
    calibratedOn: [...calibratedOn],
    ideal: new Map(
      o.models.map((m) => [m.name, pointOf({ model: samePath(m.dir) }).result.metrics['metric']!]),
    ),
    searches: searchChoices,
    cells,
    histograms,
  });
  return {
    out: o.out,
    store,
    rows: run.rows,
    cells,
    storedNow: stage1.storedNow + run.storedNow,
    storedBefore: run.storedBefore - stage1.storedNow,
  };
}

/**
 * Each attention block's SNR (dB) of a cell's point (`snr_db.layer.0`, …), in block order; NaN
 * where the point left one out (not finite).
 */
function snrBlocks(r: PointResult): number[] {
  const byBlock = new Map<number, number>();
  for (const [k, v] of Object.entries(r.metrics)) {
    const m = /^snr_db\..*?(\d+)$/.exec(k);
    if (m) byBlock.set(Number(m[1]), v);
  }
  const n = byBlock.size ? Math.max(...byBlock.keys()) + 1 : 0;
  return Array.from({ length: n }, (_, b) => byBlock.get(b) ?? Number.NaN);
}
