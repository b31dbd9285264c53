/** `xbar sweep FILE.yaml`: every point of a sweep file, on local worker processes, into a store. */
import type { Command } from 'commander';
import { readSweepFile } from '../sweep/file.js';
import { runSweep } from '../sweep/run.js';
import type { StoredRow } from '../sweep/types.js';
import { table } from '../util/table.js';
import { flag, opt, providerOf, type RunFlags, runFlags, runOptionsOf, withOptions } from './flags.js';

interface SweepFlags extends RunFlags {
  store?: string;
  timeout?: number;
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
    ...runFlags(),
    opt(
      '--timeout <s>',
      'seconds a point may take before its worker is killed (with --queue: stops it) and the attempt fails (default: no limit)',
      { gt: 0 },
    ),
    flag('provider', { value: 'cpu' }),
    flag('gpu'),
  ).action(async (file: string, o: SweepFlags, command: Command) => {
    const t0 = performance.now();
    const how = runOptionsOf(o, command);
    const sweep = readSweepFile(file);
    const path = o.store ?? `runs/${sweep.name}.duckdb`;
    const run = await runSweep(sweep, {
      store: path,
      ...how,
      ...(o.timeout === undefined ? {} : { timeoutS: o.timeout }),
      provider: await providerOf(o),
    });
    console.log(summaryTable(run.rows));
    const seconds = (performance.now() - t0) / 1e3;
    console.log(
      `${path}: ${run.storedNow} points stored now, ${run.storedBefore} before (${seconds.toFixed(1)} s)`,
    );
    if (run.failed.length) {
      for (const { point, message } of run.failed)
        console.error(`point ${point.index} (${point.id}) failed: ${message.split('\n')[0]}`);
      const n = run.failed.length;
      console.error(
        `xbar: ${n} point${n > 1 ? 's' : ''} failed every attempt; rerun to try ${n > 1 ? 'them' : 'it'} again`,
      );
      process.exitCode = 1;
    }
  });
}
