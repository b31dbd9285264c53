/**
 * Programming several layers at once, in worker threads: each layer draws from its own stream
 * (a seed per instance and layer), so programming them in parallel gives the cells one by one
 * would. Programming is O(devices) JavaScript (~3 Gaussian draws, a log and two powers per PCM
 * device, 42M devices in DeiT-S), which on one core leaves the others idle.
 *
 * This module is also the workers' entry: loaded as a worker, it programs what it is sent.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { HostArray } from '../graph/ndarray.js';
import { nativeThreads } from '../runtime/native.js';
import { Rng, seedFor } from '../util/math.js';
import { type CellArrays, type ProgrammedWeights, programWeights } from './program.js';
import type { Crossbar } from './spec.js';

/** One layer to program: what `programWeights` takes, with the seed of its stream. */
export interface ProgramJob {
  weights: HostArray;
  xbar: Crossbar;
  timeS: number;
  seed: number;
  columnScale?: Float32Array;
  /** Cell arrays to program into (moved to the worker and back, so they leave the caller). */
  into?: CellArrays;
  /** Only the output scale is wanted (cells programmed again at every run): the cells come back empty. */
  scaleOnly?: boolean;
  /**
   * Only the cells are wanted (their scale is known): drift compensation, whose readouts draw
   * from a stream of their own and change only the scale, is skipped.
   */
  cellsOnly?: boolean;
}

/** Programs one job here, on this thread (into `j.into`'s arrays where given). */
export function runProgramJob(j: ProgramJob): ProgrammedWeights {
  // drift compensation's readouts draw from a stream of their own: the cells do not depend on whether they read the periphery
  const readout = new Rng(seedFor(j.seed, 'drift readout'));
  const xbar: Crossbar = j.cellsOnly ? { ...j.xbar, driftCompensation: 'none' } : j.xbar;
  const p = programWeights(j.weights, xbar, j.timeS, new Rng(j.seed), j.columnScale, j.into, readout);
  return j.scaleOnly ? { ...p, weights: new Float32Array(0), squares: new Float32Array(0) } : p;
}

const ROLE = 'xbar-program';

const buffersOf = (p: CellArrays & { scale?: Float32Array }) =>
  [p.weights.buffer, p.squares.buffer, ...(p.scale ? [p.scale.buffer] : [])] as ArrayBuffer[];

if (!isMainThread && workerData === ROLE) {
  parentPort!.on('message', ({ id, job }: { id: number; job: ProgramJob }) => {
    const p = runProgramJob(job);
    parentPort!.postMessage({ id, p }, buffersOf(p));
  });
}

/**
 * Programs `jobs` on up to `threads` workers (default: $XBAR_THREADS, else the cores), largest
 * layers first; the results in the order of `jobs`. A single job, or one thread, runs here.
 */
export async function programInWorkers(
  jobs: readonly ProgramJob[],
  threads = nativeThreads(),
): Promise<ProgrammedWeights[]> {
  const count = Math.min(threads, jobs.length);
  if (count <= 1) return jobs.map(runProgramJob);
  const results = new Array<ProgrammedWeights>(jobs.length);
  const order = jobs
    .map((_, i) => i)
    .sort((a, b) => jobs[b]!.weights.data.length - jobs[a]!.weights.data.length);
  let next = 0;
  const workers = Array.from(
    { length: count },
    () => new Worker(new URL(import.meta.url), { workerData: ROLE }),
  );
  try {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const send = () => {
              if (next >= order.length) return resolve();
              const id = order[next++]!;
              const job = jobs[id]!;
              w.postMessage({ id, job }, job.into ? buffersOf(job.into) : []);
            };
            w.on('message', ({ id, p }: { id: number; p: ProgrammedWeights }) => {
              results[id] = p;
              send();
            });
            w.on('error', reject);
            w.on('exit', (code) => {
              if (code !== 0) reject(new Error(`a programming worker stopped with exit code ${code}`));
            });
            send();
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}
