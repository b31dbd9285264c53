/**
 * A local pool of worker processes (pool-worker.ts): each point runs in a child process, whose
 * native libraries, ONNX Runtime and memory are its own, and the results stream back to
 * this process, which alone writes the store, each as it arrives. A worker that fails a point
 * reports the error; one that dies (killed, out of memory) is replaced; either way the point is
 * recorded as a failed attempt and tried again, up to `retries` more times. Killing this process
 * (even with `kill -9`) ends the workers and loses only the points in flight, which a rerun does.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { availableParallelism, hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Provider } from '../runtime/session.js';
import { XBAR_VERSION } from '../util/version.js';
import type { FromWorker, ToWorker } from './pool-worker.js';
import type { Point, PointResult, Provenance, SweepStore } from './types.js';

export type PoolEvent =
  | { type: 'start'; point: Point; worker: string }
  | { type: 'done'; point: Point; result: PointResult; stored: boolean }
  | { type: 'fail'; point: Point; message: string; final: boolean };

export interface PoolOptions {
  workers: number;
  store: SweepStore;
  /** More attempts for a point that failed (default RETRIES). */
  retries?: number;
  provider?: Provider;
  /** Seconds a point may run before its worker is killed and the attempt counts as failed. */
  timeoutS?: number;
  onEvent?: (e: PoolEvent) => void;
}

export interface PoolOutcome {
  stored: number;
  /** Points that failed every attempt, with their last error. */
  failed: { point: Point; message: string }[];
}

/** More attempts for a point that failed, by default (locally and on a queue). */
export const RETRIES = 2;

const WORKER = fileURLToPath(new URL('./pool-worker.js', import.meta.url));

/**
 * Threads per worker: the cores shared out, so N workers do not each start a thread per core
 * ($XBAR_THREADS, when set, is kept).
 */
export const threadsPerWorker = (workers: number): number =>
  Math.max(1, Math.floor(availableParallelism() / Math.max(1, workers)));

/** Runs `points` (those to do, in order) on `workers` processes, storing each result. */
export function runPool(points: readonly Point[], o: PoolOptions): Promise<PoolOutcome> {
  const retries = o.retries ?? RETRIES;
  const todo = [...points];
  const attempts = new Map<string, number>();
  const failed: PoolOutcome['failed'] = [];
  let stored = 0;
  let running = 0;
  const host = hostname();
  const env = {
    ...process.env,
    XBAR_THREADS: process.env['XBAR_THREADS'] ?? String(threadsPerWorker(o.workers)),
  };
  const children = new Set<ChildProcess>();

  return new Promise<PoolOutcome>((resolve, reject) => {
    let writes: Promise<void> = Promise.resolve();
    let fatal: unknown;
    let finished = false;
    /**
     * Ends the pool once the writes under way are done: resolved, or rejected with the error that
     * ended it (the store's, or a worker's that cannot start).
     */
    const finish = () => {
      if (finished) return;
      finished = true;
      for (const c of children) if (c.connected) c.disconnect();
      void writes.then(() => (fatal === undefined ? resolve({ stored, failed }) : reject(fatal)));
    };
    /** Writes run one after the other; a store that fails ends the sweep (nothing more can be kept). */
    const write = (f: () => Promise<void>) => {
      writes = writes.then(f).catch((e) => {
        fatal ??= e;
        finish();
      });
    };
    const maybeDone = () => {
      if (!todo.length && running === 0) write(async () => finish());
    };
    const failure = (point: Point, message: string, p: Provenance) => {
      const n = (attempts.get(point.id) ?? 0) + 1;
      attempts.set(point.id, n);
      const final = n > retries;
      if (final) failed.push({ point, message });
      else todo.push(point);
      write(async () => {
        await o.store.fail(point.id, message, p);
        o.onEvent?.({ type: 'fail', point, message, final });
      });
    };

    const spawn = (name: string) => {
      const child = fork(WORKER, [o.provider ?? 'cpu'], {
        env,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      children.add(child);
      let current: { point: Point; started: string; t0: number } | null = null;
      let timer: NodeJS.Timeout | undefined;
      let timedOut = false;
      const next = () => {
        const point = todo.shift();
        if (!point || finished) {
          if (child.connected) child.disconnect();
          return maybeDone();
        }
        running++;
        current = { point, started: new Date().toISOString(), t0: performance.now() };
        o.onEvent?.({ type: 'start', point, worker: name });
        child.send({ type: 'run', point } satisfies ToWorker);
        // a point that hangs would hold its worker forever: past the limit the worker is killed
        if (o.timeoutS !== undefined)
          timer = setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, o.timeoutS * 1e3);
      };
      const provenance = (started: string, seconds: number): Provenance => ({
        host,
        worker: name,
        started,
        seconds,
        xbar: XBAR_VERSION,
      });
      child.on('message', (m: FromWorker) => {
        const c = current;
        if (!c || m.id !== c.point.id) return;
        clearTimeout(timer);
        current = null;
        running--;
        if (m.type === 'result') {
          const result: PointResult = {
            id: m.id,
            metrics: m.metrics,
            labels: m.labels,
            provenance: provenance(m.started, m.seconds),
          };
          write(async () => {
            const isNew = await o.store.put(result);
            if (isNew) stored++;
            o.onEvent?.({ type: 'done', point: c.point, result, stored: isNew });
          });
        } else failure(c.point, m.message, provenance(m.started, m.seconds));
        next();
      });
      child.on('exit', (code, signal) => {
        children.delete(child);
        clearTimeout(timer);
        const c = current;
        if (!c) return maybeDone();
        // died mid-point: that attempt failed; a fresh worker takes the slot
        current = null;
        running--;
        failure(
          c.point,
          timedOut
            ? `timed out after ${o.timeoutS} s (worker ${name} killed)`
            : `worker ${name} ended mid-point (${signal ? `signal ${signal}` : `exit code ${code}`})`,
          provenance(c.started, (performance.now() - c.t0) / 1e3),
        );
        if (!finished) spawn(name);
      });
      child.on('error', (e) => {
        fatal ??= e;
        finish();
      });
      next();
    };

    if (!todo.length) return finish();
    for (let k = 1; k <= Math.min(o.workers, todo.length); k++) spawn(`local-${k}`);
  });
}
