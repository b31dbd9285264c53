/**
 * `xbar worker --queue redis://HOST:PORT`: runs the points of sweeps queued there (`xbar sweep
 * FILE --queue …` on any machine) until stopped. Start one per machine, or per GPU, in a folder
 * where the sweeps' model and data paths resolve (they are read as written in the sweep file).
 */
import type { Command } from 'commander';
import { createPointRunner } from '../sweep/point.js';
import { closeOnSignals, shownUrl, startQueueWorker } from '../sweep/queue.js';
import { InputError } from '../util/errors.js';
import { XBAR_VERSION } from '../util/version.js';
import { flag, opt, providerOf, withOptions } from './flags.js';

interface WorkerFlags {
  queue: string;
  concurrency: number;
  lock: number;
  quiet?: boolean;
  provider: 'cpu' | 'webgpu' | 'auto';
  gpu?: string;
}

export function registerWorker(program: Command): void {
  withOptions(
    program
      .command('worker')
      .description(
        'run the points of sweeps queued on a Redis server (xbar sweep FILE --queue URL), until stopped (Ctrl-C: after the points running)',
      ),
    opt('--queue <url>', 'the Redis server of the queue: redis://HOST:PORT').makeOptionMandatory(),
    opt('--concurrency <n>', 'points run at once by this process (they share its cores and GPU)', 1, 1),
    opt(
      '--lock <seconds>',
      "a point's lock, renewed while it runs: a worker that dies loses its points to others after about this long",
      1,
      30,
    ),
    opt('--quiet', 'no line per point'),
    flag('provider', { value: 'cpu' }),
    flag('gpu'),
  ).action(async (o: WorkerFlags) => {
    if (!o.queue) throw new InputError('--queue: name the Redis server, e.g. --queue redis://HOST:6379');
    const provider = await providerOf(o);
    const log = (line: string) => process.stderr.write(`${line}\n`);
    const worker = await startQueueWorker(o.queue, createPointRunner({ provider }), {
      concurrency: o.concurrency,
      lockMs: o.lock * 1000,
      xbar: XBAR_VERSION,
      onNote: o.quiet ? () => {} : log,
    });
    log(
      `worker ${worker.name} on ${shownUrl(o.queue)}: running points ${o.concurrency} at a time on ${provider} (Ctrl-C stops it after the points running)`,
    );
    await closeOnSignals(worker, log);
    log(`worker ${worker.name}: ${worker.counts.done} points done, ${worker.counts.failed} failed attempts`);
  });
}
