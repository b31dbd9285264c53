/**
 * A queue worker running synthetic points, for a process of its own (see `queueWorkerArgs`).
 * It prints `ready`, then `start ID` and `end ID` as points begin and end, so a test can kill it
 * mid-point; it ends on SIGTERM or SIGINT, or when its stdin closes (the test is gone).
 */
import { closeOnSignals, startQueueWorker } from '../../src/sweep/queue.js';
import { syntheticPoint } from './synthetic-point.js';

export async function runSyntheticWorker(url: string, prefix: string, concurrency: number): Promise<never> {
  const worker = await startQueueWorker(
    url,
    async (point, o) => {
      console.log(`start ${point.id}`);
      const r = await syntheticPoint(point, o);
      console.log(`end ${point.id}`);
      return r;
    },
    { prefix, concurrency, lockMs: 1000, stalledMs: 500 },
  );
  console.log('ready');
  process.stdin.on('end', () => void worker.close(true).then(() => process.exit(0)));
  process.stdin.resume();
  await closeOnSignals(worker, () => {});
  process.exit(0);
}

/**
 * Node's arguments for a process that runs `runSyntheticWorker` (code given with -e: a file here
 * would be taken for a test by `node --test dist/test/`).
 */
export const queueWorkerArgs = (url: string, prefix: string, concurrency: number): string[] => [
  '--input-type=module',
  '-e',
  `const { runSyntheticWorker } = await import(${JSON.stringify(import.meta.url)});
   await runSyntheticWorker(${JSON.stringify(url)}, ${JSON.stringify(prefix)}, ${concurrency});`,
];
