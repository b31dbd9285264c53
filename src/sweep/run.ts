/**
 * Runs a sweep into its store: the points not stored yet, on the local pool or on a Redis queue
 * for `xbar worker`s anywhere, with the progress bar and the status file; what `xbar sweep`
 * does, and the experiments that are sweeps (the ablation) through the same code. A rerun finds
 * the points stored and runs the rest.
 */
import YAML from 'yaml';
import { XBAR_VERSION } from '../util/version.js';
import { DuckDBStore } from './duckdb.js';
import { type PoolOptions, type PoolOutcome, RETRIES, runPool } from './pool.js';
import { SweepProgress, statusFile } from './progress.js';
import { runSweepOnQueue, shownUrl } from './queue.js';
import type { Point, StoredRow, StoredSweep, SweepDefinition } from './types.js';

export interface RunSweepOptions extends Omit<PoolOptions, 'store' | 'onEvent'> {
  /** The store's path (a DuckDB file; made if missing). */
  store: string;
  /** Names the store in messages (default `--store PATH`). */
  where?: string;
  /** No progress bar and no first line. */
  quiet?: boolean;
  /**
   * A Redis URL (redis://HOST:PORT): the points go on its queue for `xbar worker --queue URL`
   * processes on any machines, and their results are stored as they come (`workers` unused).
   */
  queue?: string;
}

export interface SweepRun {
  /** Every point of the store with its result, in the sweep's order. */
  rows: StoredRow[];
  /** The sweep as stored (its source the one that defined its points, and what made the store). */
  stored: StoredSweep;
  /** Points stored by this run, and those found stored. */
  storedNow: number;
  storedBefore: number;
  /** Points that failed every attempt, with their last error (a rerun tries them again). */
  failed: { point: Point; message: string }[];
}

/** The command a stored sweep's source names as its description (an experiment's command line), if any. */
export function storedCommand(stored: StoredSweep): string | undefined {
  const d = (YAML.parse(stored.source) as { description?: unknown } | null)?.description;
  return typeof d === 'string' ? d : undefined;
}

/**
 * Where a store's points were computed, in words from the store alone (so a report made anywhere
 * says the same): the machine that made the store where it computed them all, else the hosts.
 */
export function computedOn(rows: readonly StoredRow[], stored: StoredSweep): string {
  const hosts = [...new Set(rows.flatMap((r) => (r.result ? [r.result.provenance.host] : [])))].sort();
  if (hosts.length === 1 && hosts[0] === stored.host && stored.machine) return `machine ${stored.machine}`;
  return `computed on ${hosts.length ? hosts.join(', ') : 'no machine yet'}`;
}

export async function runSweep(sweep: SweepDefinition, o: RunSweepOptions): Promise<SweepRun> {
  const { store: path, where, quiet, queue, ...pool } = o;
  const store = await DuckDBStore.open(path, where ? { where } : {});
  try {
    await store.begin(sweep);
    const done = await store.doneIds();
    const todo = sweep.points.filter((p) => !done.has(p.id));
    const storedBefore = sweep.points.length - todo.length;
    const workers = Math.min(pool.workers, todo.length);
    const runsOn = queue
      ? ` by the workers of ${shownUrl(queue)}`
      : ` on ${workers} worker${workers > 1 ? 's' : ''}`;
    if (!quiet)
      console.error(
        `${sweep.name}: ${sweep.points.length} points, ${storedBefore} stored already, ${todo.length} to run${todo.length ? runsOn : ''}; status in ${statusFile(path)}`,
      );
    const bar = new SweepProgress({
      sweep: sweep.name,
      store: path,
      total: sweep.points.length,
      done: storedBefore,
      ...(quiet ? { quiet: true } : {}),
    });
    const outcome = await (queue
      ? onQueue(queue, sweep, store, { ...pool, ...(quiet ? { quiet } : {}) }, bar)
      : runPool(todo, { ...pool, store, onEvent: bar.onEvent })
    ).catch((e) => {
      bar.end('failed');
      throw e;
    });
    bar.end(outcome.failed.length ? 'failed' : 'done');
    return {
      rows: await store.rows(),
      stored: await store.sweep(),
      storedNow: outcome.stored,
      storedBefore,
      failed: outcome.failed,
    };
  } finally {
    await store.close();
  }
}

/**
 * The sweep's points on the queue at `url`, their results stored as they come (workers elsewhere
 * run them); Ctrl-C stops coordinating and leaves the points queued for the next `xbar sweep`.
 */
async function onQueue(
  url: string,
  sweep: SweepDefinition,
  store: DuckDBStore,
  o: Omit<PoolOptions, 'store' | 'onEvent'> & { quiet?: boolean },
  bar: SweepProgress,
): Promise<PoolOutcome> {
  const stop = new AbortController();
  const onSignal = () => {
    process.stderr.write('\nstopping: the points stay queued, and a rerun stores their results\n');
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const byId = new Map(sweep.points.map((p) => [p.id, p]));
    const outcome = await runSweepOnQueue(url, sweep, store, {
      attempts: (o.retries ?? RETRIES) + 1,
      ...(o.timeoutS === undefined ? {} : { timeoutMs: o.timeoutS * 1000 }),
      xbar: XBAR_VERSION,
      signal: stop.signal,
      // the pool's events, which the bar follows: a point is running from the bar's view only
      // while its result is handled (the workers are elsewhere)
      onEvent: (e) => {
        bar.onEvent({ type: 'start', point: e.point, worker: '' });
        bar.onEvent(e);
      },
      onNote: o.quiet ? () => {} : (line) => process.stderr.write(`${line}\n`),
    });
    if (!outcome.finished)
      throw new Error(
        `stopped with ${outcome.done} of ${outcome.total} points stored; the rest stay queued (the workers go on): run this again to store their results`,
      );
    return {
      stored: outcome.storedNow,
      failed: outcome.failed.map((f) => ({ point: byId.get(f.id)!, message: f.message })),
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
