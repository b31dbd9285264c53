/**
 * `xbar sweep FILE --queue URL` and `xbar worker --queue URL` as users run them, on real points
 * (the shipped ViT on the demo images) and a real Redis server: the store the queue fills equals
 * the store a local run fills, provenance aside; an unreachable Redis is refused at once, and the
 * store keeps what it held.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openStore } from '../../src/sweep/duckdb.js';
import { XBAR, xbarAsync } from '../helpers/cli.js';
import { ROOT } from '../helpers/models.js';
import { freePort, NO_REDIS, startRedis, type TestRedis } from '../helpers/redis.js';

const SWEEP = `name: queue-cli
model: ${join(ROOT, 'models/vit-fmnist')}
data: fashion-mnist:${join(ROOT, 'data/fashion-mnist-demo')}
limit: 4
batch: 4
hw: rram-clipformer
grid:
  set.adc.bits: [5, 8]
`;

/** Each point's id with its result, provenance aside, and the workers that computed them. */
async function stored(path: string) {
  const s = await openStore(path);
  const all = await s.rows();
  await s.close();
  return {
    rows: all.map((r) => [r.point.index, r.point.id, r.result?.metrics, r.result?.labels]),
    workers: new Set(all.map((r) => r.result?.provenance.worker)),
  };
}

/** `xbar worker` in a process of its own, once it says it runs. */
async function xbarWorker(url: string): Promise<ChildProcess> {
  const p = spawn(process.execPath, [XBAR, 'worker', '--queue', url, '--lock', '5'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    p.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (/running points/.test(err)) resolve();
    });
    p.once('exit', (code) => reject(new Error(`xbar worker exited with ${code}: ${err}`)));
  });
  return p;
}

describe('xbar sweep --queue and xbar worker', () => {
  let redis: TestRedis | null = null;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });
  const dir = mkdtempSync(join(tmpdir(), 'xbar-queue-'));
  const file = join(dir, 'queue-cli.yaml');
  writeFileSync(file, SWEEP);
  const local = join(dir, 'local.duckdb');

  it('stores what a local run stores, provenance aside', async (t) => {
    if (!redis) return t.skip(NO_REDIS);
    const l = await xbarAsync(['sweep', file, '--store', local, '--quiet']);
    assert.equal(l.status, 0, l.stderr);
    const worker = await xbarWorker(redis.url);
    try {
      const onQueue = join(dir, 'queue.duckdb');
      const q = await xbarAsync(['sweep', file, '--store', onQueue, '--queue', redis.url, '--quiet']);
      assert.equal(q.status, 0, q.stderr);
      assert.match(q.stdout, /2 points stored now, 0 before/);
      const [a, b] = [await stored(local), await stored(onQueue)];
      assert.equal(b.rows.length, 2);
      assert.deepEqual(b.rows, a.rows);
      assert.ok(
        [...b.workers].every((w) => w?.endsWith(`:${worker.pid}`)),
        [...b.workers].join(),
      );
    } finally {
      worker.kill('SIGINT');
      const code = await new Promise((r) => worker.once('exit', r));
      assert.equal(code, 0, 'a worker stopped with Ctrl-C ends cleanly');
    }
  });

  it('refuses an unreachable Redis at once, naming it, and the store keeps its points', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const w = await xbarAsync(['worker', '--queue', url], { timeout: 20e3 });
    assert.equal(w.status, 1);
    assert.match(
      w.stderr,
      new RegExp(`^xbar: --queue ${url}/?: no Redis server could be used there .*ECONNREFUSED`),
    );
    const s = await xbarAsync(['sweep', file, '--store', local, '--queue', url, '--quiet'], {
      timeout: 20e3,
    });
    assert.equal(s.status, 1);
    assert.match(s.stderr, /no Redis server could be used there/);
    const after = await stored(local);
    assert.equal(after.rows.filter((r) => r[2]).length, 2, 'the stored points are still there');
  });
});
