/**
 * Sweep throughput: points per minute of one sweep (the shipped ViT on the demo Fashion-MNIST on
 * rram-clipformer, ADC bits × seeds, --limit images a point) run by the local pool with 1, 2 and
 * 4 worker processes, each from an empty store, worker start-up included; the 1-worker figure is
 * the baseline the others are divided by. For reference, the same points run one after the other
 * in this process (no pool, no store): what a point costs with nothing around it. Each is run
 * --reps times, the configurations taking turns, and the fastest run counts (a shared machine's
 * other load only ever slows a run down).
 *   node dist/bench/sweep.js [--limit 20] [--seeds 6] [--workers 1,2,4] [--reps 2]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBStore } from '../src/sweep/duckdb.js';
import { parseSweep } from '../src/sweep/file.js';
import { createPointRunner } from '../src/sweep/point.js';
import { runPool } from '../src/sweep/pool.js';
import { benchArgs, fmtRow } from './util.js';

const args = benchArgs(import.meta.url, {
  limit: { type: 'string', default: '20' },
  seeds: { type: 'string', default: '6' },
  workers: { type: 'string', default: '1,2,4' },
  reps: { type: 'string', default: '2' },
});
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const sweep = parseSweep(
  `name: bench
model: ${join(ROOT, 'models/vit-fmnist')}
data: fashion-mnist:${join(ROOT, 'data/fashion-mnist-demo')}
limit: ${Number(args.limit)}
hw: rram-clipformer
grid:
  set.adc.bits: [6, 8]
  seed: { from: 0, count: ${Number(args.seeds)} }
`,
  'bench.yaml',
);
const n = sweep.points.length;
const dir = mkdtempSync(join(tmpdir(), 'xbar-bench-sweep-'));

console.log(
  `${n} points (vit-fmnist, ${args.limit} images each, rram-clipformer); ${cpus()[0]?.model} × ${cpus().length}`,
);
/** Seconds to run the sweep on `w` workers into a new store; 0 workers: in this process, no store. */
async function timed(w: number, rep: number): Promise<number> {
  const t0 = performance.now();
  if (w === 0) {
    const run = createPointRunner();
    for (const p of sweep.points) await run(p);
    return (performance.now() - t0) / 1e3;
  }
  const path = join(dir, `w${w}-${rep}.duckdb`);
  const store = await DuckDBStore.open(path, { where: path });
  await store.begin(sweep);
  const r = await runPool(sweep.points, { workers: w, store });
  const s = (performance.now() - t0) / 1e3;
  await store.close();
  if (r.stored !== n) throw new Error(`${w} workers stored ${r.stored} of ${n} points`);
  return s;
}

const configs = [...args.workers.split(',').map(Number), 0];
const best = new Map<number, number>();
for (let rep = 0; rep < Number(args.reps); rep++)
  for (const w of configs) best.set(w, Math.min(best.get(w) ?? Infinity, await timed(w, rep)));

console.log(fmtRow('run', 'seconds', 'points/min', `vs ${configs[0]} worker${configs[0] === 1 ? '' : 's'}`));
const rate = (w: number) => (60 * n) / best.get(w)!;
const base = rate(configs[0]!);
for (const w of configs) {
  const name = w === 0 ? 'one process, no pool' : `${w} worker${w > 1 ? 's' : ''}`;
  console.log(fmtRow(name, best.get(w)!.toFixed(1), rate(w).toFixed(1), `${(rate(w) / base).toFixed(2)}×`));
}
rmSync(dir, { recursive: true, force: true });
