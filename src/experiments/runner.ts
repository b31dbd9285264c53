/**
 * A small generic experiment runner: an experiment is a grid of cells (e.g. model × γ × method),
 * each cell a list of Monte Carlo instances. Everything goes to one output folder:
 * `results.json` (every value with its seed, the command line, spec names, timing, machine),
 * rewritten atomically after every instance so a rerun skips what is done; the caller writes
 * `results.md` and plots from it. Instance i of a cell uses seed `seed + i`.
 */
import { existsSync } from 'node:fs';
import { cpus, hostname, totalmem } from 'node:os';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { assertSameNoise } from '../analog/analog-model.js';
import { writeFigure } from '../report/render.js';
import { InputError } from '../util/errors.js';
import { ensureDir, readJson, writeFileAtomic } from '../util/files.js';
import { meanStd, t975 } from '../util/math.js';
import { NOISE_STREAM } from '../util/philox.js';
import { progress } from '../util/progress.js';

export interface InstanceRecord {
  seed: number;
  value: number;
  /** Anything else the instance measured (e.g. SNR per block). */
  extra?: Record<string, unknown>;
  /** Absent where not recorded (the committed TReX results). */
  seconds?: number;
}

export interface CellRecord {
  id: string;
  /** The cell's coordinates in the grid, e.g. { model: 'standard', gamma: '3', method: 'none' }. */
  labels: Record<string, string>;
  instances: InstanceRecord[];
  mean: number;
  std: number;
}

export interface ExperimentRecord {
  experiment: string;
  command: string;
  /** Settings that must match for a resume to reuse results (model, data, spec names, …). */
  settings: Record<string, unknown>;
  /** Absent, as `started` and `updated`, where not recorded (the committed TReX results). */
  machine?: { host: string; cpus: string; cores: number; memoryGiB: number; node: string };
  /** The noise stream the results were drawn from (util/philox.ts NOISE_STREAM; absent: 1). */
  noiseStream?: number;
  started?: string;
  updated?: string;
  cells: Record<string, CellRecord>;
  /** Results outside the grid (searches, histograms, …), by key. */
  extra: Record<string, unknown>;
}

export class Experiment {
  readonly record: ExperimentRecord;
  readonly file: string;

  constructor(
    readonly out: string,
    experiment: string,
    settings: Record<string, unknown>,
    o: { quiet?: boolean } = {},
  ) {
    ensureDir(out);
    this.file = join(out, 'results.json');
    this.quiet = !!o.quiet;
    const now = new Date().toISOString();
    const previous = existsSync(this.file) ? (readJson(this.file) as ExperimentRecord) : null;
    if (
      previous &&
      (previous.experiment !== experiment || JSON.stringify(previous.settings) !== JSON.stringify(settings))
    )
      throw new InputError(
        `${this.file} holds results of other settings (${JSON.stringify(previous.settings)}); use another --out or delete it`,
      );
    const cpu = cpus();
    this.record = previous ?? {
      experiment,
      // as typed, without the machine's path to the program
      command: ['xbar', ...process.argv.slice(2)].join(' '),
      settings,
      machine: {
        host: hostname(),
        cpus: cpu[0]?.model ?? 'unknown',
        cores: cpu.length,
        memoryGiB: Math.round(totalmem() / 2 ** 30),
        node: process.version,
      },
      noiseStream: NOISE_STREAM,
      started: now,
      updated: now,
      cells: {},
      extra: {},
    };
  }

  private readonly quiet: boolean;

  save(): void {
    this.record.updated = new Date().toISOString();
    writeFileAtomic(this.file, `${JSON.stringify(this.record, null, 1)}\n`);
  }

  /** Runs the missing instances of one cell (finished ones are kept), saving after each. */
  async cell(
    id: string,
    labels: Record<string, string>,
    repeats: number,
    seed: number,
    instance: (seed: number, i: number) => Promise<{ value: number; extra?: Record<string, unknown> }>,
  ): Promise<CellRecord> {
    const c = this.record.cells[id] ?? { id, labels, instances: [], mean: 0, std: 0 };
    this.record.cells[id] = c;
    const missing = repeats - c.instances.length;
    // new instances must draw what the recorded ones drew (finished results still report)
    if (missing > 0) assertSameNoise(this.file, this.record);
    const bar = progress(id, Math.max(0, missing), { quiet: this.quiet });
    for (let i = c.instances.length; i < repeats; i++) {
      const t0 = performance.now();
      const r = await instance(seed + i, i);
      c.instances.push({ seed: seed + i, ...r, seconds: (performance.now() - t0) / 1e3 });
      Object.assign(c, meanStd(c.instances.map((x) => x.value)));
      this.save();
      bar.tick();
    }
    bar.stop();
    return c;
  }

  /** A result outside the grid, computed once and kept for reruns. */
  async once<T>(key: string, compute: () => Promise<T>): Promise<T> {
    if (key in this.record.extra) return this.record.extra[key] as T;
    assertSameNoise(this.file, this.record);
    const v = await compute();
    this.record.extra[key] = v;
    this.save();
    return v;
  }

  /** Writes a file into the output folder atomically. */
  write(name: string, data: string | Uint8Array): void {
    writeFileAtomic(join(this.out, name), data);
  }

  /** Writes a chart as its Vega-Lite spec `name.vl.json` (to open in the Vega editor), `name.svg` and `name.png`. */
  async figure(name: string, spec: TopLevelSpec): Promise<void> {
    await writeFigure(this.out, name, spec);
  }
}

/** The differences a − b over the instances two cells share by seed (the same programming and noise streams). */
export function pairedDifferences(a: CellRecord, b: CellRecord): number[] {
  const bySeed = new Map(b.instances.map((i) => [i.seed, i.value]));
  return a.instances.flatMap((i) => (bySeed.has(i.seed) ? [i.value - bySeed.get(i.seed)!] : []));
}

/** Mean, standard error and the half width of its two-sided 95 % interval (Student's t; NaN below 2 values). */
export function interval95(v: readonly number[]): { mean: number; se: number; half: number; n: number } {
  const { mean, std } = meanStd(v);
  const se = v.length > 1 ? std / Math.sqrt(v.length) : Number.NaN;
  return { mean, se, half: se * t975(v.length - 1), n: v.length };
}

/**
 * The paired difference a − b over the instances two cells share by seed, as "mean ± standard
 * error" in points: far tighter than comparing the cells' spreads when the instances, not the
 * methods, make most of the variation.
 */
export function pairedDiff(a: CellRecord | undefined, b: CellRecord | undefined, percent = true): string {
  if (!a || !b) return '—';
  const d = pairedDifferences(a, b);
  if (d.length < 2) return '—';
  const k = percent ? 100 : 1;
  const { mean, se } = interval95(d);
  return `${mean * k >= 0 ? '+' : ''}${(mean * k).toFixed(2)} ± ${(se * k).toFixed(2)}`;
}

/** "61.70 [57.94, 65.46]" in points: a mean and its 95 % interval. */
export function withInterval(v: readonly number[]): string {
  if (!v.length) return '—';
  const { mean, half } = interval95(v);
  return inPoints(mean, mean - half, mean + half);
}

/** "61.70 [57.94, 65.46]": a fraction and its interval's ends in points; the value alone where an end is not finite. */
export function inPoints(value: number, low: number, high: number): string {
  const f = (x: number) => `${x >= 0 ? '' : '−'}${Math.abs(100 * x).toFixed(2)}`;
  if (!Number.isFinite(value)) return '—';
  return Number.isFinite(low) && Number.isFinite(high) ? `${f(value)} [${f(low)}, ${f(high)}]` : f(value);
}

/** `withInterval` with a '+' on a non-negative mean: for differences. */
export const signedInterval = (v: readonly number[]): string => {
  const s = withInterval(v);
  return v.length && interval95(v).mean >= 0 ? `+${s}` : s;
};

/** "74.64 ± 0.31" in percent for fractions, or plain numbers. */
export const pm = (c: { mean: number; std: number } | undefined, percent = true, digits = 2): string =>
  c
    ? `${(c.mean * (percent ? 100 : 1)).toFixed(digits)} ± ${(c.std * (percent ? 100 : 1)).toFixed(digits)}`
    : '—';
