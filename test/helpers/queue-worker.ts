/**
 * A queue worker process running synthetic points: `node queue-worker.js URL PREFIX [CONCURRENCY]`.
 * It prints `start ID` and `end ID` as points begin and end, so a test can kill it mid-point;
 * it ends when its stdin closes (the test is gone).
 */
import { closeOnSignals, startQueueWorker } from '../../src/sweep/queue.js';
import { syntheticPoint } from './synthetic-point.js';

const [url, prefix, concurrency] = process.argv.slice(2);
const worker = await startQueueWorker(
  url!,
  async (point, o) => {
    console.log(`start ${point.id}`);
    const r = await syntheticPoint(point, o);
    console.log(`end ${point.id}`);
    return r;
  },
  { prefix: prefix!, concurrency: Number(concurrency ?? 1), lockMs: 1000, stalledMs: 500 },
);
console.log('ready');
// the test that started it may end without stopping it: its stdin closing says so
process.stdin.on('end', () => void worker.close(true).then(() => process.exit(0)));
process.stdin.resume();
await closeOnSignals(worker, () => {});
process.exit(0);
