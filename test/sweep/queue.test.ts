/**
 * Sweeps on a real Redis server (never a mock): points spread over worker processes, one killed
 * with kill -9 mid-point, every point in the DuckDB store exactly once and equal to a run in one
 * process (the other tests use a store in memory, which counts what it is asked);
 * failures, an unreachable server, and a sweep resumed and extended by a second coordinator.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DuckDBStore, openStore } from '../../src/sweep/duckdb.js';
import { connectRedis, runSweepOnQueue, startQueueWorker } from '../../src/sweep/queue.js';
import type { PointResult, SweepDefinition } from '../../src/sweep/types.js';
import { InputError } from '../../src/util/errors.js';
import { MemoryStore } from '../helpers/memory-store.js';
import { queueWorkerArgs } from '../helpers/queue-worker.js';
import { freePort, NO_REDIS, startRedis, type TestRedis } from '../helpers/redis.js';
import { syntheticPoint, syntheticSweep } from '../helpers/synthetic-point.js';

/** A worker process; `started` and `ended` hold the ids it printed. */
interface WorkerProcess {
  child: ChildProcess;
  started: string[];
  ended: Set<string>;
  exited: Promise<void>;
}

async function workerProcess(url: string, prefix: string, concurrency = 1): Promise<WorkerProcess> {
  const child = spawn(process.execPath, queueWorkerArgs(url, prefix, concurrency), {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const w: WorkerProcess = {
    child,
    started: [],
    ended: new Set(),
    exited: new Promise((resolve) => child.once('exit', () => resolve())),
  };
  let buffered = '';
  let ready: () => void = () => {};
  const isReady = new Promise<void>((r) => {
    ready = r;
  });
  child.stdout!.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const [what, id] = line.split(' ');
      if (what === 'ready') ready();
      else if (what === 'start') w.started.push(id!);
      else if (what === 'end') w.ended.add(id!);
    }
  });
  await Promise.race([
    isReady,
    w.exited.then(() => assert.fail('the worker process exited before it was ready')),
  ]);
  return w;
}

const until = async (cond: () => boolean, what: string, ms = 30_000) => {
  for (const t = Date.now(); !cond(); await new Promise((r) => setTimeout(r, 5)))
    if (Date.now() - t > ms) assert.fail(`timed out waiting for ${what}`);
};

/** A result without who computed it, where and when (what must not depend on the machine). */
const content = (r: PointResult | undefined) => r && { id: r.id, metrics: r.metrics, labels: r.labels };

/** The sweep run in this process alone (its points side by side: they only sleep). */
async function inOneProcess(sweep: SweepDefinition): Promise<Map<string, unknown>> {
  const results = await Promise.all(sweep.points.map((p) => syntheticPoint(p)));
  return new Map(results.map((r) => [r.id, content({ ...r, provenance: {} as never })]));
}

describe('sweeps on a Redis queue', () => {
  let redis: TestRedis | null = null;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });
  /** Each test's queues under a prefix of their own, so tests sharing a server never meet. */
  const prefix = () => `xbar-test-${randomUUID().slice(0, 8)}`;

  it('spreads 300 points over three worker processes; one killed with kill -9 mid-point loses none and none is stored twice', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const url = redis.url;
    const pre = prefix();
    const sweep = syntheticSweep('three-workers', 300);
    const path = join(mkdtempSync(join(tmpdir(), 'xbar-queue-')), 'three-workers.duckdb');
    const store = await DuckDBStore.open(path);
    const workers = await Promise.all([0, 1, 2].map(() => workerProcess(url, pre, 2)));
    const [victim] = workers;
    let killedMidPoint: string[] = [];
    const coordinating = runSweepOnQueue(url, sweep, store, { prefix: pre, checkMs: 500 });
    try {
      // the victim is killed as soon as it is inside its 20th point
      await until(() => victim!.started.length >= 20, 'the first worker to start 20 points');
      victim!.child.kill('SIGKILL');
      await victim!.exited;
      killedMidPoint = victim!.started.filter((id) => !victim!.ended.has(id));
      const summary = await coordinating;
      await store.close();
      assert.ok(killedMidPoint.length > 0, 'the killed worker had a point in hand');
      assert.equal(summary.finished, true);
      assert.deepEqual(summary.failed, []);
      assert.equal(summary.storedNow, 300);
      // in the store once each: a point delivered twice (run again after its worker died) was refused
      const reader = await openStore(path);
      const counts = await reader.query!('SELECT count(*), count(DISTINCT id) FROM results');
      const stored = new Map((await reader.rows()).map((r) => [r.point.id, r.result]));
      await reader.close();
      assert.deepEqual(counts.rows[0], [300, 300]);
      for (const p of sweep.points) assert.ok(stored.get(p.id), `point ${p.index} is stored`);
      // the points the killed worker held were finished by another worker
      const victimName = `${stored.get(victim!.started[0]!)?.provenance.host}:${victim!.child.pid}`;
      for (const id of killedMidPoint) assert.notEqual(stored.get(id)!.provenance.worker, victimName);
      // the same results as one process computes, provenance aside
      const single = await inOneProcess(sweep);
      for (const p of sweep.points) assert.deepEqual(content(stored.get(p.id)), single.get(p.id));
      // the survivors shared the rest of the work
      const byWorker = new Map<string, number>();
      for (const r of stored.values())
        byWorker.set(r!.provenance.worker, (byWorker.get(r!.provenance.worker) ?? 0) + 1);
      assert.ok(byWorker.size >= 3, `points by worker: ${JSON.stringify([...byWorker])}`);
    } finally {
      for (const w of workers) w.child.kill('SIGTERM');
      await Promise.all(workers.map((w) => w.exited));
    }
  });

  it('a point that fails all its attempts is reported and recorded per attempt; the rest are stored', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const pre = prefix();
    const good = syntheticSweep('failures', 5, { ms: 1 });
    const bad = syntheticSweep('failures', 1, { ms: 1, fail: true }).points[0]!;
    const sweep = { ...good, points: [...good.points, { ...bad, index: 5 }] };
    const store = new MemoryStore();
    const worker = await startQueueWorker(redis.url, syntheticPoint, { prefix: pre });
    try {
      const summary = await runSweepOnQueue(redis.url, sweep, store, {
        prefix: pre,
        attempts: 3,
        backoffMs: 10,
      });
      assert.equal(summary.finished, true);
      assert.equal(store.results.size, 5);
      assert.deepEqual(
        summary.failed.map((f) => f.id),
        [bad.id],
      );
      assert.match(summary.failed[0]!.message, /fails on purpose/);
      assert.equal(store.failures.filter((f) => f.id === bad.id).length, 3, 'one failure per attempt');
    } finally {
      await worker.close();
    }
  });

  it('a point running past its timeout fails its attempt, and is tried again', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const pre = prefix();
    const sweep = syntheticSweep('timeouts', 1, { ms: 2000 });
    const store = new MemoryStore();
    const events: string[] = [];
    const worker = await startQueueWorker(redis.url, syntheticPoint, { prefix: pre });
    try {
      const t0 = Date.now();
      const summary = await runSweepOnQueue(redis.url, sweep, store, {
        prefix: pre,
        attempts: 2,
        backoffMs: 10,
        timeoutMs: 100,
        onEvent: (e) => events.push(`${e.type} ${e.type === 'fail' ? e.final : e.stored}`),
      });
      assert.ok(Date.now() - t0 < 1500, 'the points were cut short');
      assert.equal(store.results.size, 0);
      assert.match(summary.failed[0]!.message, /ran past its timeout of 0.1 s/);
      assert.deepEqual(events, ['fail false', 'fail true']);
    } finally {
      await worker.close();
    }
  });

  it('a worker of another xbar version leaves the points alone, saying why', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const pre = prefix();
    const sweep = syntheticSweep('versions', 1, { ms: 1 });
    const store = new MemoryStore();
    const worker = await startQueueWorker(redis.url, syntheticPoint, { prefix: pre, xbar: '0.9.0' });
    try {
      const summary = await runSweepOnQueue(redis.url, sweep, store, {
        prefix: pre,
        attempts: 1,
        xbar: '1.0.0',
      });
      assert.equal(store.results.size, 0);
      assert.match(summary.failed[0]!.message, /runs xbar 0\.9\.0 and the sweep was queued by xbar 1\.0\.0/);
    } finally {
      await worker.close();
    }
  });

  it('an unreachable Redis is an InputError naming the URL and what was tried, at once, and the store is left as it was', async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    const store = new MemoryStore();
    const sweep = syntheticSweep('unreachable', 3);
    await store.begin(sweep);
    await store.put({ ...(await syntheticPoint(sweep.points[0]!)), provenance: {} as never });
    const t0 = Date.now();
    await assert.rejects(runSweepOnQueue(url, sweep, store), (e: Error) => {
      assert.ok(e instanceof InputError);
      assert.match(e.message, new RegExp(`--queue redis://127.0.0.1:${port}`));
      assert.match(e.message, new RegExp(`tried to connect to 127.0.0.1:${port}.*ECONNREFUSED`));
      return true;
    });
    assert.ok(Date.now() - t0 < 3000, `gave up after ${Date.now() - t0} ms`);
    assert.equal(store.results.size, 1);
    assert.equal(store.closed, false);
    await assert.rejects(connectRedis('http://127.0.0.1:6379'), /expected redis:\/\/HOST:PORT/);
    await assert.rejects(startQueueWorker(url, syntheticPoint), /ECONNREFUSED/);
  });

  it('one coordinator per sweep: a second is refused while the first runs, naming it', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const pre = prefix();
    const sweep = syntheticSweep('claimed', 3);
    const stop = new AbortController();
    // no workers: the first waits for its points until stopped
    const first = runSweepOnQueue(redis.url, sweep, new MemoryStore(), { prefix: pre, signal: stop.signal });
    try {
      await new Promise((r) => setTimeout(r, 300));
      await assert.rejects(
        runSweepOnQueue(redis.url, sweep, new MemoryStore(), { prefix: pre, claimWaitMs: 200 }),
        (e: Error) =>
          e instanceof InputError &&
          new RegExp(`another coordinator \\(.*:${process.pid}\\)`).test(e.message),
      );
    } finally {
      stop.abort();
    }
    assert.equal((await first).finished, false);
    // once it stopped, a second one goes ahead at once
    const later = new AbortController();
    later.abort();
    assert.equal(
      (await runSweepOnQueue(redis.url, sweep, new MemoryStore(), { prefix: pre, signal: later.signal }))
        .finished,
      false,
    );
  });

  it('a second coordinator resumes a stopped sweep and extends it, computing only what is not stored', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const pre = prefix();
    const first = syntheticSweep('resumed', 40, { ms: 10 });
    const store = new MemoryStore();
    const runs = new Map<string, number>();
    const worker = await startQueueWorker(
      redis.url,
      async (p, o) => {
        runs.set(p.id, (runs.get(p.id) ?? 0) + 1);
        return syntheticPoint(p, o);
      },
      { prefix: pre },
    );
    try {
      // the first coordinator stops after 10 results (its points stay queued)
      const stop = new AbortController();
      const a = await runSweepOnQueue(redis.url, first, store, {
        prefix: pre,
        signal: stop.signal,
        onProgress: (p) => {
          if (p.done >= 10) stop.abort();
        },
      });
      assert.equal(a.finished, false);
      assert.ok(a.done >= 10 && a.done < 40, `stopped at ${a.done}`);
      const storedByFirst = new Map(store.results);
      // a second one, with 20 more points: it stores the rest of the first 40 and the new 20
      const extended = syntheticSweep('resumed', 60, { ms: 10 });
      const b = await runSweepOnQueue(redis.url, extended, store, { prefix: pre });
      assert.equal(b.finished, true);
      assert.equal(store.results.size, 60);
      assert.equal(b.storedNow, 60 - storedByFirst.size);
      for (const [id, r] of storedByFirst)
        assert.deepEqual(store.results.get(id), r, 'stored results untouched');
      for (const p of extended.points) assert.equal(runs.get(p.id), 1, `point ${p.index} ran once`);
    } finally {
      await worker.close();
    }
  });
});
