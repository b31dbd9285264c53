/**
 * `xbar experiment trex` as a sweep, in stages that each need the last one's results:
 *
 *   1. searches    Algorithm 1 per target delay on the first hardware (task trex-search)
 *   2. training    every pattern any search picked and every baseline, trained briefly into
 *                  OUT/patterns/NAME and OUT/baselines/NAME (task trex-train, brief)
 *   3. fine-tuning (unless --no-finetune) each search's winner into OUT/search/TARGET/finetuned
 *                  and every other model into OUT/finetuned/NAME (task trex-train, noise-aware)
 *   4. evaluation  each model's ideal accuracy, its non-ideal accuracy per hardware × instance
 *                  (seed), each pattern's ideal accuracy: `xbar eval`'s points
 *
 * A store may only gain points, so the sweep grows: stage 1, then stages 1 and 2, …, each run by
 * runSweep into OUT/results.duckdb on the local pool (or a queue). The stages a store's results
 * already allow are planned at once, so a rerun of a finished experiment runs nothing and writes
 * the report from the store's rows alone; one killed at any point resumes where it stopped.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadSpec } from '../analog/presets.js';
import {
  type Baseline,
  defaultBaselines,
  defaultTargets,
  type TrexModel,
  type TrexPattern,
  type TrexReportInput,
  type TrexRow,
  writeTrexReport,
} from '../experiments/trex.js';
import { modelCost } from '../methods/trex/cost.js';
import { variantConfig } from '../methods/trex/derive.js';
import { type BriefTraining, type FinetuneSettings, slug } from '../methods/trex/search.js';
import type { Model } from '../models/index.js';
import { typedCommand } from '../util/command.js';
import { meanStd } from '../util/math.js';
import { openStore } from './duckdb.js';
import {
  type ExperimentOutcome,
  type ExperimentRunOptions,
  experimentStore,
  experimentSweepName,
  runExperimentSweep,
} from './experiment.js';
import { sweepOf } from './file.js';
import { type SearchedPattern, trexSeqLen } from './tasks/trex-search.js';
import type { PointResult, StoredRow, SweepDefinition } from './types.js';

export interface TrexOptions extends ExperimentRunOptions {
  /** The original model (teacher and initialisation), loaded: its shapes give targets and costs. */
  model: Model;
  /** Its folder and the data (`KIND:PATH`), as the points name them (paths from the working directory). */
  modelDir: string;
  dataSpec: string;
  /** Hardware of the searches (delay targets) and the first table, then the others. */
  hardware: readonly string[];
  /** Target delays in ms on hardware[0]; default: the delay of each N_reuse 1..L−1. */
  targets?: readonly number[];
  baselines?: readonly Baseline[];
  /** Fraction of the training split trained on briefly, training examples held out for the losses. */
  fraction: number;
  heldOut: number;
  brief: BriefTraining;
  finetune: FinetuneSettings | null;
  /** Token limit of text (and the tokens the cost model assumes). */
  maxLength: number;
  /** Monte Carlo instances (seeds from `seed`) and examples (the first) of each non-ideal evaluation. */
  repeats: number;
  hwLimit: number;
  seed: number;
  /** Examples of the ideal evaluations (default all). */
  evalLimit?: number;
}

/** What the store's results allow so far: the points to run, and the report once every stage is done. */
export interface TrexPlan {
  sweep: SweepDefinition;
  /** The stages planned (1–4). */
  stages: number;
  /** Present when every point of every stage has a result. */
  report?: TrexReportInput;
}

export interface TrexOutcome extends ExperimentOutcome {
  report: TrexReportInput;
}

type Entry = Record<string, string | number>;

/**
 * The experiment's points as far as `stored` (results by point id) lets them be known: a stage's
 * points are planned once every point before it has a result.
 */
export function trexPlan(
  o: Omit<TrexOptions, 'workers' | 'retries' | 'queue' | 'provider' | 'quiet'>,
  stored: ReadonlyMap<string, PointResult>,
): TrexPlan {
  const name = experimentSweepName(o.out, 'trex');
  const where = `the TReX experiment's points (${name})`;
  const hw0 = o.hardware[0]!;
  const seqLen = trexSeqLen(o.model, o.maxLength);
  const targets = [...new Set(o.targets ?? defaultTargets(o.model, hw0, seqLen))];
  const baselines = o.baselines ?? defaultBaselines(o.model.config.layers);

  // the entries, each once (the pattern a search picks is evaluated once, as the pattern and as the winner)
  const entries: Entry[] = [];
  const byKey = new Map<string, number>();
  const add = (e: Entry): number => {
    const key = JSON.stringify(Object.entries(e).sort(([a], [b]) => (a < b ? -1 : 1)));
    let i = byKey.get(key);
    if (i === undefined) {
      i = entries.push(e) - 1;
      byKey.set(key, i);
    }
    return i;
  };
  let sweep!: SweepDefinition;
  let stages = 0;
  const plan = () => {
    stages++;
    sweep = sweepOf(
      {
        name,
        description: o.command ?? typedCommand(),
        model: o.modelDir,
        data: o.dataSpec,
        maxLength: o.maxLength,
        list: entries,
      },
      where,
    );
    if (sweep.points.length !== entries.length)
      throw new Error(`${where}: ${entries.length} entries made ${sweep.points.length} points`);
  };
  const result = (i: number) => stored.get(sweep.points[i]!.id);
  const done = (is: readonly number[]) => is.every((i) => result(i) !== undefined);
  const metric = (i: number, k: string) => {
    const v = result(i)!.metrics[k];
    if (v === undefined) throw new Error(`${where}: point ${i} has no ${k}`);
    return v;
  };

  // 1. the searches
  const searches = targets.map((target) => ({
    target,
    index: add({ task: 'trex-search', hw: hw0, 'trex.target': target }),
  }));
  plan();
  if (!done(searches.map((s) => s.index))) return { sweep, stages };

  // 2. the patterns the searches picked and the baselines, trained briefly as TReX trains them
  const b = o.brief;
  const training = {
    task: 'trex-train',
    'trex.fraction': o.fraction,
    'trex.heldOut': o.heldOut,
  };
  const brief = (dir: string, variant: object) =>
    add({
      ...training,
      'trex.train': 'brief',
      'trex.out': dir,
      'trex.variant': JSON.stringify(variant),
      'trex.epochs': b.epochs,
      'trex.lr': b.lr,
      'trex.ceWeight': b.ceWeight,
      'trex.klWeight': b.klWeight,
      'trex.temperature': b.temperature,
      seed: b.seed,
      batch: b.batch,
    });
  const searched = searches.map((s) => ({
    ...s,
    nReuse: metric(s.index, 'n_reuse'),
    patterns: (JSON.parse(result(s.index)!.labels?.['patterns'] ?? '[]') as SearchedPattern[]).map((p) => {
      const dir = join(o.out, 'patterns', slug(p.label));
      return { ...p, dir, index: brief(dir, { reuse: p.reuse }) };
    }),
  }));
  const trained = baselines.map((bl) => {
    const dir = join(o.out, 'baselines', slug(bl.name));
    return { ...bl, dir, index: brief(dir, bl.variants) };
  });
  plan();
  const briefs = [...searched.flatMap((s) => s.patterns), ...trained].map((t) => t.index);
  if (!done(briefs)) return { sweep, stages };

  // the models compared: the original, each search's winner (the lowest held-out loss), the baselines
  const models: TrexModel[] = [
    { name: 'baseline', group: 'baseline', dir: o.modelDir, detail: 'original', variants: {} },
  ];
  for (const s of searched) {
    const winner = s.patterns.length
      ? s.patterns.reduce((x, y) => (metric(y.index, 'loss') < metric(x.index, 'loss') ? y : x))
      : undefined;
    models.push({
      name: `TReX-D-${s.target}`,
      group: 'TReX',
      dir: winner?.dir ?? o.modelDir,
      detail: `N_reuse ${s.nReuse}: ${winner?.label ?? 'none'}`,
      variants: winner ? { reuse: winner.reuse } : {},
    });
  }
  for (const t of trained)
    models.push({
      name: t.name,
      group: t.kind,
      dir: t.dir,
      detail: JSON.stringify(t.variants),
      variants: t.variants,
    });

  // 3. noise-aware fine-tuning on the first hardware: each winner (as its search fine-tunes it) and,
  // so that like is compared with like, every other model (a search that reuses nothing has no winner)
  if (o.finetune) {
    const f = o.finetune;
    const finetunes: number[] = [];
    for (const [k, m] of models.entries()) {
      if (m.group === 'TReX' && searched[k - 1]!.patterns.length === 0) continue;
      const dir =
        m.group === 'TReX'
          ? join(o.out, 'search', String(searched[k - 1]!.target), 'finetuned')
          : join(o.out, 'finetuned', slug(m.name));
      finetunes.push(
        add({
          ...training,
          'trex.train': 'noise-aware',
          'trex.out': dir,
          'trex.from': m.dir,
          hw: hw0,
          'trex.epochs': f.epochs,
          'trex.lr': f.lr,
          batch: f.batch,
        }),
      );
      m.dir = dir;
    }
    plan();
    if (!done(finetunes)) return { sweep, stages };
  }

  // 4. the evaluations: `xbar eval`'s points on each model folder
  const ideal = (dir: string) => add({ model: dir, ...(o.evalLimit ? { limit: o.evalLimit } : {}) });
  const hwLimit = Math.min(o.hwLimit, o.evalLimit ?? Number.POSITIVE_INFINITY);
  const seeds = Array.from({ length: o.repeats }, (_, i) => o.seed + i);
  const evaluated = models.map((m) => ({
    m,
    ideal: ideal(m.dir),
    nonIdeal: o.hardware.map((hw) => seeds.map((seed) => add({ model: m.dir, hw, seed, limit: hwLimit }))),
  }));
  const patterns = new Map<string, { p: (typeof searched)[number]['patterns'][number]; ideal: number }>();
  for (const s of searched)
    for (const p of s.patterns) if (!patterns.has(p.label)) patterns.set(p.label, { p, ideal: ideal(p.dir) });
  plan();
  const evals = [
    ...evaluated.flatMap((e) => [e.ideal, ...e.nonIdeal.flat()]),
    ...[...patterns.values()].map((p) => p.ideal),
  ];
  if (!done(evals)) return { sweep, stages };

  const rows: Record<string, TrexRow> = {};
  for (const { m, ideal, nonIdeal } of evaluated) {
    const config = variantConfig(o.model.config, m.variants);
    rows[m.name] = {
      cost: Object.fromEntries(
        o.hardware.map((hw) => [
          hw,
          modelCost(config, loadSpec(hw), seqLen === undefined ? {} : { seqLen }).totals,
        ]),
      ),
      ideal: metric(ideal, 'metric'),
      nonIdeal: Object.fromEntries(
        o.hardware.map((hw, h) => [hw, meanStd(nonIdeal[h]!.map((i) => metric(i, 'metric')))]),
      ),
    };
  }
  const firstTraining = briefs.length ? result(briefs[0]!)!.labels : undefined;
  const baselineIdeal = result(evaluated[0]!.ideal)!;
  return {
    sweep,
    stages,
    report: {
      modelDir: o.modelDir,
      data: {
        eval: baselineIdeal.labels?.['data'] ?? o.dataSpec,
        train: firstTraining?.['train'] ?? '—',
        heldOut: firstTraining?.['held_out'] ?? '—',
      },
      evalSize: metric(evaluated[0]!.ideal, 'examples'),
      hardware: o.hardware,
      hwLimit: o.hwLimit,
      repeats: o.repeats,
      seed: o.seed,
      epochs: b.epochs,
      finetune: o.finetune !== null,
      models,
      rows,
      patterns: [...patterns.values()].map(
        ({ p, ideal }): TrexPattern => ({
          label: p.label,
          kind: p.kind,
          n: p.encoders.length,
          loss: metric(p.index, 'loss'),
          ideal: metric(ideal, 'metric'),
        }),
      ),
    },
  };
}

/** The results a store holds, by point id (none where there is no store yet). */
async function storedResults(path: string): Promise<Map<string, PointResult>> {
  if (!existsSync(path)) return new Map();
  const store = await openStore(path, `--out ${join(path, '..')}`);
  try {
    return resultsOf(await store.rows());
  } finally {
    await store.close();
  }
}

const resultsOf = (rows: readonly StoredRow[]) =>
  new Map(rows.flatMap((r) => (r.result ? [[r.point.id, r.result] as const] : [])));

export async function runTrex(o: TrexOptions): Promise<TrexOutcome> {
  const store = experimentStore(o.out);
  let plan = trexPlan(o, await storedResults(store));
  let storedNow = 0;
  let storedBefore: number | undefined;
  for (;;) {
    const run = await runExperimentSweep(plan.sweep, o, 'the TReX experiment');
    storedBefore ??= run.storedBefore;
    storedNow += run.storedNow;
    const next = trexPlan(o, resultsOf(run.rows));
    if (next.report) {
      await writeTrexReport(o.out, next.report);
      return { out: o.out, store, report: next.report, rows: run.rows, storedNow, storedBefore };
    }
    if (next.sweep.points.length === plan.sweep.points.length)
      throw new Error(`${store}: stage ${next.stages} of the TReX experiment has points without results`);
    plan = next;
  }
}
