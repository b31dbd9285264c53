/**
 * A sweep over many machines: the points go on a BullMQ queue in Redis, `xbar worker` on any
 * number of machines pulls and runs them, and one coordinator writes their results into the
 * sweep's store as they arrive.
 *
 *   points queue `xbar-points`          one job per point; id = sweep key + point id, so adding a
 *                                       point twice (a resumed or extended sweep, from any machine)
 *                                       adds it once. Retries with backoff; a worker that dies
 *                                       loses its lock and another takes the point (stall check).
 *   results queue `xbar-results-KEY`    what a worker sends back: a result, or a failed attempt.
 *
 * Results travel on a queue of their own rather than as BullMQ completion events: events live in
 * a capped stream and are lost while no coordinator listens, whereas a result job waits in Redis
 * until a coordinator has stored it (its job completes only after the store's transaction), so a
 * coordinator killed at any moment and started again anywhere loses nothing. A result delivered
 * twice (a point run again after its worker lost its lock) is stored once: `put` keys on the id.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { type Job, Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { InputError } from '../util/errors.js';
import { RETRIES } from './pool.js';
import type { Point, PointResult, Provenance, RunPoint, SweepDefinition, SweepStore } from './types.js';

export const POINTS_QUEUE = 'xbar-points';
const resultsQueueName = (key: string): string => `xbar-results-${key}`;

/** A sweep's key in Redis: its name made safe for key and job ids, and a hash of the name. */
export function sweepKey(name: string): string {
  const slug = name.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 40);
  return `${slug}-${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
}

/** The point's job id: the same point of the same sweep is one job whoever adds it. */
export const pointJobId = (key: string, pointId: string): string => `${key}.${pointId.replace(/:/g, '_')}`;

/** What a point job carries. */
interface PointJob {
  /** The sweep's name and key (where the result goes). */
  sweep: string;
  key: string;
  point: Point;
  /** Absent: no limit. */
  timeoutMs?: number;
  /** The coordinator's xbar version: a worker of another version does not run the point. */
  xbar?: string;
}

/** What a worker sends back about one attempt. */
type ResultMessage =
  | { kind: 'done'; result: PointResult }
  | { kind: 'failed'; id: string; message: string; provenance: Provenance; final: boolean };

// ---------------------------------------------------------------------------------------------
// Redis

/** The URL with its password hidden, for messages. */
export function shownUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

/**
 * Connects to the Redis server at `url`, once: no server answering within `timeoutMs` (or one
 * refusing, or one too old for BullMQ) is an InputError naming the URL, what was tried and why,
 * rather than the endless reconnecting a client does by default. The client returned reconnects
 * by itself later (a server restarting mid-sweep is waited for).
 */
export async function connectRedis(
  url: string,
  o: { flag?: string; timeoutMs?: number } = {},
): Promise<Redis> {
  const flag = o.flag ?? '--queue';
  const timeoutMs = o.timeoutMs ?? 5000;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InputError(flag, { field: 'URL', value: url, allowed: 'expected redis://HOST:PORT' });
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:')
    throw new InputError(flag, {
      field: 'URL',
      value: url,
      allowed: 'expected redis://HOST:PORT (or rediss:// for TLS)',
    });
  const target = `${parsed.hostname || 'localhost'}:${parsed.port || '6379'}`;
  const probe = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let last: Error | undefined;
  probe.on('error', (e: Error) => {
    last = e;
  });
  let version: string;
  try {
    await probe.connect();
    const info = await probe.info('server');
    version = /redis_version:(\S+)/.exec(info)?.[1] ?? '0';
  } catch (e) {
    probe.disconnect();
    const why = (last ?? (e as Error)).message;
    const hint = /NOAUTH|WRONGPASS|AUTH/.test(why)
      ? 'give its password in the URL: redis://:PASSWORD@HOST:PORT (or redis://USER:PASSWORD@HOST:PORT)'
      : `start one (e.g. redis-server --port ${parsed.port || '6379'}) or name a reachable one`;
    throw new InputError(
      `${flag} ${shownUrl(url)}: no Redis server could be used there (tried to connect to ${target} once, ` +
        `waiting up to ${timeoutMs / 1000} s: ${why}); ${hint}`,
    );
  }
  await probe.quit().catch(() => probe.disconnect());
  if (Number(version.split('.')[0]) < 5)
    throw new InputError(flag, {
      field: 'Redis version',
      value: version,
      allowed: `the queue needs Redis 5 or newer (the server at ${target})`,
    });
  // BullMQ's own connections block and must wait forever for a reply (maxRetriesPerRequest null)
  const client = new Redis(url, { maxRetriesPerRequest: null });
  client.on('error', () => {}); // reported through the queues' own 'error' events
  return client;
}

/** Closes a client quietly (a server already gone is not an error when stopping). */
async function quit(client: Redis): Promise<void> {
  await client.quit().catch(() => client.disconnect());
}

/** Messages of the same kind at most every `ms`: a server gone for a minute says so once or twice. */
function throttled(report: (line: string) => void, ms = 10_000): (line: string) => void {
  let last = 0;
  return (line) => {
    const now = Date.now();
    if (now - last >= ms) {
      last = now;
      report(line);
    }
  };
}

// ---------------------------------------------------------------------------------------------
// The coordinator

/** A sweep's state on the queue, as the terminal progress and the JSON status show it. */
export interface QueueProgress {
  /** Points in the sweep. */
  total: number;
  /** Points stored (before this run and during it). */
  done: number;
  /** Points that failed all their attempts (not stored; a later resume tries them again). */
  failed: number;
  /** Failed attempts seen in this run (retried ones included). */
  failedAttempts: number;
  /** Points stored by this run, and the rate of those per second since it began. */
  storedNow: number;
  rate: number;
  /** Seconds until the points left are done at that rate (null before the first). */
  etaSeconds: number | null;
  /** The latest failure or connection problem, for the status line. */
  lastError?: string;
}

/** A result stored (or refused: stored already) or a failed attempt, as it arrives. */
export type QueueEvent =
  | { type: 'done'; point: Point; result: PointResult; stored: boolean }
  | { type: 'fail'; point: Point; message: string; final: boolean };

export interface QueueSweepOptions {
  /** Attempts per point before it counts as failed (default RETRIES + 1, as a local sweep). */
  attempts?: number;
  /** First retry's delay; each further one doubles it (default 2000 ms). */
  backoffMs?: number;
  /** A point running longer than this fails its attempt (its run is aborted; default: no limit). */
  timeoutMs?: number;
  /** Called as results arrive and every second. */
  onProgress?: (p: QueueProgress) => void;
  /** Each result and failed attempt as it arrives (as the local pool reports them). */
  onEvent?: (e: QueueEvent) => void;
  /** Notes (a failed attempt, Redis unreachable for a while) for the terminal. */
  onNote?: (line: string) => void;
  /** Stops coordinating (the points stay queued and their results wait for the next coordinator). */
  signal?: AbortSignal;
  /** How often the queue is checked for points failed or lost outside the results (default 5000 ms). */
  checkMs?: number;
  /** How long to wait for another coordinator's claim on the sweep to lapse (default 17 s). */
  claimWaitMs?: number;
  /** xbar's version: workers of another version leave the points to workers of this one. */
  xbar?: string;
  /** The queues' key prefix in Redis (default 'xbar'): sweeps under other prefixes never meet. */
  prefix?: string;
}

export interface QueueSweepSummary {
  total: number;
  done: number;
  storedNow: number;
  /** Results that arrived for points already stored (a point run twice), dropped. */
  duplicates: number;
  /** Points that failed all their attempts, with their last message. */
  failed: { id: string; message: string }[];
  /** Whether the sweep ended (every point stored or failed), rather than being stopped. */
  finished: boolean;
  seconds: number;
}

/** Waits (up to a minute) until no result waits on `results`: those queued so far are stored. */
async function drained(results: Queue<ResultMessage>, signal: AbortSignal | undefined): Promise<void> {
  for (const t = Date.now(); Date.now() - t < 60_000 && !signal?.aborted; ) {
    const c = await results.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
    if (Object.values(c).every((n) => n === 0)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The coordinator's claim on a sweep: one coordinator stores a sweep's results at a time. */
const CLAIM_MS = 15_000;
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

async function claimSweep(
  redis: Redis,
  prefix: string,
  key: string,
  name: string,
  signal: AbortSignal | undefined,
  note: (line: string) => void,
  waitMs = CLAIM_MS + 2000,
): Promise<() => Promise<void>> {
  const claim = `${prefix}:coordinator:${key}`;
  const me = `${hostname()}:${process.pid}:${Date.now()}`;
  let noted = false;
  // a coordinator that was killed leaves its claim for CLAIM_MS at most: wait that long for it
  for (const until = Date.now() + waitMs; ; ) {
    if ((await redis.set(claim, me, 'PX', CLAIM_MS, 'NX')) === 'OK') break;
    const holder = (await redis.get(claim)) ?? '';
    const ttl = await redis.pttl(claim);
    if (Date.now() > until || signal?.aborted)
      throw new InputError(
        `sweep ${JSON.stringify(name)}: another coordinator (${holder.split(':').slice(0, 2).join(':')}) is storing ` +
          'its results from this queue; stop it first (the claim of one that was killed lapses within 15 s)',
      );
    if (!noted) {
      noted = true;
      note(
        `waiting for the claim of coordinator ${holder.split(':').slice(0, 2).join(':')} on this sweep to lapse (${Math.ceil(ttl / 1000)} s)`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const renew = setInterval(() => {
    redis.eval(RENEW, 1, claim, me, CLAIM_MS).catch(() => {});
  }, CLAIM_MS / 3);
  return async () => {
    clearInterval(renew);
    await redis.eval(RELEASE, 1, claim, me).catch(() => {});
  };
}

/**
 * Runs `sweep` on the queue at `url`: stores it (or checks it against the store), adds the points
 * not stored yet as jobs, and stores each result as it arrives, until every point is stored or has
 * failed its attempts (or `signal` stops it). Workers (`xbar worker`) do the work; the same call
 * on another machine, or after this one was killed, resumes (or extends) the sweep.
 */
export async function runSweepOnQueue(
  url: string,
  sweep: SweepDefinition,
  store: SweepStore,
  o: QueueSweepOptions = {},
): Promise<QueueSweepSummary> {
  const t0 = Date.now();
  const note = o.onNote ?? (() => {});
  const attempts = o.attempts ?? RETRIES + 1;
  const redis = await connectRedis(url);
  const key = sweepKey(sweep.name);
  const prefix = o.prefix ?? 'xbar';
  let release: (() => Promise<void>) | undefined;
  const closers: (() => Promise<void>)[] = [];
  try {
    release = await claimSweep(redis, prefix, key, sweep.name, o.signal, note, o.claimWaitMs);
    await store.begin(sweep);
    const stored = await store.doneIds();
    const byId = new Map(sweep.points.map((p) => [p.id, p]));
    const pending = new Set(sweep.points.filter((p) => !stored.has(p.id)).map((p) => p.id));
    const failedFinal = new Map<string, string>();
    let storedNow = 0;
    let duplicates = 0;
    let failedAttempts = 0;
    let lastError: string | undefined;
    let lastResultAt = Date.now();

    const progress = (): QueueProgress => {
      const seconds = (Date.now() - t0) / 1000;
      const rate = seconds > 0 ? storedNow / seconds : 0;
      const left = pending.size - failedFinal.size;
      return {
        total: sweep.points.length,
        done: sweep.points.length - pending.size,
        failed: failedFinal.size,
        failedAttempts,
        storedNow,
        rate,
        etaSeconds: storedNow > 0 ? left / rate : left === 0 ? 0 : null,
        ...(lastError ? { lastError } : {}),
      };
    };
    const report = () => o.onProgress?.(progress());
    let finish: () => void = () => {};
    const ended = new Promise<void>((r) => {
      finish = r;
    });
    // failedFinal holds pending points only (a result takes its point out of both)
    const over = () => pending.size === failedFinal.size;
    const check = () => {
      if (over()) finish();
    };
    const redisNote = throttled((line) => note(line));
    const onQueueError = (e: Error) => {
      lastError = `Redis at ${shownUrl(url)}: ${e.message}`;
      redisNote(`${lastError} (waiting for it)`);
    };

    const points = new Queue<PointJob>(POINTS_QUEUE, { connection: redis, prefix });
    points.on('error', onQueueError);
    closers.push(() => points.close());
    const resultsName = resultsQueueName(key);
    const results = new Queue<ResultMessage>(resultsName, { connection: redis, prefix });
    results.on('error', onQueueError);
    closers.push(() => results.close());

    // results left by an earlier coordinator that could not store them are delivered again
    await results.retryJobs({ state: 'failed' });

    let storeError: unknown;
    // results are fetched several at a time (Redis round trips overlap) and stored one at a time
    let storing: Promise<unknown> = Promise.resolve();
    const oneAtATime = (f: () => Promise<void>): Promise<void> => {
      const next = storing.then(f);
      storing = next.catch(() => {});
      return next;
    };
    const consumer = new Worker<ResultMessage>(
      resultsName,
      (job) =>
        oneAtATime(async () => {
          const m = job.data;
          lastResultAt = Date.now();
          if (m.kind === 'done') {
            if (!byId.has(m.result.id)) return; // a point no longer in this sweep's definition
            if (await store.put(m.result)) storedNow++;
            else duplicates++;
            pending.delete(m.result.id);
            failedFinal.delete(m.result.id);
          } else {
            if (!byId.has(m.id) || !pending.has(m.id)) return;
            await store.fail(m.id, m.message, m.provenance);
            failedAttempts++;
            lastError = `point ${byId.get(m.id)!.index} (${m.id}) on ${m.provenance.worker}: ${m.message}`;
            if (!o.onEvent) note(`${m.final ? 'failed' : 'attempt failed, retrying'}: ${lastError}`);
            if (m.final) failedFinal.set(m.id, m.message);
            o.onEvent?.({ type: 'fail', point: byId.get(m.id)!, message: m.message, final: m.final });
          }
          report();
          check();
        }),
      { connection: redis, prefix, concurrency: 8, removeOnComplete: { count: 0 }, maxStalledCount: 1000 },
    );
    consumer.on('error', onQueueError);
    // a store that cannot take a result ends the sweep: the result stays queued for a later run
    consumer.on('failed', (_job, e) => {
      storeError ??= e;
      finish();
    });
    closers.unshift(() => consumer.close());

    // Which points to queue. A point job that completed sent its result first, so: note the
    // jobs' states, store the results waiting now, and then a point still not stored whose job
    // had completed lost its result (another store took it, or it was lost): it runs again, as
    // does one that failed all its attempts in an earlier run. Jobs waiting or running are kept
    // (adding them again adds nothing).
    const todo = sweep.points.filter((p) => pending.has(p.id));
    const states = new Map<string, string>();
    for (let i = 0; i < todo.length; i += 1000) {
      const chunk = todo.slice(i, i + 1000);
      const got = await Promise.all(chunk.map((p) => points.getJobState(pointJobId(key, p.id))));
      for (const [j, p] of chunk.entries()) states.set(p.id, got[j]!);
    }
    await drained(results, o.signal);
    const jobOf = (point: Point) => ({
      name: 'point',
      data: {
        sweep: sweep.name,
        key,
        point,
        ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
        ...(o.xbar ? { xbar: o.xbar } : {}),
      },
      opts: {
        jobId: pointJobId(key, point.id),
        attempts,
        backoff: { type: 'exponential', delay: o.backoffMs ?? 2000 },
        // kept a day, so that the states above can tell a point done from one never queued
        removeOnComplete: { age: 86_400 },
        removeOnFail: false,
      },
    });
    const queued = todo.filter((p) => pending.has(p.id));
    for (const p of queued) {
      const state = states.get(p.id);
      if (state === 'completed' || state === 'failed') await points.remove(pointJobId(key, p.id));
    }
    for (let i = 0; i < queued.length; i += 500) await points.addBulk(queued.slice(i, i + 500).map(jobOf));
    note(
      `sweep ${JSON.stringify(sweep.name)} on ${shownUrl(url)}: ${sweep.points.length - queued.length} of ${sweep.points.length} ` +
        `points stored, ${queued.length} queued for workers (xbar worker --queue ${shownUrl(url)})`,
    );
    report();
    check();

    // what the results cannot tell: points that failed by stalling too often (their worker died
    // each time), and points whose job is gone (a Redis server restarted without its data)
    const reconcile = async () => {
      for (const job of await points.getFailed(0, -1)) {
        const id = (job.data as PointJob | undefined)?.point?.id;
        if (!job.id?.startsWith(`${key}.`) || !id || !pending.has(id) || failedFinal.has(id)) continue;
        failedFinal.set(id, job.failedReason);
        const provenance: Provenance = {
          host: '',
          worker: job.processedBy ?? '',
          started: new Date(job.processedOn ?? Date.now()).toISOString(),
          seconds: 0,
          xbar: '',
        };
        await store.fail(id, job.failedReason, provenance);
        o.onEvent?.({ type: 'fail', point: byId.get(id)!, message: job.failedReason, final: true });
        note(`failed: point ${byId.get(id)!.index} (${id}): ${job.failedReason}`);
      }
      if (Date.now() - lastResultAt > (o.checkMs ?? 5000)) {
        const lost = [];
        for (const id of pending) {
          if (!failedFinal.has(id) && (await points.getJobState(pointJobId(key, id))) === 'unknown')
            lost.push(id);
        }
        if (lost.length) {
          note(`${lost.length} points had no job on the queue (lost by Redis?): queued again`);
          await points.addBulk(lost.map((id) => jobOf(byId.get(id)!)));
        }
      }
      report();
      check();
    };
    let checking = false;
    const checker = setInterval(() => {
      if (checking) return;
      checking = true;
      reconcile()
        .catch((e: Error) => onQueueError(e))
        .finally(() => {
          checking = false;
        });
    }, o.checkMs ?? 5000);
    const ticker = setInterval(report, 1000);
    const onAbort = () => finish();
    o.signal?.addEventListener('abort', onAbort);
    if (o.signal?.aborted) finish(); // stopped while the points were being queued
    try {
      await ended;
    } finally {
      clearInterval(checker);
      clearInterval(ticker);
      o.signal?.removeEventListener('abort', onAbort);
    }
    if (storeError) throw storeError;
    report();
    const finished = over();
    return {
      total: sweep.points.length,
      done: sweep.points.length - pending.size,
      storedNow,
      duplicates,
      failed: [...failedFinal].map(([id, message]) => ({ id, message })),
      finished,
      seconds: (Date.now() - t0) / 1000,
    };
  } finally {
    for (const close of closers) await close().catch(() => {});
    await release?.();
    await quit(redis);
  }
}

// ---------------------------------------------------------------------------------------------
// The worker

export interface QueueWorkerOptions {
  /** Points run at once in this process (default 1). */
  concurrency?: number;
  /**
   * How long a point's lock lasts without renewal (default 30 s; renewed at half that). A worker
   * killed mid-point loses its point to another worker about this long, plus `stalledMs`, later.
   */
  lockMs?: number;
  /** How often this worker looks for points whose worker died (default: lockMs). */
  stalledMs?: number;
  /** Deaths of its worker a point survives before it counts as failed (default 3). */
  maxStalls?: number;
  /** The worker's name in results (default host:pid). */
  name?: string;
  /** xbar's version, for the results' provenance. */
  xbar?: string;
  /** Notes: points started and finished, failures, Redis unreachable. */
  onNote?: (line: string) => void;
  /** The queues' key prefix in Redis (default 'xbar'), as the coordinator's. */
  prefix?: string;
}

export interface QueueWorker {
  /** Its name in the results' provenance (host:pid unless given). */
  readonly name: string;
  /** Stops taking points; finishes those running (or, with `force`, abandons them to other workers). */
  close(force?: boolean): Promise<void>;
  /** Points finished and failed attempts by this worker so far. */
  readonly counts: { done: number; failed: number };
}

/** Runs points from the queue at `url` with `runPoint` until closed. */
export async function startQueueWorker(
  url: string,
  runPoint: RunPoint,
  o: QueueWorkerOptions = {},
): Promise<QueueWorker> {
  const redis = await connectRedis(url);
  const prefix = o.prefix ?? 'xbar';
  const host = hostname();
  const name = o.name ?? `${host}:${process.pid}`;
  const note = o.onNote ?? (() => {});
  const redisNote = throttled(note);
  const counts = { done: 0, failed: 0 };
  const resultQueues = new Map<string, Queue<ResultMessage>>();
  const send = async (key: string, m: ResultMessage, jobId?: string) => {
    let q = resultQueues.get(key);
    if (!q) {
      q = new Queue<ResultMessage>(resultsQueueName(key), { connection: redis, prefix });
      q.on('error', (e) => redisNote(`Redis at ${shownUrl(url)}: ${e.message}`));
      resultQueues.set(key, q);
    }
    await q.add(m.kind, m, { ...(jobId ? { jobId } : {}), removeOnComplete: true, removeOnFail: false });
  };

  const process_ = async (job: Job<PointJob>, _token?: string, signal?: AbortSignal) => {
    const { point, key, timeoutMs } = job.data;
    const started = new Date();
    const provenance = (): Provenance => ({
      host,
      worker: name,
      started: started.toISOString(),
      seconds: (Date.now() - started.getTime()) / 1000,
      xbar: o.xbar ?? '',
    });
    const abort = new AbortController();
    const onAbort = () => abort.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      if (timeoutMs === undefined) return;
      timer = setTimeout(() => {
        const e = new Error(`ran past its timeout of ${timeoutMs / 1000} s`);
        abort.abort(e);
        reject(e);
      }, timeoutMs);
    });
    try {
      if (job.data.xbar && o.xbar && job.data.xbar !== o.xbar)
        throw Object.assign(
          new Error(
            `this worker runs xbar ${o.xbar} and the sweep was queued by xbar ${job.data.xbar}, whose points might compute differently: run xbar ${job.data.xbar} here`,
          ),
          { plain: true },
        );
      const r = await Promise.race([runPoint(point, { signal: abort.signal }), timedOut]);
      const result: PointResult = { ...r, id: point.id, provenance: provenance() };
      await send(key, { kind: 'done', result }, `done.${point.id.replace(/:/g, '_')}`);
      counts.done++;
      note(
        `point ${point.index} (${point.id}) of ${job.data.sweep}: done in ${result.provenance.seconds.toFixed(1)} s`,
      );
    } catch (e) {
      const err = e as Error;
      // bad input fails the same way on every machine: no point in trying it again
      const unrecoverable = err instanceof InputError || err instanceof UnrecoverableError;
      const final = unrecoverable || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      counts.failed++;
      note(`point ${point.index} (${point.id}) of ${job.data.sweep}: failed: ${err.message}`);
      await send(key, {
        kind: 'failed',
        id: point.id,
        message: err.message,
        provenance: provenance(),
        final,
      });
      throw unrecoverable ? new UnrecoverableError(err.message) : err;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  };

  const worker = new Worker<PointJob>(POINTS_QUEUE, process_, {
    connection: redis,
    prefix: o.prefix ?? 'xbar',
    name,
    concurrency: o.concurrency ?? 1,
    lockDuration: o.lockMs ?? 30_000,
    stalledInterval: o.stalledMs ?? o.lockMs ?? 30_000,
    maxStalledCount: o.maxStalls ?? 3,
  });
  worker.on('error', (e) => redisNote(`Redis at ${shownUrl(url)}: ${e.message}`));
  worker.on('stalled', (id) => note(`point job ${id} lost its worker: queued again`));
  await worker.waitUntilReady();

  let closing: Promise<void> | undefined;
  return {
    name,
    counts,
    close(force = false) {
      if (force) closing = worker.close(true).then(() => undefined);
      closing ??= worker.close();
      return closing.finally(async () => {
        for (const q of resultQueues.values()) await q.close().catch(() => {});
        await quit(redis);
      });
    },
  };
}

/**
 * Stops `worker` on SIGINT or SIGTERM: the first lets the points running finish (their results
 * are sent), a second abandons them (other workers take them up once their locks lapse).
 */
export function closeOnSignals(
  worker: QueueWorker,
  note: (line: string) => void = console.error,
): Promise<void> {
  return new Promise((resolve) => {
    let signals = 0;
    const stop = (sig: NodeJS.Signals) => {
      signals++;
      if (signals === 1) note(`${sig}: finishing the points running, then stopping (again to stop now)`);
      else {
        note(`${sig}: stopping now; the points running go back to the queue once their locks lapse`);
        // a Redis server gone for good would hold even a forced close: the process ends anyway
        setTimeout(() => process.exit(130), 5000).unref();
      }
      worker.close(signals > 1).then(() => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
