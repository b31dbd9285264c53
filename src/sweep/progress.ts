/**
 * A sweep's progress, for people and for pages: a bar on the terminal (util/progress.ts: points
 * done of the total, ETA) with a line per failed attempt, and a JSON status file beside the store
 * (`STORE.status.json`, rewritten atomically at most once a second and at the end) that a web page
 * can poll: points done, running, failed, the rate and the ETA.
 */

import { writeFileAtomic } from '../util/files.js';
import { progress } from '../util/progress.js';
import type { PoolEvent } from './pool.js';

/** The JSON status (snake_case, as the store's columns). */
export interface SweepStatus {
  sweep: string;
  store: string;
  state: 'running' | 'done' | 'failed';
  total: number;
  /** Points stored, those stored before this run included. */
  done: number;
  /** Stored by this run. */
  done_now: number;
  running: number;
  /** Failed attempts in this run, and points that failed every attempt. */
  failed_attempts: number;
  failed_points: number;
  /** Points per minute in this run, and the seconds left at that rate (null until a point is done). */
  rate_per_min: number | null;
  eta_s: number | null;
  started: string;
  updated: string;
  /** The last failure's message, if any. */
  last_error: string | null;
}

export const statusFile = (store: string): string => `${store}.status.json`;

export class SweepProgress {
  private readonly status: SweepStatus;
  private readonly bar;
  private readonly t0 = Date.now();
  private lastWrite = 0;
  /** A write put off by the once-a-second limit, so that the file catches up with the last event. */
  private pending: NodeJS.Timeout | undefined;

  constructor(
    o: { sweep: string; store: string; total: number; done: number; quiet?: boolean },
    private readonly file = statusFile(o.store),
    private readonly log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  ) {
    const now = new Date().toISOString();
    this.status = {
      sweep: o.sweep,
      store: o.store,
      state: 'running',
      total: o.total,
      done: o.done,
      done_now: 0,
      running: 0,
      failed_attempts: 0,
      failed_points: 0,
      rate_per_min: null,
      eta_s: null,
      started: now,
      updated: now,
      last_error: null,
    };
    this.quiet = !!o.quiet;
    this.bar = progress('points', o.total - o.done, { quiet: this.quiet });
    this.write(true);
  }

  private readonly quiet: boolean;

  /** Follows the pool's events. */
  readonly onEvent = (e: PoolEvent): void => {
    const s = this.status;
    if (e.type === 'start') s.running++;
    else if (e.type === 'done') {
      s.running--;
      if (e.stored) {
        s.done++;
        s.done_now++;
      }
      this.bar.tick();
    } else {
      s.running--;
      s.failed_attempts++;
      s.last_error = e.message;
      if (e.final) s.failed_points++;
      if (!this.quiet)
        this.log(
          `\npoint ${e.point.index} (${e.point.id}) failed${e.final ? ', no attempts left' : ', will be tried again'}: ${e.message.split('\n')[0]}`,
        );
    }
    // a failure is written at once: a reader waiting on it (a person, a test) sees it now
    this.write(e.type === 'fail');
  };

  private write(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.lastWrite < 1000) {
      this.pending ??= setTimeout(
        () => {
          this.pending = undefined;
          this.write(true);
        },
        1000 - (now - this.lastWrite),
      ).unref();
      return;
    }
    clearTimeout(this.pending);
    this.pending = undefined;
    this.lastWrite = now;
    const s = this.status;
    const minutes = (now - this.t0) / 60e3;
    s.rate_per_min = s.done_now > 0 ? s.done_now / minutes : null;
    const left = s.total - s.done - s.failed_points;
    s.eta_s = s.rate_per_min ? Math.round((60 * left) / s.rate_per_min) : null;
    s.updated = new Date(now).toISOString();
    writeFileAtomic(this.file, `${JSON.stringify(s, null, 1)}\n`);
  }

  /** The final status, written. */
  end(state: 'done' | 'failed'): SweepStatus {
    this.bar.stop();
    this.status.state = state;
    this.status.running = 0;
    this.write(true);
    return { ...this.status };
  }
}
