/**
 * The DuckDB store: a result stored once, in point order with its failures; a resumed or
 * extended sweep accepted and another sweep refused; a store of a newer schema or of another
 * xbar version refused for writing, and read; a second writer refused; SQL read-only.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { DuckDBStore, openStore, SCHEMA_VERSION, snapshotOf } from '../../src/sweep/duckdb.js';
import { pointId } from '../../src/sweep/file.js';
import type { Point, PointResult, PointSettings, SweepDefinition } from '../../src/sweep/types.js';
import { InputError } from '../../src/util/errors.js';
import { XBAR_VERSION } from '../../src/util/version.js';
import { xbar } from '../helpers/cli.js';
import { ROOT } from '../helpers/models.js';

const point = (index: number, settings: PointSettings): Point => ({ id: pointId(settings), index, settings });
const sweepOf = (seeds: number[]): SweepDefinition => ({
  name: 'seeds',
  source: `seeds: ${seeds}`,
  points: seeds.map((seed, i) => point(i, { hw: 'ideal', seed })),
});
const result = (p: Point, metric: number, worker = 'local-1'): PointResult => ({
  id: p.id,
  metrics: { metric, examples: 8 },
  labels: { metric_name: 'accuracy' },
  provenance: { host: 'h', worker, started: '2026-12-07T00:00:00.000Z', seconds: 1.5, xbar: XBAR_VERSION },
});

async function rejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof InputError, String(e));
    assert.match(e.message, re);
    return true;
  });
}

/** Sets meta fields of a store directly, as another xbar would have written them. */
async function setMeta(path: string, fields: Record<string, string>): Promise<void> {
  const db = await DuckDBInstance.create(path);
  const c = await db.connect();
  for (const [k, v] of Object.entries(fields)) await c.run('UPDATE meta SET value = ? WHERE key = ?', [v, k]);
  c.closeSync();
  db.closeSync();
}

describe('DuckDB store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xbar-store-'));

  it('stores a result once and reads the rows in point order with their failures', async () => {
    const path = join(dir, 'once.duckdb');
    const sweep = sweepOf([0, 1, 2]);
    const [a, b] = sweep.points as [Point, Point];
    const store = await DuckDBStore.open(path);
    await store.begin(sweep);
    assert.equal(await store.put(result(b, 0.5)), true);
    // a point run twice (a retried attempt, a second worker) is stored once: the first result stays
    assert.equal(await store.put(result(b, 0.75, 'local-2')), false);
    await store.fail(a.id, 'boom', result(a, 0).provenance);
    await store.fail(a.id, 'boom again', result(a, 0).provenance);
    assert.deepEqual([...(await store.doneIds())], [b.id]);
    await store.close();

    const reader = await openStore(path);
    const s = await reader.sweep();
    assert.deepEqual(
      { name: s.name, schema: s.schema, xbar: s.xbar, ids: s.points.map((p) => p.id) },
      { name: 'seeds', schema: SCHEMA_VERSION, xbar: XBAR_VERSION, ids: sweep.points.map((p) => p.id) },
    );
    const rows = await reader.rows();
    assert.deepEqual(
      rows.map((r) => [r.point.index, r.result?.metrics['metric'] ?? null, r.failures]),
      [
        [0, null, 2],
        [1, 0.5, 0],
        [2, null, 0],
      ],
    );
    assert.deepEqual(rows[1]!.result, result(b, 0.5));
    const q = await reader.query!(
      "SELECT settings->>'seed' AS seed, CAST(metrics->>'metric' AS DOUBLE) AS m, count(*) OVER () AS n FROM results JOIN points USING (id)",
    );
    assert.deepEqual(q, { columns: ['seed', 'm', 'n'], rows: [['1', 0.5, 1]] });
    await rejects(reader.query!('DELETE FROM results'), /--sql: .*read-only/i);
    await rejects(reader.query!('SELECT 1; SELECT 2'), /one statement at a time/);
    await reader.close();
  });

  it('resumes and extends a sweep, and refuses another sweep, keeping what is stored', async () => {
    const path = join(dir, 'extend.duckdb');
    const store = await DuckDBStore.open(path);
    await store.begin(sweepOf([0, 1]));
    await store.put(result(sweepOf([0, 1]).points[0]!, 0.25));
    await store.close();

    // more seeds, and the old ones in a new order: the same sweep, extended
    const extended = sweepOf([2, 1, 0]);
    const again = await DuckDBStore.open(path);
    // the same points under another description (a resumed command): the first source stays
    await again.begin({ ...sweepOf([1, 0]), source: 'another command' });
    assert.equal((await again.sweep()).source, sweepOf([0, 1]).source);
    await again.begin(extended);
    const stored = await again.sweep();
    assert.deepEqual(stored.points, extended.points);
    assert.equal(stored.source, extended.source, 'an extended sweep records the source that added points');
    assert.equal(stored.host, hostname());
    assert.match(stored.machine!, /\(\d+ cores\)$/);
    // a sweep without point 1 is another sweep
    await rejects(
      again.begin(sweepOf([0, 2, 3])),
      /holds the sweep 'seeds', with 1 point this sweep does not define \(point 1: hw=ideal seed=1\)/,
    );
    assert.equal((await again.rows()).filter((r) => r.result).length, 1);
    await again.close();
    // opened for an experiment's folder, the advice names its flag
    const folder = await DuckDBStore.open(path, { where: '--out runs/x' });
    await rejects(folder.begin(sweepOf([0, 2, 3])), /use another --out$/);
    await folder.close();
  });

  it('refuses to write a store of a newer schema or another xbar version, and reads the latter', async () => {
    const older = join(dir, 'version.duckdb');
    const s = await DuckDBStore.open(older);
    await s.begin(sweepOf([0]));
    await s.put(result(sweepOf([0]).points[0]!, 1));
    await s.close();
    await setMeta(older, { xbar: '0.0.1' });
    await rejects(DuckDBStore.open(older), /made by xbar 0\.0\.1; this is xbar .* adds none there/);
    const r = await openStore(older);
    assert.equal((await r.rows())[0]!.result?.metrics['metric'], 1);
    await r.close();

    await setMeta(older, { schema_version: String(SCHEMA_VERSION + 1) });
    await rejects(DuckDBStore.open(older), new RegExp(`store schema ${SCHEMA_VERSION + 1} by a newer xbar`));
    await rejects(openStore(older), /by a newer xbar/);
    await rejects(openStore(join(dir, 'none.duckdb')), /no store there/);
  });

  it('reads a store of an earlier schema through a migrated copy, leaving the file as it was', async () => {
    const path = join(dir, 'earlier.duckdb');
    const s = await DuckDBStore.open(path);
    await s.begin(sweepOf([0, 1]));
    await s.put(result(sweepOf([0, 1]).points[1]!, 0.5));
    await s.close();
    await setMeta(path, { schema_version: String(SCHEMA_VERSION - 1) });
    const r = await openStore(path);
    assert.equal((await r.sweep()).schema, SCHEMA_VERSION);
    assert.deepEqual(
      (await r.rows()).map((row) => row.result?.metrics['metric'] ?? null),
      [null, 0.5],
    );
    await r.close();
    const raw = await DuckDBInstance.create(path, { access_mode: 'READ_ONLY' });
    const c = await raw.connect();
    const v = await c.runAndReadAll("SELECT value FROM meta WHERE key = 'schema_version'");
    assert.deepEqual(v.getRowsJS(), [[String(SCHEMA_VERSION - 1)]]);
    c.closeSync();
    raw.closeSync();
    // writing migrates the file itself
    const w = await DuckDBStore.open(path);
    assert.equal((await w.sweep()).schema, SCHEMA_VERSION);
    await w.close();
  });

  it('refuses a second writer, naming the first', async () => {
    const path = join(dir, 'locked.duckdb');
    const file = join(dir, 'one.yaml');
    writeFileSync(
      file,
      `model: ${join(ROOT, 'models/vit-fmnist')}\ndata: fashion-mnist:${join(ROOT, 'data/fashion-mnist-demo')}\nlimit: 8\n`,
    );
    const store = await DuckDBStore.open(path);
    const r = xbar(['sweep', file, '--store', path, '--quiet'], { timeout: 60e3 });
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      new RegExp(`--store ${path}: another xbar is writing there \\(pid ${process.pid}`),
    );
    await store.close();
    assert.ok(!existsSync(`${path}.lock`), 'closing gives the lock up');
  });

  it('lets another process report a store while it is written, from the snapshot beside it', async () => {
    const path = join(dir, 'running.duckdb');
    const sweep = sweepOf([0, 1, 2]);
    const count = () =>
      xbar(['report', path, '--sql', 'SELECT count(*) AS n FROM results', '--format', 'csv']);
    const store = await DuckDBStore.open(path, { snapshotEveryMs: 0 });
    await store.begin(sweep);
    await store.put(result(sweep.points[0]!, 0.5));
    await store.put(result(sweep.points[1]!, 0.25));
    const during = count();
    assert.equal(during.status, 0, during.stderr);
    assert.equal(during.stdout.trim().split('\n').at(-1), '2', 'the snapshot holds both results');
    assert.match(
      during.stderr,
      /is being written \(.*\.lock names by whom\): reading its snapshot of \d+ s ago/,
    );
    await store.close();
    assert.ok(!existsSync(snapshotOf(path)), 'closing removes the snapshot');
    const after = count();
    assert.equal(after.status, 0, after.stderr);
    assert.equal(after.stderr, '', 'the store itself is read once its writer is done');
  });
});
