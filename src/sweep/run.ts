/**
 * Runs a sweep into its store: the points not stored yet, on the local pool, with the progress
 * bar and the status file; what `xbar sweep` does, and the experiments that are sweeps (the
 * ablation) through the same code. A rerun finds the points stored and runs the rest.
 */
import { DuckDBStore } from './duckdb.js';
import { type PoolOptions, runPool } from './pool.js';
import { SweepProgress, statusFile } from './progress.js';
import type { Point, StoredRow, SweepDefinition } from './types.js';

export interface RunSweepOptions extends Omit<PoolOptions, 'store' | 'onEvent'> {
  /** The store's path (a DuckDB file; made if missing). */
  store: string;
  /** Names the store in messages (default `--store PATH`). */
  where?: string;
  /** No progress bar and no first line. */
  quiet?: boolean;
}

export interface SweepRun {
  /** Every point of the store with its result, in the sweep's order. */
  rows: StoredRow[];
  /** Points stored by this run, and those found stored. */
  storedNow: number;
  storedBefore: number;
  /** Points that failed every attempt, with their last error (a rerun tries them again). */
  failed: { point: Point; message: string }[];
}

export async function runSweep(sweep: SweepDefinition, o: RunSweepOptions): Promise<SweepRun> {
  const { store: path, where, quiet, ...pool } = o;
  const store = await DuckDBStore.open(path, where ? { where } : {});
  try {
    await store.begin(sweep);
    const done = await store.doneIds();
    const todo = sweep.points.filter((p) => !done.has(p.id));
    const storedBefore = sweep.points.length - todo.length;
    const workers = Math.min(pool.workers, todo.length);
    if (!quiet)
      console.error(
        `${sweep.name}: ${sweep.points.length} points, ${storedBefore} stored already, ${todo.length} to run${todo.length ? ` on ${workers} worker${workers > 1 ? 's' : ''}` : ''}; status in ${statusFile(path)}`,
      );
    const bar = new SweepProgress({
      sweep: sweep.name,
      store: path,
      total: sweep.points.length,
      done: storedBefore,
      ...(quiet ? { quiet: true } : {}),
    });
    const outcome = await runPool(todo, { ...pool, store, onEvent: bar.onEvent }).catch((e) => {
      bar.end('failed');
      throw e;
    });
    bar.end(outcome.failed.length ? 'failed' : 'done');
    return { rows: await store.rows(), storedNow: outcome.stored, storedBefore, failed: outcome.failed };
  } finally {
    await store.close();
  }
}
