/**
 * What the paper experiments share as sweeps (ablation.ts, clipformer.ts, pto.ts, trex.ts): the
 * store in the output folder, how their points run (the flags every `xbar experiment` takes), and
 * a run that refuses to go on to the report while a point has failed every attempt.
 */
import { basename, join } from 'node:path';
import type { Provider } from '../runtime/session.js';
import { runSweep, type SweepRun } from './run.js';
import type { StoredRow, SweepDefinition } from './types.js';

/** The store in an experiment's output folder. */
export const EXPERIMENT_STORE = 'results.duckdb';

/** How an experiment's points run, and where its results go. */
export interface ExperimentRunOptions {
  /** The output folder: the store, the report and the charts. */
  out: string;
  /** Worker processes (default 1), more attempts for a failed point (default pool.ts RETRIES). */
  workers?: number;
  retries?: number;
  /** A Redis URL: the points go on its queue for `xbar worker`s anywhere instead of the pool. */
  queue?: string;
  /** Where the forwards run. */
  provider?: Provider;
  quiet?: boolean;
  /** The command that made it, kept as the sweep's description (default: this process's command line). */
  command?: string;
}

/** What every experiment's run gives back. */
export interface ExperimentOutcome {
  out: string;
  /** The store's path. */
  store: string;
  /** The store's rows in the sweep's order. */
  rows: StoredRow[];
  /** Points stored by this run, and those found stored. */
  storedNow: number;
  storedBefore: number;
}

/** The store of output folder `out`. */
export const experimentStore = (out: string): string => join(out, EXPERIMENT_STORE);

/** A sweep's name from the output folder (it names the store's sweep and its queue). */
export const experimentSweepName = (out: string, otherwise: string): string =>
  basename(out).replace(/[^\w.-]+/g, '-') || otherwise;

/**
 * Runs `sweep` (an experiment, or one stage of it) into the folder's store. Throws, keeping what
 * is stored, when a point failed every attempt: the report needs them all, and a rerun tries them
 * again. `what` names the experiment in that message ("the PTO experiment").
 */
export async function runExperimentSweep(
  sweep: SweepDefinition,
  o: ExperimentRunOptions,
  what: string,
): Promise<SweepRun> {
  const store = experimentStore(o.out);
  const run = await runSweep(sweep, {
    store,
    where: `--out ${o.out}`,
    workers: o.workers ?? 1,
    ...(o.retries === undefined ? {} : { retries: o.retries }),
    ...(o.queue ? { queue: o.queue } : {}),
    ...(o.provider ? { provider: o.provider } : {}),
    ...(o.quiet ? { quiet: true } : {}),
  });
  if (run.failed.length) {
    const [{ point, message }] = run.failed as [(typeof run.failed)[number]];
    throw new Error(
      `${run.failed.length} of ${what}'s ${sweep.points.length} points failed every attempt (point ${point.index}: ${message.split('\n')[0]}); the others are kept in ${store}: rerun to try them again`,
    );
  }
  return run;
}
