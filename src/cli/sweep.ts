/** `xbar sweep FILE.yaml`: every point of a sweep file, on local worker processes, into a store. */
import type { Command } from 'commander';
import { DuckDBStore } from '../sweep/duckdb.js';
import { readSweepFile } from '../sweep/file.js';
import { type PoolOutcome, runPool } from '../sweep/pool.js';
import { SweepProgress, statusFile } from '../sweep/progress.js';
import { runSweepOnQueue, shownUrl } from '../sweep/queue.js';
import type { StoredRow, SweepDefinition } from '../sweep/types.js';
import { InputError } from '../util/errors.js';
import { table } from '../util/table.js';
import { XBAR_VERSION } from '../util/version.js';
import { flag, opt, providerOf, withOptions } from './flags.js';

interface SweepFlags {
  store?: string;
  queue?: string;
  workers: number;
  retries: number;
  timeout?: number;
  quiet?: boolean;
  provider: 'cpu' | 'webgpu' | 'auto';
  gpu?: string;
}

/** Rows shown at the end; the rest are in the store (xbar report). */
const SHOWN = 20;

/** The points' results as a short table: the settings that vary, the metric with its interval, EDAP. */
export function summaryTable(rows: readonly StoredRow[]): string {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r.point.settings)))].filter(
    (k) => new Set(rows.map((r) => JSON.stringify(r.point.settings[k] ?? null))).size > 1,
  );
  const f = (v: number | undefined, d = 4) => (v === undefined ? '—' : v.toFixed(d));
  const hasCost = rows.some((r) => r.result?.metrics['edap'] !== undefined);
  const metricName = rows.find((r) => r.result)?.result?.labels?.['metric_name'] ?? 'metric';
  const body = rows.slice(0, SHOWN).map((r) => {
    const m = r.result?.metrics;
    return [
      String(r.point.index),
      ...keys.map((k) => String(r.point.settings[k] ?? '—')),
      m ? `${f(m['metric'])} [${f(m['metric_low'])}, ${f(m['metric_high'])}]` : r.failures ? 'failed' : '—',
      ...(hasCost ? [m?.['edap'] === undefined ? '—' : m['edap'].toPrecision(3)] : []),
    ];
  });
  const out = table(body, ['#', ...keys, `${metricName} [95 %]`, ...(hasCost ? ['EDAP'] : [])]);
  return rows.length > SHOWN ? `${out}\n… ${rows.length - SHOWN} more points in the store` : out;
}

/**
 * The sweep's points on the queue at `url`, their results stored as they come (workers elsewhere
 * run them); Ctrl-C stops coordinating and leaves the points queued for the next `xbar sweep`.
 */
async function onQueue(
  url: string,
  sweep: SweepDefinition,
  store: DuckDBStore,
  o: SweepFlags,
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
      attempts: o.retries + 1,
      ...(o.timeout === undefined ? {} : { timeoutMs: o.timeout * 1000 }),
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

export function registerSweep(program: Command): void {
  withOptions(
    program
      .command('sweep <file>')
      .description(
        'evaluate every point of a sweep file (a grid or list of settings) on local workers, into a DuckDB store; a rerun resumes',
      ),
    opt('--store <file>', 'the DuckDB store (default: runs/NAME.duckdb, NAME the sweep’s name)'),
    opt('--workers <n>', 'worker processes, each running one point at a time', 1, 1),
    opt('--retries <n>', 'more attempts for a point that fails', 0, 2),
    opt(
      '--timeout <s>',
      'seconds a point may take before its worker is killed (with --queue: stops it) and the attempt fails (default: no limit)',
      { gt: 0 },
    ),
    opt(
      '--queue <url>',
      'put the points on the queue of this Redis server (redis://HOST:PORT) for `xbar worker --queue URL` on any machines, and store their results as they come',
    ),
    opt('--quiet', 'no progress bar'),
    flag('provider', { value: 'cpu' }),
    flag('gpu'),
  ).action(async (file: string, o: SweepFlags, command: Command) => {
    const t0 = performance.now();
    if (o.queue && command.getOptionValueSource('workers') === 'cli')
      throw new InputError(
        `--workers ${o.workers}: with --queue the points run on \`xbar worker --queue ${o.queue}\` processes; start those instead`,
      );
    const sweep = readSweepFile(file);
    const path = o.store ?? `runs/${sweep.name}.duckdb`;
    const provider = await providerOf(o);
    const store = await DuckDBStore.open(path);
    try {
      await store.begin(sweep);
      const done = await store.doneIds();
      const todo = sweep.points.filter((p) => !done.has(p.id));
      const stored = sweep.points.length - todo.length;
      if (!o.quiet)
        console.error(
          `${sweep.name}: ${sweep.points.length} points, ${stored} stored already, ${todo.length} to run${!todo.length ? '' : o.queue ? ` by the workers of ${shownUrl(o.queue)}` : ` on ${Math.min(o.workers, todo.length)} worker${Math.min(o.workers, todo.length) > 1 ? 's' : ''}`}; status in ${statusFile(path)}`,
        );
      const bar = new SweepProgress({
        sweep: sweep.name,
        store: path,
        total: sweep.points.length,
        done: stored,
        ...(o.quiet ? { quiet: true } : {}),
      });
      const outcome = await (o.queue
        ? onQueue(o.queue, sweep, store, o, bar)
        : runPool(todo, {
            workers: o.workers,
            store,
            retries: o.retries,
            ...(o.timeout === undefined ? {} : { timeoutS: o.timeout }),
            provider,
            onEvent: bar.onEvent,
          })
      ).catch((e) => {
        bar.end('failed');
        throw e;
      });
      bar.end(outcome.failed.length ? 'failed' : 'done');
      console.log(summaryTable(await store.rows()));
      const seconds = (performance.now() - t0) / 1e3;
      console.log(`${path}: ${outcome.stored} points stored now, ${stored} before (${seconds.toFixed(1)} s)`);
      if (outcome.failed.length) {
        for (const { point, message } of outcome.failed)
          console.error(`point ${point.index} (${point.id}) failed: ${message.split('\n')[0]}`);
        const n = outcome.failed.length;
        console.error(
          `xbar: ${n} point${n > 1 ? 's' : ''} failed every attempt; rerun to try ${n > 1 ? 'them' : 'it'} again`,
        );
        process.exitCode = 1;
      }
    } finally {
      await store.close();
    }
  });
}
