/**
 * The WebAssembly build of the native kernels (native/crossbar_products.cc, compiled with SIMD128
 * and threads by scripts/build-wasm.mjs into prebuilds/wasm/xbar.wasm): the same products where
 * no native prebuild loads. Each call copies its arrays into the module's memory and the result
 * out; the read and output noise are drawn inside (native/philox.h). Threads are worker_threads
 * running instances of the same module on its shared memory; the calling thread waits for them
 * (memory.atomic.wait32, which Node allows on its main thread). wasm32 addresses 4 GiB: a
 * product whose arrays need more is refused (see MEMORY_LIMIT).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { InputError } from '../util/errors.js';
import type { CrossbarProductsArgs, FillNoiseArgs, NativeKernels } from './native.js';

const WASM = fileURLToPath(new URL('../../../prebuilds/wasm/xbar.wasm', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** What prebuilds/wasm/xbar.wasm.json records (scripts/build-wasm.mjs). */
interface Stamp {
  wasm: string;
  sources: Record<string, string>;
  constants: string;
}

/**
 * Bytes of one call's arrays the loader accepts: wasm32's 4 GiB less room for the kernel's own
 * buffers (bit masks, the threads’ stacks and tile copies).
 */
export const MEMORY_LIMIT = 3 * 2 ** 30;
const STACK = 1 << 20;
/** How long a call waits for new worker threads to start. */
const STARTUP_MS = 5000;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/**
 * The committed binary (or another with its stamp beside it), checked against its stamp: → its
 * bytes, or why it may not be used (an altered binary, or one built from other sources than the
 * checkout's).
 */
export function wasmBinary(wasm = WASM): { bytes: Uint8Array } | { refused: string } {
  if (!existsSync(wasm) || !existsSync(`${wasm}.json`)) return { refused: `${wasm} is missing` };
  const bytes = readFileSync(wasm);
  const stamp = JSON.parse(readFileSync(`${wasm}.json`, 'utf8')) as Stamp;
  if (sha256(bytes) !== stamp.wasm)
    return {
      refused: `${wasm} does not match the SHA-256 in ${wasm}.json (altered); run \`npm run build:wasm\``,
    };
  for (const [source, hash] of Object.entries(stamp.sources)) {
    const path = `${ROOT}${source}`;
    // sources are absent only where someone removed them: the stamp is then all there is
    if (existsSync(path) && sha256(readFileSync(path)) !== hash)
      return { refused: `${wasm} was built from another version of ${source}; run \`npm run build:wasm\`` };
  }
  return { bytes };
}

/** The parts of Node's global WebAssembly API used here (not in the ES library's types). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Memory: new (d: { initial: number; maximum: number; shared: true }) => { buffer: SharedArrayBuffer };
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const { Module, Memory, Instance } = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

interface Exports {
  xbar_malloc(bytes: number): number;
  xbar_free(at: number): void;
  xbar_constants(): number;
  xbar_products(args: number): number;
  xbar_fill_noise(
    out: number,
    outer: number,
    along: number,
    perSample: number,
    inner: number,
    columns: number,
    seed: number,
    std: number,
    firstSample: number,
    threads: number,
  ): number;
  xbar_workers(): number;
}

/**
 * Runs in each worker thread: an instance of the module on the shared memory, with its own
 * stack, serving the kernel's parallel regions until the process ends. A trap is reported to
 * the running product, which then fails.
 */
const WORKER = `
const { workerData } = require('node:worker_threads');
const { wasmModule, memory, stackTop } = workerData;
const x = new WebAssembly.Instance(wasmModule, { env: { memory } }).exports;
x.__stack_pointer.value = stackTop;
try {
  x.xbar_worker();
} catch (e) {
  console.error('xbar wasm: a worker thread failed: ' + e.message);
  x.xbar_worker_abandon();
}
`;

/** The fields of the kernel's Args struct (native/crossbar_products_wasm.cc), one 32-bit word each. */
const FIELDS = [
  ...['B', 'Bw', 'R', 'N', 'rows', 'C', 'J', 'planes', 'levels', 'threads'],
  ...['weightScale', 'squareScale', 'dacLevels'],
  ...['codes', 'inputs', 'weights', 'squares', 'unit', 'coef', 'gain', 'gainScale'],
  ...['gainBatches', 'gainBlock', 'sumTiles', 'out'],
  ...['noiseSeeds', 'samples', 'samplesAlongB', 'firstSample', 'outSigma', 'writeKind'],
  ...['cellLevels', 'cellBase', 'gMin', 'gMax', 'dG', 'dGSquared', 'writeNoiseScale', 'writeSquares'],
  ...['writeNoise0', 'writeNoise1', 'adcGain'],
] as const;
type Field = (typeof FIELDS)[number];
const FLOATS = new Set<Field>([
  'weightScale',
  'squareScale',
  'dacLevels',
  'outSigma',
  'cellLevels',
  'cellBase',
  'gMin',
  'gMax',
  'dG',
  'dGSquared',
  'writeNoiseScale',
]);
const WORD = new Map(FIELDS.map((f, i) => [f, i]));

/** The module instantiated on a fresh shared memory, with its worker threads started as calls ask for them. */
function instantiate(bytes: Uint8Array): NativeKernels {
  const module = new Module(bytes);
  const memory = new Memory({ initial: 64, maximum: 65536, shared: true });
  const x = new Instance(module, { env: { memory } }).exports as Exports;
  const text = (at: number) => {
    const b = new Uint8Array(memory.buffer);
    let end = at;
    while (b[end] !== 0) end++;
    return new TextDecoder().decode(b.slice(at, end));
  };
  const workers: Worker[] = [];
  // the threads a call asks for, up to one per core: started, and waited for (the first product
  // with them would otherwise run before they join)
  const ensureThreads = (threads: number) => {
    const want = Math.min(threads, availableParallelism()) - 1;
    if (workers.length >= want) return;
    while (workers.length < want) {
      const stack = x.xbar_malloc(STACK);
      if (stack === 0) throw new Error('xbar wasm: no memory for a worker thread’s stack');
      const w = new Worker(WORKER, {
        eval: true,
        workerData: { wasmModule: module, memory, stackTop: stack + STACK },
      });
      w.unref();
      w.on('error', (e) => console.error(`xbar wasm: a worker thread did not start: ${e.message}`));
      workers.push(w);
    }
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (let t = 0; x.xbar_workers() < want && t < STARTUP_MS; t++) Atomics.wait(pause, 0, 0, 1);
    if (x.xbar_workers() < want)
      console.error(
        `xbar wasm: ${want - x.xbar_workers()} worker thread(s) not started after ${STARTUP_MS} ms; going on without them`,
      );
  };
  let arena = { at: 0, bytes: 0 };
  // the arena holds at least `need` bytes (`what`: for the error)
  const reserve = (need: number, what: string) => {
    if (need > MEMORY_LIMIT)
      throw new InputError(
        `xbar wasm: ${what} needs ${(need / 2 ** 30).toFixed(2)} GiB of WebAssembly memory, more than the ` +
          `${MEMORY_LIMIT / 2 ** 30} GiB wasm32 allows here; use a smaller batch, or the native kernels`,
      );
    if (need <= arena.bytes) return;
    x.xbar_free(arena.at);
    const bytes = Math.min(MEMORY_LIMIT, Math.max(need, Math.ceil(arena.bytes * 1.5)));
    const base = x.xbar_malloc(bytes);
    if (base === 0)
      throw new InputError(
        `xbar wasm: no ${(bytes / 2 ** 20).toFixed(0)} MiB left in WebAssembly memory for ${what}`,
      );
    arena = { at: base, bytes };
  };
  function crossbarProducts(a: CrossbarProductsArgs): Float32Array {
    const { B, Bw, R, N, rows, C, J, planes } = a;
    const blocks = Math.ceil(C / Math.max(1, a.gainBlock ?? 1));
    const inSize = B * R * N * rows;
    const wSize = J * Bw * R * rows * C;
    const outSize = B * (a.sumTiles ? 1 : R) * N * C;
    // every array the call reads, with its name for errors and the size it must have
    const arrays: [Field, Float32Array, number][] = [];
    const take = (field: Field, name: string, v: Float32Array | null | undefined, want: number) => {
      if (v === null || v === undefined) return;
      if (!(v instanceof Float32Array) || v.length !== want)
        throw new RangeError(`xbar wasm: ${name} must be a Float32Array of ${want} values`);
      arrays.push([field, v, want]);
    };
    if (a.inputs) take('inputs', "'inputs'", a.inputs, inSize);
    else if (a.codes) take('codes', "'codes'", a.codes, inSize);
    else throw new RangeError(`xbar wasm: 'codes' must be a Float32Array of ${inSize} values`);
    const written = 'unit' in a && a.unit ? a : null;
    const programmed =
      'unit' in a && a.unit ? null : (a as Extract<CrossbarProductsArgs, { weights: Float32Array }>);
    if (written) {
      take('unit', "'unit'", written.unit, wSize / J);
      if (written.writeNoise) {
        take('writeNoise0', "each of 'writeNoise'", written.writeNoise[0], wSize);
        take('writeNoise1', "each of 'writeNoise'", written.writeNoise[1], wSize);
      }
    } else {
      take('weights', "'weights'", programmed!.weights, wSize);
      take('squares', "'squares'", programmed!.squares, wSize);
    }
    take('coef', "'coef'", a.coef, planes * J);
    take('gain', "'gain'", a.gain, B * R * N * blocks);
    take('adcGain', "'adcGain'", a.adcGain, R * C);
    if (a.inputs) take('gainScale', "'gainScale'", a.gainScale, (a.gainBatches ?? 1) * R * blocks);
    const seeds = a.noiseSeeds ?? null;
    if (seeds !== null && (!(seeds instanceof Uint32Array) || seeds.length !== planes))
      throw new RangeError("xbar wasm: 'noiseSeeds' must be a Uint32Array of one seed per plane, or null");
    if (a.out !== undefined && (!(a.out instanceof Float32Array) || a.out.length !== outSize))
      throw new RangeError(`xbar wasm: 'out' must be a Float32Array of ${outSize} values`);

    // one arena: the arrays, the out array, the noise seeds and the Args struct, each 64-byte aligned
    const at = new Map<Float32Array, number>();
    const align = (n: number) => Math.ceil(n / 64) * 64;
    const need =
      arrays.reduce((s, [, , n]) => s + align(4 * n), 0) +
      align(4 * outSize) +
      align(4 * planes) +
      align(4 * FIELDS.length);
    if (need > MEMORY_LIMIT)
      throw new InputError(
        `xbar wasm: this product needs ${(need / 2 ** 30).toFixed(2)} GiB of WebAssembly memory, more than the ` +
          `${MEMORY_LIMIT / 2 ** 30} GiB wasm32 allows here (B ${B}, R ${R}, N ${N}, C ${C}, J ${J}, ${planes} planes); ` +
          'use a smaller batch, or the native kernels',
      );
    reserve(need, 'this product');
    ensureThreads(a.threads);
    // views after every allocation: memory.buffer grows
    const words = new Int32Array(memory.buffer);
    const floats = new Float32Array(memory.buffer);
    let next = arena.at;
    const place = (n: number) => {
      const start = next;
      next += align(n);
      return start;
    };
    for (const [, v] of arrays) {
      const p = place(4 * v.length);
      floats.set(v, p / 4);
      at.set(v, p);
    }
    const out = place(4 * outSize);
    if (a.out) floats.set(a.out, out / 4);
    else floats.fill(0, out / 4, out / 4 + outSize);
    const args = place(4 * FIELDS.length);
    const set = (field: Field, value: number) => {
      const i = args / 4 + WORD.get(field)!;
      if (FLOATS.has(field)) floats[i] = value;
      else words[i] = value;
    };
    words.fill(0, args / 4, args / 4 + FIELDS.length);
    for (const f of ['B', 'Bw', 'R', 'N', 'rows', 'C', 'J', 'planes', 'levels', 'threads'] as const)
      set(f, a[f]);
    set('weightScale', a.weightScale);
    set('squareScale', a.squareScale);
    set('dacLevels', a.dacLevels ?? 0);
    for (const [field, v] of arrays) set(field, at.get(v)!);
    if (seeds) {
      const p = place(4 * planes);
      new Uint32Array(memory.buffer, p, planes).set(seeds);
      set('noiseSeeds', p);
    }
    set('samples', a.samples ?? 1);
    set('samplesAlongB', a.samplesAlongB ? 1 : 0);
    set('firstSample', a.firstSample ?? 0);
    set('outSigma', a.outSigma ?? 0);
    set('gainBatches', a.gainBatches ?? 1);
    set('gainBlock', a.gainBlock ?? 1);
    set('sumTiles', a.sumTiles ? 1 : 0);
    set('out', out);
    if (written) {
      set('writeKind', written.writeKind);
      set('cellLevels', written.cellLevels);
      set('cellBase', written.cellBase);
      set('gMin', written.gMin);
      set('gMax', written.gMax);
      set('dG', written.dG);
      set('dGSquared', written.dGSquared);
      set('writeNoiseScale', written.writeNoiseScale);
      set('writeSquares', written.writeSquares ? 1 : 0);
    }
    const error = x.xbar_products(args);
    if (error !== 0) throw new RangeError(text(error));
    const result = a.out ?? new Float32Array(outSize);
    result.set(new Float32Array(memory.buffer, out, outSize));
    return result;
  }

  function fillNoise(a: FillNoiseArgs): void {
    const n = a.outer * a.along * a.inner * a.columns;
    if (!(a.out instanceof Float32Array) || a.out.length !== n)
      throw new RangeError(`xbar wasm: fillNoise's 'out' must be a Float32Array of ${n} values`);
    reserve(4 * n, 'this noise leaf');
    ensureThreads(a.threads);
    const error = x.xbar_fill_noise(
      arena.at,
      a.outer,
      a.along,
      a.perSample,
      a.inner,
      a.columns,
      a.seed,
      a.std,
      a.firstSample,
      a.threads,
    );
    if (error !== 0) throw new RangeError(text(error));
    a.out.set(new Float32Array(memory.buffer, arena.at, n));
  }

  return { crossbarProducts, fillNoise, constants: text(x.xbar_constants()) };
}

let loaded: { kernels: NativeKernels; file: string } | { refused: string } | undefined;

/** The WebAssembly kernels (instantiated once), or why the committed binary is refused. */
export function wasmKernels(): { kernels: NativeKernels; file: string } | { refused: string } {
  if (loaded === undefined) {
    const binary = wasmBinary();
    loaded = 'refused' in binary ? binary : { kernels: instantiate(binary.bytes), file: WASM };
  }
  return loaded;
}
