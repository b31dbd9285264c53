/**
 * A sweep: many evaluations (points) over hardware fields, presets, methods, models, data,
 * drift times and seeds, run by local workers or by workers on many machines through a queue,
 * with every finished point in a store. These are the contracts between the parts:
 *
 *   file.ts   the sweep file → its points            (SweepDefinition, Point)
 *   point.ts  one point → its metrics                (RunPoint; a point's `task` picks a PointTask)
 *   tasks.ts  the tasks a point may be besides `xbar eval`'s measurement (PointTask)
 *   store     the points' results, one row per id    (SweepStore; duckdb.ts on Node)
 *   pool.ts   local workers; queue.ts BullMQ workers (both: Point in, PointResult out)
 *   report.ts tables and plots from a store
 */

import type { z } from 'zod';
import type { EvalData } from '../eval/data.js';
import type { Model } from '../models/index.js';
import type { Provider } from '../runtime/session.js';
import type { Problem } from '../util/errors.js';

/** A point's settings: everything its result depends on, as plain JSON (the id hashes it). */
export type PointSettings = Readonly<Record<string, string | number | boolean | null>>;

/** One evaluation of a sweep. */
export interface Point {
  /**
   * A hash of the canonical JSON of `settings` (keys sorted): the same settings give the same id
   * on every machine and in every run, so a point is stored once however often it runs.
   */
  id: string;
  /** Its place in the sweep file's expansion order (progress and reports keep this order). */
  index: number;
  settings: PointSettings;
}

/** What a sweep file defines, as stored with its results (a resumed sweep must match it). */
export interface SweepDefinition {
  /** The sweep's name (the file's `name`, else its base name). */
  name: string;
  /** The file's text as read, for the record. */
  source: string;
  /** The points, in order. */
  points: readonly Point[];
}

/** Who ran a point, where and when (kept beside the metrics; not part of the result). */
export interface Provenance {
  host: string;
  /** The worker's name: `local-3`, or the queue worker's `host:pid`. */
  worker: string;
  /** ISO time the attempt started. */
  started: string;
  seconds: number;
  /** xbar's version that computed it. */
  xbar: string;
}

/** One finished point. */
export interface PointResult {
  id: string;
  /**
   * Named numbers: the task metric with its 95 % interval (`metric`, `metric_low`,
   * `metric_high`, and `metric_name` in `labels`), examples evaluated, cost (energy, delay,
   * area, EDAP) and SNR where the point computes them.
   */
  metrics: Readonly<Record<string, number>>;
  /** Named strings the metrics need to be read (the metric's name, the cost's units, …). */
  labels?: Readonly<Record<string, string>>;
  provenance: Provenance;
}

/** Runs one point: the same settings give the same metrics on any machine (seeded noise). */
export type RunPoint = (
  point: Point,
  o?: { signal?: AbortSignal },
) => Promise<Omit<PointResult, 'provenance'>>;

/**
 * Where a sweep's results live: one row per point id, written in a transaction as each point
 * finishes, so a run killed at any moment loses at most the points in flight and never stores a
 * point twice. A store holds one sweep; it refuses another sweep's definition and a store of a
 * newer schema, and reads the schemas of earlier versions.
 */
export interface SweepStore {
  /** Records the sweep, or checks that it is the one stored (more points may be added: an extended sweep). */
  begin(sweep: SweepDefinition): Promise<void>;
  /** The ids of the points stored. */
  doneIds(): Promise<Set<string>>;
  /** Stores a result in one transaction; false (and nothing changes) if its id is already stored. */
  put(result: PointResult): Promise<boolean>;
  /** Records a failed attempt (the point stays to do). */
  fail(id: string, message: string, provenance: Provenance): Promise<void>;
  close(): Promise<void>;
}

/** A stored point with its result: what reports read. */
export interface StoredRow {
  point: Point;
  /** Absent: not run yet (or only failed). */
  result?: PointResult;
  /** Failed attempts so far. */
  failures: number;
}

/** A stored sweep, with the store's schema version and what made it. */
export interface StoredSweep extends SweepDefinition {
  schema: number;
  /** The xbar version that made the store. */
  xbar: string;
  /** The host name and the machine in words (CPU, cores) that made it; absent in stores made before they were kept. */
  host?: string;
  machine?: string;
}

/** Reading a store: its sweep, its rows in point order, and SQL on it where the store speaks SQL. */
export interface SweepReader {
  /** The stored sweep: its source is the one that defined its points (a resume keeps the first run's). */
  sweep(): Promise<StoredSweep>;
  rows(): Promise<StoredRow[]>;
  /** Runs a read-only SQL query; → its columns and rows (values as JSON-safe scalars). */
  query?(sql: string): Promise<{ columns: string[]; rows: unknown[][] }>;
  close(): Promise<void>;
}

/** What a task's point may use of the worker that runs it: caches shared between its points. */
export interface TaskContext {
  /** Where the forwards run (the machine's choice: results do not depend on it). */
  provider: Provider;
  /** A note of calibration or loading (shown by a worker that asks for notes). */
  note(line: string): void;
  /** Throws if the point was given up (a queue's timeout): call it between long steps. */
  check(): void;
  /** A model folder, loaded once and kept while recently used. */
  model(dir: string): Promise<Model>;
  /** The data `spec` (KIND:PATH) opened for the model in `dir`, as `xbar eval` opens it; kept likewise. */
  data(
    dir: string,
    spec: string,
    o?: { split?: 'test' | 'dev' | 'train'; limit?: number; maxLength?: number },
  ): Promise<EvalData>;
  /**
   * A value the worker keeps between points by `key` (a calibration, a search), made once: the
   * points of a sweep that share it compute it once per worker. The few most recent are kept.
   */
  cached<V>(key: string, make: () => Promise<V>): Promise<V>;
}

/**
 * A kind of point other than `xbar eval`'s measurement (a point's `task` setting names it): what
 * a paper experiment runs as one unit, e.g. one instance of a PTO policy or one search for
 * ClipFormer's (α, β). Its settings are checked as the sweep file's are, and its result is named
 * numbers and strings as any point's.
 */
export interface PointTask {
  /** The `task` setting that picks it: lower case words with dashes (`pto-instance`). */
  name: string;
  /** One line: what a point of it computes. */
  description: string;
  /** The settings only this task reads, each with its schema (a message `use …` when refused). */
  settings: Readonly<Record<string, z.ZodType>>;
  /** Settings a point of it must have (of the shared ones or its own). */
  requires: readonly string[];
  /** Problems of a whole point beyond each setting's schema (`where` names the point). */
  check?(s: PointSettings, where: string): Problem[];
  run(point: Point, ctx: TaskContext): Promise<Omit<PointResult, 'provenance'>>;
}
