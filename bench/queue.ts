/**
 * What the Redis queue costs a sweep: the same points run in this process, point after point
 * into an in-memory store, and on the queue (a coordinator here, worker processes pulling the
 * points, results sent back and stored). A trivial point (no work) isolates the queue's overhead
 * per point; points that take --ms milliseconds (waiting, not computing, so two cores carry four
 * workers) show how the rate grows with the workers. Redis: a redis-server started here on a
 * free port (without persistence), or --redis.
 *   node dist/bench/queue.js [--points 2000] [--workers 1,2,4] [--ms 50] [--slow-points 400] [--redis URL]
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { closeOnSignals, runSweepOnQueue, startQueueWorker } from '../src/sweep/queue.js';
import type { Point, PointResult, RunPoint, SweepDefinition, SweepStore } from '../src/sweep/types.js';
import { benchArgs, fmtRow } from './util.js';

/** A point's metrics from its settings after `settings.ms` milliseconds (0: at once). */
const point: RunPoint = async (p) => {
  const ms = Number(p.settings['ms'] ?? 0);
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  return { id: p.id, metrics: { metric: Number(p.settings['x']) / 7 } };
};

// worker mode: `queue.js --worker URL PREFIX`, started by the benchmark itself
if (process.argv[2] === '--worker') {
  const [url, prefix] = process.argv.slice(3);
  const worker = await startQueueWorker(url!, point, { prefix: prefix! });
  console.log('ready');
  // a benchmark that ends without stopping it closes its stdin
  process.stdin.on('end', () => void worker.close(true).then(() => process.exit(0)));
  process.stdin.resume();
  await closeOnSignals(worker, () => {});
  process.exit(0);
}

const args = benchArgs(import.meta.url, {
  points: { type: 'string', default: '2000' },
  workers: { type: 'string', default: '1,2,4' },
  ms: { type: 'string', default: '50' },
  'slow-points': { type: 'string', default: '400' },
  redis: { type: 'string' },
});

class Store implements SweepStore {
  readonly results = new Map<string, PointResult>();
  async begin(): Promise<void> {}
  async doneIds(): Promise<Set<string>> {
    return new Set(this.results.keys());
  }
  async put(r: PointResult): Promise<boolean> {
    if (this.results.has(r.id)) return false;
    this.results.set(r.id, r);
    return true;
  }
  async fail(): Promise<void> {}
  async close(): Promise<void> {}
}

let run = 0;
function sweep(n: number, ms: number): SweepDefinition {
  run++;
  const points: Point[] = [];
  for (let i = 0; i < n; i++) {
    const settings = { x: i, ms, run };
    points.push({
      id: createHash('sha256').update(JSON.stringify(settings)).digest('hex').slice(0, 16),
      index: i,
      settings,
    });
  }
  return { name: `bench-${run}`, source: '', points };
}

const provenance = { host: 'here', worker: 'here', started: '', seconds: 0, xbar: '' };

/** Seconds per point in this process alone. */
async function oneProcess(s: SweepDefinition): Promise<number> {
  const store = new Store();
  const t = performance.now();
  for (const p of s.points) await store.put({ ...(await point(p)), provenance });
  return (performance.now() - t) / 1e3 / s.points.length;
}

async function startRedis(): Promise<{ url: string; stop: () => void }> {
  if (args.redis) return { url: args.redis, stop: () => {} };
  if (spawnSync('redis-server', ['--version']).status !== 0)
    throw new Error('no redis-server here: install it (apt-get install redis-server) or pass --redis URL');
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
  const server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  for (let i = 0; i < 100; i++) {
    if (
      spawnSync('redis-cli', ['-p', String(port), 'ping'])
        .stdout?.toString()
        .includes('PONG')
    )
      break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: `redis://127.0.0.1:${port}`, stop: () => server.kill() };
}

/**
 * Seconds per point on the queue with `workers` worker processes (started before the clock), and
 * of those the seconds the coordinator took to queue the points (before the first was stored).
 */
async function onQueue(
  url: string,
  s: SweepDefinition,
  workers: number,
): Promise<{ perPoint: number; queueing: number }> {
  const prefix = `bench-${process.pid}-${run}`;
  const self = fileURLToPath(import.meta.url);
  const procs: ChildProcess[] = [];
  for (let i = 0; i < workers; i++) {
    const p = spawn(process.execPath, [self, '--worker', url, prefix], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    procs.push(p);
    await new Promise<void>((resolve) => p.stdout!.once('data', () => resolve()));
  }
  try {
    const store = new Store();
    const t = performance.now();
    let queueing = 0;
    const summary = await runSweepOnQueue(url, s, store, {
      prefix,
      onNote: (line) => {
        if (/queued for workers/.test(line)) queueing = (performance.now() - t) / 1e3;
      },
    });
    const seconds = (performance.now() - t) / 1e3;
    if (store.results.size !== s.points.length || !summary.finished)
      throw new Error(`the queue stored ${store.results.size} of ${s.points.length} points`);
    return { perPoint: seconds / s.points.length, queueing };
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null ? r(0) : p.once('exit', r)))));
  }
}

const redis = await startRedis();
try {
  const n = Number(args.points);
  const slowN = Number(args['slow-points']);
  const ms = Number(args.ms);
  const counts = args.workers.split(',').map(Number);
  console.log(`# trivial points (${n}): the queue's overhead per point`);
  console.log(fmtRow('how', 'per point', 'points/min', 'vs one process', 'of which queueing the points'));
  const base = await oneProcess(sweep(n, 0));
  console.log(fmtRow('one process', `${(base * 1e6).toFixed(1)} µs`, (60 / base).toFixed(0), '1×'));
  for (const w of counts) {
    const { perPoint: q, queueing } = await onQueue(redis.url, sweep(n, 0), w);
    console.log(
      fmtRow(
        `queue, ${w} worker${w > 1 ? 's' : ''}`,
        `${(q * 1e3).toFixed(2)} ms`,
        (60 / q).toFixed(0),
        `${(q / base).toFixed(0)}×`,
        `${((queueing / n) * 1e3).toFixed(2)} ms`,
      ),
    );
  }
  console.log(`\n# points of ${ms} ms (${slowN}): the rate with the workers`);
  console.log(fmtRow('how', 'per point', 'points/min', 'overhead per point'));
  const slowBase = await oneProcess(sweep(slowN, ms));
  console.log(fmtRow('one process', `${(slowBase * 1e3).toFixed(1)} ms`, (60 / slowBase).toFixed(0), ''));
  for (const w of counts) {
    const { perPoint: q } = await onQueue(redis.url, sweep(slowN, ms), w);
    console.log(
      fmtRow(
        `queue, ${w} worker${w > 1 ? 's' : ''}`,
        `${(q * 1e3).toFixed(1)} ms`,
        (60 / q).toFixed(0),
        `${((q * w - slowBase) * 1e3).toFixed(1)} ms`,
      ),
    );
  }
} finally {
  redis.stop();
}
