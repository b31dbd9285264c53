/** `xbar sweep FILE.yaml`: every point of a sweep file, on local worker processes, into a store. */
import type { Command } from 'commander';
import { DuckDBStore } from '../sweep/duckdb.js';
import { readSweepFile } from '../sweep/file.js';
import { runPool } from '../sweep/pool.js';
import { SweepProgress, statusFile } from '../sweep/progress.js';
import type { StoredRow } from '../sweep/types.js';
import { table } from '../util/table.js';
import { flag, opt, providerOf, withOptions } from './flags.js';

interface SweepFlags {
  store?: string;
  workers: number;
  retries: number;
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
    opt('--quiet', 'no progress bar'),
    flag('provider', { value: 'cpu' }),
    flag('gpu'),
  ).action(async (file: string, o: SweepFlags) => {
    const t0 = performance.now();
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
          `${sweep.name}: ${sweep.points.length} points, ${stored} stored already, ${todo.length} to run${todo.length ? ` on ${Math.min(o.workers, todo.length)} worker${Math.min(o.workers, todo.length) > 1 ? 's' : ''}` : ''}; status in ${statusFile(path)}`,
        );
      const bar = new SweepProgress({
        sweep: sweep.name,
        store: path,
        total: sweep.points.length,
        done: stored,
        ...(o.quiet ? { quiet: true } : {}),
      });
      const outcome = await runPool(todo, {
        workers: o.workers,
        store,
        retries: o.retries,
        provider,
        onEvent: bar.onEvent,
      }).catch((e) => {
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
