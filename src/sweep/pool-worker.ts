/**
 * A local pool's worker process (pool.ts forks it): runs the points its parent sends, one at a
 * time, and sends each result back. It writes nothing: the parent alone holds the store. It ends
 * when its parent does (the IPC channel closes), so killing the parent leaves no worker behind.
 */
import { hostname } from 'node:os';
import type { Provider } from '../runtime/session.js';
import { createPointRunner } from './point.js';
import type { Point } from './types.js';

export type ToWorker = { type: 'run'; point: Point };
export type FromWorker =
  | {
      type: 'result';
      id: string;
      metrics: Record<string, number>;
      labels: Record<string, string>;
      started: string;
      seconds: number;
    }
  | { type: 'error'; id: string; message: string; started: string; seconds: number };

const run = createPointRunner({ provider: (process.argv[2] ?? 'cpu') as Provider });
const send = (m: FromWorker) => process.send?.(m);

process.on('disconnect', () => process.exit(0));
process.on('message', async (m: ToWorker) => {
  if (m.type !== 'run') return;
  const started = new Date().toISOString();
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1e3;
  try {
    const r = await run(m.point);
    send({
      type: 'result',
      id: r.id,
      metrics: { ...r.metrics },
      labels: { ...r.labels },
      started,
      seconds: seconds(),
    });
  } catch (e) {
    const err = e as Error;
    const message =
      err.name === 'InputError' ? err.message : `${err.stack ?? err.message} (on ${hostname()})`;
    send({ type: 'error', id: m.point.id, message, started, seconds: seconds() });
  }
});
