/**
 * `xbar sweep` end to end on the shipped ViT and demo data (8 images a point): a point's metrics
 * are determined by its settings and are those of `xbar eval`'s instance of its seed; a sweep whose worker and then whose own process are killed
 * with `kill -9`, rerun, stores every point exactly once with the metrics of an uninterrupted run.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openStore } from '../../src/sweep/duckdb.js';
import { parseSweep } from '../../src/sweep/file.js';
import { createPointRunner } from '../../src/sweep/point.js';
import { type SweepStatus, statusFile } from '../../src/sweep/progress.js';
import { XBAR, xbar, xbarAsync } from '../helpers/cli.js';
import { ROOT } from '../helpers/models.js';

const MODEL = join(ROOT, 'models/vit-fmnist');
const DATA = `fashion-mnist:${join(ROOT, 'data/fashion-mnist-demo')}`;
const SWEEP = `name: kill
model: ${MODEL}
data: ${DATA}
limit: 8
batch: 8
hw: rram-clipformer
grid:
  set.adc.bits: [5, 8]
  clipformer.alpha: [1, 2]
  seed: { from: 0, count: 2 }
`;
const WORKER = join(ROOT, 'dist/src/sweep/pool-worker.js');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The pids of this checkout's pool workers whose parent is `ppid` (any parent: undefined). */
function workers(ppid?: number): number[] {
  const ps = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' });
  return ps
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([, parent, ...args]) => args.includes(WORKER) && (ppid === undefined || Number(parent) === ppid))
    .map(([pid]) => Number(pid));
}

/** Each point's id with its result, failures and provenance aside. */
async function stored(path: string) {
  const s = await openStore(path);
  const rows = (await s.rows()).map((r) => [r.point.index, r.point.id, r.result?.metrics, r.result?.labels]);
  const count = await s.query!('SELECT count(*), count(DISTINCT id) FROM results');
  const failures = await s.query!('SELECT message FROM failures');
  await s.close();
  return { rows, count: count.rows[0], failures: failures.rows.map((r) => String(r[0])) };
}

describe('xbar sweep', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xbar-sweep-'));
  const file = join(dir, 'kill.yaml');
  writeFileSync(file, SWEEP);

  it('evaluates a point to the same metrics every time, with its interval and cost', async () => {
    const [digital] = parseSweep(`model: ${MODEL}\ndata: ${DATA}\nlimit: 8\n`, 'd.yaml').points;
    const [a, b] = parseSweep(SWEEP, file).points;
    const run = createPointRunner();
    const ra = await run(a!);
    assert.deepEqual(await run(b!), await createPointRunner()(b!), 'a fresh runner gives the same metrics');
    assert.deepEqual(await run(a!), ra, 'cached models and ranges give the same metrics');
    const m = ra.metrics;
    assert.equal(m['examples'], 8);
    assert.equal(ra.labels?.['metric_name'], 'accuracy');
    assert.equal(ra.labels?.['interval'], 'wilson');
    assert.ok(m['metric_low']! <= m['metric']! && m['metric']! <= m['metric_high']!);
    for (const k of ['energy_mJ', 'delay_ms', 'area_mm2', 'edap']) assert.ok(m[k]! > 0, k);
    // the instances `xbar eval` measures with the same flags, seed by seed
    const ev = xbar(
      [
        'eval',
        ...['--model', MODEL, '--data', DATA, '--limit', '8', '--batch', '8', '--hw', 'rram-clipformer'],
        ...['--set', 'adc.bits=5', '--clipformer', '1,1', '--seed', '0', '--repeats', '2', '--json'],
      ],
      { timeout: 120e3 },
    );
    assert.equal(ev.status, 0, ev.stderr);
    const e = JSON.parse(ev.stdout) as { values: number[]; ideal: number; cost: { edap: number } };
    const rb = await run(b!);
    assert.deepEqual(
      [ra.metrics['metric'], rb.metrics['metric'], m['ideal'], m['edap']],
      [...e.values, e.ideal, e.cost.edap],
    );
    // with the SNR: the same instance's metric, and the attention blocks' SNR beside it
    const [withSnr] = parseSweep(SWEEP.replace('grid:', 'snr: true\ngrid:'), file).points;
    const rs = await run(withSnr!);
    assert.equal(rs.metrics['metric'], m['metric']);
    assert.ok(Number.isFinite(rs.metrics['snr_db']) && rs.metrics['snr_db.layer.0'] !== undefined);
    const d = await run(digital!);
    assert.equal(d.metrics['metric'], d.metrics['ideal']);
    assert.equal(d.metrics['edap'], undefined, 'no hardware, no cost');
  });

  it('resumes after kill -9 of a worker and of itself, storing each point once with the same metrics', async () => {
    const whole = join(dir, 'whole.duckdb');
    const first = await xbarAsync(['sweep', file, '--store', whole, '--workers', '2', '--quiet']);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /8 points stored now, 0 before/);
    const expected = await stored(whole);
    assert.deepEqual(expected.count, [8, 8]);

    const cut = join(dir, 'cut.duckdb');
    const child = spawn(
      process.execPath,
      [XBAR, 'sweep', file, '--store', cut, '--workers', '2', '--quiet'],
      {
        stdio: 'ignore',
      },
    );
    // listened for from the start: a sweep that ended on its own must not leave the test waiting
    const exited = new Promise((r) => child.once('exit', r));
    const status = () =>
      existsSync(statusFile(cut)) ? (JSON.parse(readFileSync(statusFile(cut), 'utf8')) as SweepStatus) : null;
    const waitFor = async (done: number, failed = 0) => {
      const ready = () => (status()?.done ?? 0) >= done && (status()?.failed_attempts ?? 0) >= failed;
      for (let t = 0; t < 600 && !ready(); t++) await sleep(100);
      assert.ok(ready(), `${done} points done and ${failed} attempts failed in time`);
    };
    await waitFor(1);
    // one worker killed mid-point: that attempt fails, a new worker takes its place
    const [victim] = workers(child.pid);
    assert.ok(victim, 'the sweep runs workers');
    process.kill(victim!, 'SIGKILL');
    // the killed attempt is stored as failed before the status counts it; the sweep itself is
    // killed then, with points still to run (waiting for more could let it finish first)
    await waitFor(1, 1);
    child.kill('SIGKILL');
    await exited;
    const before = status()!;
    assert.equal(before.state, 'running');
    assert.ok(before.done < 8, 'killed before the end');
    for (let t = 0; t < 50 && workers(child.pid).length; t++) await sleep(100);
    assert.deepEqual(workers(child.pid), [], 'the workers end with their parent');

    const rerun = await xbarAsync(['sweep', file, '--store', cut, '--workers', '2', '--quiet']);
    assert.equal(rerun.status, 0, rerun.stderr);
    const [, now, earlier] = /(\d+) points stored now, (\d+) before/.exec(rerun.stdout)!;
    assert.ok(Number(earlier) >= before.done, 'what was stored before the kill is kept');
    assert.equal(Number(now) + Number(earlier), 8);
    assert.equal(status()!.state, 'done');
    const got = await stored(cut);
    assert.deepEqual(got.count, [8, 8], 'every point stored exactly once');
    assert.deepEqual(got.rows, expected.rows, 'the same metrics as the uninterrupted run');
    assert.ok(
      got.failures.some((f) => /^worker local-\d ended mid-point \(signal SIGKILL\)$/.test(f)),
      got.failures.join('\n'),
    );
  });

  it('records a point that fails every attempt, stores the others and says so', async () => {
    // a model folder whose config reads but whose weights are missing: it fails when loaded
    const broken = join(dir, 'broken-model');
    mkdirSync(broken);
    copyFileSync(join(MODEL, 'config.json'), join(broken, 'config.json'));
    const failing = join(dir, 'failing.yaml');
    writeFileSync(failing, `data: ${DATA}\nlimit: 8\ngrid:\n  model: [${MODEL}, ${broken}]\n`);
    const store = join(dir, 'failing.duckdb');
    const r = await xbarAsync(['sweep', failing, '--store', store, '--retries', '1', '--quiet']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /point 1 \([0-9a-f]{16}\) failed: .*model\.safetensors/);
    assert.match(r.stderr, /1 point failed every attempt; rerun to try it again/);
    const status = JSON.parse(readFileSync(statusFile(store), 'utf8')) as SweepStatus;
    assert.deepEqual(
      [status.state, status.done, status.failed_attempts, status.failed_points],
      ['failed', 1, 2, 1],
    );
    const got = await stored(store);
    assert.deepEqual(got.count, [1, 1]);
    assert.equal(got.failures.length, 2, 'both attempts recorded');
  });

  it('kills a worker whose point runs past --timeout, and counts the attempt as failed', async () => {
    const store = join(dir, 'timeout.duckdb');
    const r = await xbarAsync([
      'sweep',
      file,
      '--store',
      store,
      '--timeout',
      '0.05',
      '--retries',
      '0',
      '--quiet',
    ]);
    assert.equal(r.status, 1);
    const got = await stored(store);
    assert.deepEqual(got.count, [0, 0]);
    assert.equal(got.failures.length, 8);
    for (const f of got.failures) assert.match(f, /^timed out after 0\.05 s \(worker local-1 killed\)$/);
  });
});
