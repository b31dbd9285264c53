/**
 * A sweep's store on Node: one DuckDB file per study (`@duckdb/node-api`).
 *
 *   meta      key → value: schema_version, xbar (the version that made it), name, source, created,
 *             host and machine (the machine that made it: its host name, CPU and cores)
 *   points    id (primary key), idx (order in the sweep file), settings (JSON)
 *   results   id (primary key), metrics (JSON), labels (JSON), and the provenance columns
 *             host, worker, started, seconds, xbar, stored
 *   failures  id, message and the same provenance columns: one row per failed attempt
 *
 * Every write is one transaction, committed to DuckDB's write-ahead log before it returns, so a
 * process killed at any moment loses at most what it had not yet written; a result whose id is
 * stored already is dropped (stored once, however often it ran). One process writes a store at
 * a time: it holds `STORE.lock` beside the file (util/lock.ts). A store is refused for writing
 * when a newer xbar or another xbar version made it (its points might compute differently);
 * stores of earlier schema versions are read (migrated in memory, the file left as it is).
 *
 * DuckDB lets no other process open a file one process writes, so the writer keeps a snapshot
 * beside it, `STORE.snapshot`: a copy made when the sweep begins and at most every
 * SNAPSHOT_EVERY_MS after a result, removed when the writer closes. A reader that finds the store
 * locked reads the snapshot and says how old it is: a report of a running sweep lags by seconds.
 */
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { dirname } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { InputError } from '../util/errors.js';
import { ensureDir } from '../util/files.js';
import { lockFile, unlockFile } from '../util/lock.js';
import { XBAR_VERSION } from '../util/version.js';
import { describePoint } from './file.js';
import type {
  Point,
  PointResult,
  PointSettings,
  Provenance,
  StoredRow,
  StoredSweep,
  SweepDefinition,
  SweepReader,
  SweepStore,
} from './types.js';

/** The layout of the tables; raise it with a migration below when they change. */
export const SCHEMA_VERSION = 1;

/** This machine in words, as a store records the machine that made it: its CPU and cores. */
export const machineName = (): string => {
  const cpu = cpus();
  return `${cpu[0]?.model.trim() ?? 'unknown CPU'} (${cpu.length} cores)`;
};

/** The block size of a new store's file, in bytes (DuckDB's smallest). */
const STORE_BLOCK_SIZE = 16384;

/** How often, at most, the writer refreshes its snapshot for readers (ms). */
export const SNAPSHOT_EVERY_MS = 5000;

/** The snapshot readers read while `path` is being written. */
export const snapshotOf = (path: string): string => `${path}.snapshot`;

const PROVENANCE = 'host VARCHAR, worker VARCHAR, started VARCHAR, seconds DOUBLE, xbar VARCHAR';

const CREATE = [
  'CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)',
  'CREATE TABLE points (id VARCHAR PRIMARY KEY, idx INTEGER NOT NULL, settings JSON NOT NULL)',
  `CREATE TABLE results (id VARCHAR PRIMARY KEY, metrics JSON NOT NULL, labels JSON NOT NULL, ${PROVENANCE}, stored VARCHAR)`,
  `CREATE TABLE failures (id VARCHAR NOT NULL, message VARCHAR NOT NULL, ${PROVENANCE})`,
];

/**
 * The statements that take a store of schema version v to v + 1, at index v (none yet: version 1
 * is the first). Writing migrates the file; reading migrates a copy in memory.
 */
const MIGRATIONS: readonly (readonly string[])[] = [];

export interface OpenStoreOptions {
  /** Read only: the file must exist; nothing is locked or changed (reports). */
  readOnly?: boolean;
  /** Names the store in messages (default `--store PATH`). */
  where?: string;
  /** Told when a reader reads the writer's snapshot instead of the store (how old it is). */
  note?: (line: string) => void;
  /** The writer's snapshot interval (default SNAPSHOT_EVERY_MS; 0: after every result). */
  snapshotEveryMs?: number;
}

/** A value of a DuckDB row as JSON: numbers, text, booleans, null. */
function jsonSafe(v: unknown): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : String(v);
  if (v === null || typeof v !== 'object') return v;
  if (v instanceof Date) return v.toISOString();
  return String(v);
}

export class DuckDBStore implements SweepStore, SweepReader {
  /** Every operation waits for the one before: a connection runs one transaction at a time. */
  private chain: Promise<unknown> = Promise.resolve();
  /** When the writer last refreshed its snapshot (ms since the epoch). */
  private snapshotAt = 0;

  private constructor(
    readonly path: string,
    private readonly instance: DuckDBInstance,
    private readonly db: DuckDBConnection,
    private readonly readOnly: boolean,
    private readonly where: string,
    private readonly lock: string | null,
    private readonly snapshotEveryMs = SNAPSHOT_EVERY_MS,
  ) {}

  /** The flag that named the store (`--store`, or `--out` for an experiment's folder), for advice. */
  private get flag(): string {
    return this.where.split(' ')[0]!;
  }

  /** Opens (or, to write, creates) the store at `path`. */
  static async open(path: string, o: OpenStoreOptions = {}): Promise<DuckDBStore> {
    const where = o.where ?? `--store ${path}`;
    if (o.readOnly) {
      if (!existsSync(path))
        throw new InputError(where, 'no store there (a sweep writes one: xbar sweep FILE.yaml)');
      return DuckDBStore.openReadOnly(path, where).catch((e: unknown) => {
        // DuckDB lets no other process open a file while one writes it: read the writer's snapshot
        const snapshot = snapshotOf(path);
        if (!(e instanceof InputError && /could not set lock/i.test(e.message) && existsSync(snapshot)))
          throw e;
        const age = Math.max(0, Math.round((Date.now() - statSync(snapshot).mtimeMs) / 1000));
        (o.note ?? console.error)(
          `${path} is being written (${path}.lock names by whom): reading its snapshot of ${age} s ago`,
        );
        return DuckDBStore.openReadOnly(snapshot, where);
      });
    }
    ensureDir(dirname(path));
    const lock = `${path}.lock`;
    lockFile(lock, where);
    let instance: DuckDBInstance | undefined;
    try {
      // a new file's blocks are 16 KiB, not 256: a study's few hundred rows then take a few
      // hundred KB, not megabytes (small enough to keep with results); an existing file keeps its own
      instance = await DuckDBInstance.create(path, { default_block_size: String(STORE_BLOCK_SIZE) });
      const db = await instance.connect();
      const store = new DuckDBStore(path, instance, db, false, where, lock, o.snapshotEveryMs);
      await store.prepareForWriting();
      rmSync(snapshotOf(path), { force: true });
      return store;
    } catch (e) {
      instance?.closeSync();
      unlockFile(lock);
      if (e instanceof InputError) throw e;
      throw new InputError(where, `cannot open as a DuckDB store: ${(e as Error).message}`);
    }
  }

  private static async openReadOnly(path: string, where: string): Promise<DuckDBStore> {
    let instance: DuckDBInstance;
    try {
      instance = await DuckDBInstance.create(path, { access_mode: 'READ_ONLY' });
    } catch (e) {
      throw new InputError(where, `cannot open as a DuckDB store: ${(e as Error).message}`);
    }
    const db = await instance.connect();
    const store = new DuckDBStore(path, instance, db, true, where, null);
    const schema = await store.schemaVersion();
    store.refuseNewer(schema);
    if (schema >= SCHEMA_VERSION) return store;
    // an earlier schema: copied into memory and migrated there, the file untouched
    await store.close();
    const memory = await DuckDBInstance.create(':memory:');
    const mdb = await memory.connect();
    await mdb.run(`ATTACH '${path.replaceAll("'", "''")}' AS old (READ_ONLY)`);
    const tables = await mdb.runAndReadAll(
      "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'old' AND table_schema = 'main'",
    );
    for (const [t] of tables.getRowsJS()) await mdb.run(`CREATE TABLE "${t}" AS SELECT * FROM old."${t}"`);
    await mdb.run('DETACH old');
    const copy = new DuckDBStore(path, memory, mdb, true, where, null);
    await copy.migrate(schema);
    return copy;
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const next = this.chain.then(f, f);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async all(sql: string, values?: (string | number | boolean | null)[]): Promise<unknown[][]> {
    const r = await this.db.runAndReadAll(sql, values);
    return r.getRowsJS() as unknown[][];
  }

  private async meta(): Promise<Map<string, string>> {
    const tables = await this.all(
      "SELECT table_name FROM information_schema.tables WHERE table_name = 'meta'",
    );
    if (!tables.length) return new Map();
    return new Map((await this.all('SELECT key, value FROM meta')).map(([k, v]) => [String(k), String(v)]));
  }

  private async schemaVersion(): Promise<number> {
    const m = await this.meta();
    if (!m.size) throw new InputError(this.where, 'not a sweep store (it has no meta table)');
    return Number(m.get('schema_version'));
  }

  private refuseNewer(schema: number): void {
    if (!(schema <= SCHEMA_VERSION))
      throw new InputError(
        this.where,
        `written with store schema ${schema} by a newer xbar; this xbar (${XBAR_VERSION}) reads schemas up to ${SCHEMA_VERSION}: use that xbar or a newer one`,
      );
  }

  private async transaction<T>(f: () => Promise<T>): Promise<T> {
    await this.db.run('BEGIN TRANSACTION');
    try {
      const out = await f();
      await this.db.run('COMMIT');
      return out;
    } catch (e) {
      await this.db.run('ROLLBACK').catch(() => undefined);
      throw e;
    }
  }

  private async migrate(from: number): Promise<void> {
    for (let v = from; v < SCHEMA_VERSION; v++)
      await this.transaction(async () => {
        for (const sql of MIGRATIONS[v] ?? []) await this.db.run(sql);
        await this.db.run("UPDATE meta SET value = ? WHERE key = 'schema_version'", [String(v + 1)]);
      });
  }

  /** Creates the tables of a new store, or checks (and migrates) an existing one. */
  private async prepareForWriting(): Promise<void> {
    const m = await this.meta();
    if (!m.size) {
      await this.transaction(async () => {
        for (const sql of CREATE) await this.db.run(sql);
        for (const [k, v] of [
          ['schema_version', String(SCHEMA_VERSION)],
          ['xbar', XBAR_VERSION],
          ['created', new Date().toISOString()],
          ['host', hostname()],
          ['machine', machineName()],
        ])
          await this.db.run('INSERT INTO meta VALUES (?, ?)', [k!, v!]);
      });
      return;
    }
    const schema = Number(m.get('schema_version'));
    this.refuseNewer(schema);
    const made = m.get('xbar');
    if (made !== XBAR_VERSION)
      throw new InputError(
        this.where,
        `made by xbar ${made}; this is xbar ${XBAR_VERSION}, whose points might compute differently, so it adds none there (its results stay readable: xbar report ${this.path}); use another ${this.flag}, or xbar ${made}`,
      );
    await this.migrate(schema);
  }

  async begin(sweep: SweepDefinition): Promise<void> {
    return this.serial(async () => {
      if (this.readOnly) throw new Error(`${this.where}: opened read-only`);
      const m = await this.meta();
      const stored = new Map(
        (await this.all('SELECT id, idx, settings FROM points')).map(([id, idx, s]) => [
          String(id),
          { index: Number(idx), settings: JSON.parse(String(s)) as PointSettings },
        ]),
      );
      const ids = new Set(sweep.points.map((p) => p.id));
      const missing = [...stored].filter(([id]) => !ids.has(id)).sort((a, b) => a[1].index - b[1].index);
      if (missing.length) {
        const [, first] = missing[0]!;
        throw new InputError(
          this.where,
          `holds the sweep '${m.get('name')}', with ${missing.length} point${missing.length > 1 ? 's' : ''} this sweep does not define (point ${first.index}: ${describePoint(first.settings)}); a store holds one sweep, which may only gain points: use another ${this.flag}`,
        );
      }
      await this.transaction(async () => {
        for (const p of sweep.points) {
          const was = stored.get(p.id);
          if (!was)
            await this.db.run('INSERT INTO points VALUES (?, ?, ?)', [
              p.id,
              p.index,
              JSON.stringify(p.settings),
            ]);
          else if (was.index !== p.index)
            await this.db.run('UPDATE points SET idx = ? WHERE id = ?', [p.index, p.id]);
        }
        // the source that defined the points: a resume keeps the first run's (its command
        // included), an extended sweep records the one that added points
        const grows = sweep.points.some((p) => !stored.has(p.id)) || !m.has('source');
        for (const [k, v] of grows
          ? [
              ['name', sweep.name],
              ['source', sweep.source],
            ]
          : [])
          await this.db.run(
            'INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
            [k!, v!],
          );
      });
      await this.snapshot();
    });
  }

  async doneIds(): Promise<Set<string>> {
    return this.serial(
      async () => new Set((await this.all('SELECT id FROM results')).map(([id]) => String(id))),
    );
  }

  async put(result: PointResult): Promise<boolean> {
    return this.serial(() =>
      this.transaction(async () => {
        const p = result.provenance;
        const r = await this.db.run(
          'INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
          [
            result.id,
            JSON.stringify(result.metrics),
            JSON.stringify(result.labels ?? {}),
            p.host,
            p.worker,
            p.started,
            p.seconds,
            p.xbar,
            new Date().toISOString(),
          ],
        );
        return r.rowsChanged > 0;
      }).then(async (stored) => {
        if (Date.now() - this.snapshotAt >= this.snapshotEveryMs) await this.snapshot();
        return stored;
      }),
    );
  }

  /**
   * Copies the store to its snapshot through DuckDB (COPY FROM DATABASE into a new file, then a
   * rename, so a reader sees a whole one). Not a file copy: opening the store's file again in
   * this process and closing it would drop the process's POSIX lock on it, which keeps other
   * processes from opening it mid-write. Runs inside `serial`: no write happens meanwhile.
   */
  private async snapshot(): Promise<void> {
    const to = snapshotOf(this.path);
    const tmp = `${to}.tmp`;
    rmSync(tmp, { force: true });
    const [[name]] = (await this.all('SELECT current_database()')) as [[string]];
    const quoted = (s: string) => `'${s.replaceAll("'", "''")}'`;
    await this.db.run(`ATTACH ${quoted(tmp)} AS xbar_snapshot (BLOCK_SIZE ${STORE_BLOCK_SIZE})`);
    try {
      await this.db.run(`COPY FROM DATABASE "${name.replaceAll('"', '""')}" TO xbar_snapshot`);
    } finally {
      await this.db.run('DETACH xbar_snapshot');
    }
    renameSync(tmp, to);
    this.snapshotAt = Date.now();
  }

  async fail(id: string, message: string, p: Provenance): Promise<void> {
    await this.serial(() =>
      this.transaction(async () => {
        await this.db.run('INSERT INTO failures VALUES (?, ?, ?, ?, ?, ?, ?)', [
          id,
          message,
          p.host,
          p.worker,
          p.started,
          p.seconds,
          p.xbar,
        ]);
      }),
    );
  }

  async sweep(): Promise<StoredSweep> {
    return this.serial(async () => {
      const m = await this.meta();
      const points = (await this.all('SELECT id, idx, settings FROM points ORDER BY idx')).map(
        ([id, idx, s]): Point => ({
          id: String(id),
          index: Number(idx),
          settings: JSON.parse(String(s)) as PointSettings,
        }),
      );
      return {
        name: m.get('name') ?? '',
        source: m.get('source') ?? '',
        points,
        schema: Number(m.get('schema_version')),
        xbar: m.get('xbar') ?? '',
        ...(m.has('host') ? { host: m.get('host')! } : {}),
        ...(m.has('machine') ? { machine: m.get('machine')! } : {}),
      };
    });
  }

  async rows(): Promise<StoredRow[]> {
    return this.serial(async () => {
      const rows = await this.all(
        `SELECT p.id, p.idx, p.settings, r.metrics, r.labels, r.host, r.worker, r.started, r.seconds, r.xbar,
           (SELECT count(*) FROM failures f WHERE f.id = p.id)
         FROM points p LEFT JOIN results r ON r.id = p.id ORDER BY p.idx`,
      );
      return rows.map(
        ([id, idx, settings, metrics, labels, host, worker, started, seconds, xbar, failures]) => {
          const point: Point = {
            id: String(id),
            index: Number(idx),
            settings: JSON.parse(String(settings)) as PointSettings,
          };
          const row: StoredRow = { point, failures: Number(failures) };
          if (metrics !== null)
            row.result = {
              id: point.id,
              metrics: JSON.parse(String(metrics)) as Record<string, number>,
              labels: JSON.parse(String(labels)) as Record<string, string>,
              provenance: {
                host: String(host),
                worker: String(worker),
                started: String(started),
                seconds: Number(seconds),
                xbar: String(xbar),
              },
            };
          return row;
        },
      );
    });
  }

  /** One SQL statement, read-only: a store opened for writing runs it in a transaction rolled back. */
  async query(sql: string): Promise<{ columns: string[]; rows: unknown[][] }> {
    return this.serial(async () => {
      if (/;\s*\S/.test(sql)) throw new InputError('--sql', `'${sql}': one statement at a time`);
      const run = async () => {
        const r = await this.db.runAndReadAll(sql);
        return {
          columns: r.columnNames(),
          rows: (r.getRowsJS() as unknown[][]).map((row) => row.map(jsonSafe)),
        };
      };
      try {
        if (this.readOnly) return await run();
        await this.db.run('BEGIN TRANSACTION');
        try {
          return await run();
        } finally {
          await this.db.run('ROLLBACK');
        }
      } catch (e) {
        if (e instanceof InputError) throw e;
        throw new InputError('--sql', `${(e as Error).message.split('\n')[0]}`);
      }
    });
  }

  async close(): Promise<void> {
    await this.chain;
    this.db.closeSync();
    this.instance.closeSync();
    if (this.lock) {
      // the store itself is readable now
      rmSync(snapshotOf(this.path), { force: true });
      unlockFile(this.lock);
    }
  }
}

/** Opens a store to read (reports): its sweep, rows and SQL. */
export const openStore = (path: string, where?: string): Promise<DuckDBStore> =>
  DuckDBStore.open(path, { readOnly: true, ...(where ? { where } : {}) });
