/**
 * Sweep throughput: points per minute of one sweep (the shipped ViT on the demo Fashion-MNIST on
 * rram-clipformer, ADC bits × seeds, --limit images a point) run by the local pool with 1, 2 and
 * 4 worker processes, each from an empty store, worker start-up included; the 1-worker figure is
 * the baseline the others are divided by. For reference, the same points run one after the other
 * in this process (no pool, no store): what a point costs with nothing around it.
 *   node dist/bench/sweep.js [--limit 20] [--seeds 6] [--workers 1,2,4]
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
console.log(fmtRow('run', 'seconds', 'points/min', 'vs 1 worker'));
let base = 0;
for (const w of args.workers.split(',').map(Number)) {
  const path = join(dir, `w${w}.duckdb`);
  const store = await DuckDBStore.open(path, { where: path });
  await store.begin(sweep);
  const t0 = performance.now();
  const r = await runPool(sweep.points, { workers: w, store });
  const s = (performance.now() - t0) / 1e3;
  await store.close();
  if (r.stored !== n) throw new Error(`${w} workers stored ${r.stored} of ${n} points`);
  const rate = (60 * n) / s;
  base ||= rate;
  console.log(
    fmtRow(`${w} worker${w > 1 ? 's' : ''}`, s.toFixed(1), rate.toFixed(1), `${(rate / base).toFixed(2)}×`),
  );
}
{
  const run = createPointRunner();
  const t0 = performance.now();
  for (const p of sweep.points) await run(p);
  const s = (performance.now() - t0) / 1e3;
  const rate = (60 * n) / s;
  console.log(fmtRow('one process, no pool', s.toFixed(1), rate.toFixed(1), `${(rate / base).toFixed(2)}×`));
}
rmSync(dir, { recursive: true, force: true });
