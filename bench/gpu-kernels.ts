/**
 * GPU kernel benchmark: the matmul kernel (runtime/webgpu/matmul.ts) on the products of DeiT-S,
 * DeiT-B and BERT-base (linear layers with the weight shared over batch and tokens, attention's
 * scores and weighted values) and on small and odd shapes, against a naive kernel (one output
 * per thread, no shared memory) measured in the same run. Kernel time from timestamp queries
 * where the adapter has them (else wall time of one submit), per dispatch: the median of
 * --trials runs of back-to-back dispatches (at least --reps, and 10 ms of work).
 * --tiles: every tile configuration (and those of --tile) on each product of --models: the rate
 * of each, and which one matmulKernel picks. --backend opengles: Dawn's OpenGL ES backend in
 * compatibility mode, for hosts without Vulkan.
 *   node dist/bench/gpu-kernels.js [--batch 64] [--models deit-s,deit-b,bert-base] [--reps 20] [--trials 5] [--no-naive]
 *   node dist/bench/gpu-kernels.js --tiles [--models deit-s] [--tile 128x128x16/8x8 ...]
 *   node dist/bench/gpu-kernels.js --crossbar [--batch 64]   (the crossbar kernel on DeiT-S's
 *     static layers as rram-clipformer maps them, with read noise and without)
 *   node dist/bench/gpu-kernels.js --backend opengles
 */
import type { KernelSpec } from '../src/graph/gpu-kernel.js';
import { numel, type Shape } from '../src/graph/shape.js';
import { MODEL_SIZES } from '../src/models/index.js';
import type { VitConfig } from '../src/models/vit.js';
import { crossbarKernel } from '../src/runtime/webgpu/crossbar.js';
import {
  MATMUL_TILES,
  type MatmulTile,
  matmulKernel,
  matmulKernelWith,
  tileName,
} from '../src/runtime/webgpu/matmul.js';
import { Rng } from '../src/util/math.js';
import { download, gpuDevice, prepare, releaseGpu, upload } from '../test/helpers/webgpu.js';
import { benchArgs, median } from './util.js';

const args = benchArgs(import.meta.url, {
  batch: { type: 'string', default: '64' },
  models: { type: 'string', default: 'deit-s,deit-b,bert-base' },
  reps: { type: 'string', default: '20' },
  trials: { type: 'string', default: '5' },
  backend: { type: 'string' },
  /** Every tile configuration (and --tile ones) on each product of --models. */
  tiles: { type: 'boolean', default: false },
  /** Extra tile configurations for --tiles, as m x n x k / rm x rn. */
  tile: { type: 'string', multiple: true, default: [] },
  /**
   * The crossbar kernel instead (runtime/webgpu/crossbar.ts) on DeiT-S's static layers as
   * `rram-clipformer` maps them, with its read noise and without (the baseline, same run).
   */
  crossbar: { type: 'boolean', default: false },
  /** Skip the naive kernel (its products take long on slow adapters). */
  'no-naive': { type: 'boolean', default: false },
});
const batch = Number(args.batch);
const reps = Number(args.reps);
const trials = Number(args.trials);

interface Product {
  name: string;
  a: Shape;
  b: Shape;
}

/** The matmuls of a model's forward at `batch` (the patch embedding and classifier aside). */
function modelProducts(model: string): Product[] {
  const cfg = MODEL_SIZES[model];
  if (!cfg) throw new RangeError(`--models: unknown model '${model}'; known: ${Object.keys(MODEL_SIZES)}`);
  const t = cfg.family === 'vit' ? (cfg.imageSize / cfg.patchSize) ** 2 + 2 : 128;
  const [d, h, f] = [cfg.hidden, cfg.heads, cfg.ffn];
  const e = d / h;
  return [
    { name: `${model} q,k,v`, a: [batch, t, d], b: [d, 3 * d] },
    { name: `${model} out`, a: [batch, t, d], b: [d, d] },
    { name: `${model} ffn in`, a: [batch, t, d], b: [d, f] },
    { name: `${model} ffn out`, a: [batch, t, f], b: [f, d] },
    { name: `${model} scores`, a: [batch, h, t, e], b: [batch, h, e, t] },
    { name: `${model} values`, a: [batch, h, t, t], b: [batch, h, t, e] },
  ];
}

/** Small and odd shapes: one row, K = 1, sizes no tile divides, a broadcast left side. */
const ODD: Product[] = [
  { name: 'one row', a: [1, 384], b: [384, 1152] },
  { name: 'K = 1', a: [4096, 1], b: [1, 4096] },
  { name: 'odd sizes', a: [1001, 999], b: [999, 1003] },
  { name: 'broadcast left', a: [197, 64], b: [256, 64, 197] },
];

const outShape = (p: Product): number[] => [
  ...(p.a.length > p.b.length ? p.a : p.b).slice(0, -2),
  p.a[p.a.length - 2]!,
  p.b[p.b.length - 1]!,
];
const flops = (p: Product) => {
  const out = outShape(p);
  return 2 * numel(out) * p.a[p.a.length - 1]!;
};

/**
 * One output per thread, reading A and B straight from storage: the baseline the tiled kernel
 * is measured against (for products whose B is shared or has A's batch dims).
 */
function naiveKernel(p: Product): KernelSpec {
  const [m, k] = p.a.slice(-2) as [number, number];
  const n = p.b[p.b.length - 1]!;
  const batch = numel(outShape(p).slice(0, -2));
  const bShared = p.b.length === 2;
  const aShared = p.a.length === 2;
  return {
    code: `@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@compute @workgroup_size(16, 16, 1)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let col = g.x;
  let row = g.y;
  if (row >= ${m}u || col >= ${n}u) { return; }
  let aOff = ${aShared ? '0u' : `g.z * ${m * k}u`} + row * ${k}u;
  let bOff = ${bShared ? '0u' : `g.z * ${k * n}u`} + col;
  var s = 0.0;
  for (var i = 0u; i < ${k}u; i++) { s = fma(a[aOff + i], b[bOff + i * ${n}u], s); }
  c[g.z * ${m * n}u + row * ${n}u + col] = s;
}`,
    inputs: 2,
    grid: [Math.ceil(n / 16), Math.ceil(m / 16), batch],
  };
}

function parseTile(s: string): MatmulTile {
  const m = /^(\d+)x(\d+)x(\d+)\/(\d+)x(\d+)$/.exec(s);
  const [tm, tn, tk, rm, rn] = (m?.slice(1).map(Number) ?? []) as number[];
  if (!m || tm! % rm! || tn! % rn! || rm! % 4 || rn! % 4 || tk! % 4) {
    console.error(
      `--tile ${s}: use m x n x k / rm x rn, e.g. 128x128x16/8x8, where rm divides m, rn divides n, and rm, rn, k are multiples of 4`,
    );
    process.exit(2);
  }
  return { m: tm!, n: tn!, k: tk!, rm: rm!, rn: rn! };
}

if (args.backend !== undefined && args.backend !== 'opengles')
  throw new RangeError(`--backend ${args.backend}: the only backend to force is opengles`);
const gpu = await gpuDevice(args.backend);
if ('skip' in gpu) {
  console.log(gpu.skip);
  process.exit(0);
}
const { device, wgsl } = gpu;
const timestamps = device.features.has('timestamp-query');
device.onuncapturederror = (e) => {
  console.error(`WebGPU error: ${e.error.message}`);
  process.exit(1);
};

/** The product's input buffers (random values) and its output buffer. */
function buffers(p: Product): GPUBuffer[] {
  const rng = new Rng(1);
  return [
    upload(device, rng.fillNormal(new Float32Array(numel(p.a)))),
    upload(device, rng.fillNormal(new Float32Array(numel(p.b)))),
    upload(device, new Float32Array(numel(outShape(p)))),
  ];
}

const MIN_TRIAL_SECONDS = 0.01;

/** Seconds per dispatch of `spec`: the median over trials of at least `reps` dispatches in one pass. */
async function timeKernel(spec: KernelSpec, bufs: readonly GPUBuffer[]): Promise<number> {
  const { before, ...main } = spec;
  if (before) {
    // its input's transform (a dispatch of its own in the runtime) counts too
    const made = device.createBuffer({
      size: Math.ceil((4 * before.words) / 16) * 16,
      usage: GPUBufferUsage.STORAGE,
    });
    const first = await timeKernel(before.spec, [bufs[before.input]!, made]);
    const rest = await timeKernel(
      main,
      bufs.map((b, i) => (i === before.input ? made : b)),
    );
    made.destroy();
    return first + rest;
  }
  const { pipeline, group, run } = prepare(device, spec, bufs);
  const querySet = timestamps ? device.createQuerySet({ type: 'timestamp', count: 2 }) : null;
  const resolved = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const times: number[] = [];
  // the first: a warm-up, untimed, whose wall time sets the dispatches per trial (at least
  // MIN_TRIAL_SECONDS of work, so that timestamp quantisation and submit costs stay small)
  let perTrial = 1;
  for (let trial = 0; trial <= trials; trial++) {
    const n = perTrial;
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass(
      querySet ? { timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {},
    );
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    if (run) pass.setBindGroup(1, run);
    for (let i = 0; i < n; i++) pass.dispatchWorkgroups(...spec.grid);
    pass.end();
    const read = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    if (querySet) {
      enc.resolveQuerySet(querySet, 0, 2, resolved, 0);
      enc.copyBufferToBuffer(resolved, 0, read, 0, 16);
    }
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    const wall = (performance.now() - t0) / 1e3;
    if (trial > 0 && querySet) {
      await read.mapAsync(GPUMapMode.READ);
      const [begin, end] = new BigInt64Array(read.getMappedRange());
      times.push(Number(end! - begin!) / 1e9 / n);
      read.unmap();
    } else if (trial > 0) times.push(wall / n);
    else perTrial = Math.min(1000, Math.max(reps, Math.ceil(MIN_TRIAL_SECONDS / wall)));
    read.destroy();
  }
  querySet?.destroy();
  resolved.destroy();
  return median(times);
}

const cell = (s: string, w: number) => (w < 0 ? s.padStart(-w) : s.padEnd(w));
const row = (cells: string[], widths: number[]) => cells.map((c, i) => cell(c, widths[i]!)).join('  ');
const dims = (p: Product) => `[${p.a}]×[${p.b}]`;
/** GFLOP/s, with 3 significant digits below 100 (slow adapters). */
const rate = (flop: number, s: number) => {
  const g = flop / s / 1e9;
  return g >= 100 ? g.toFixed(0) : g.toPrecision(3);
};

console.log(
  `# GPU kernels on ${gpu.name}${args.backend ? ` (backend ${args.backend})` : ''}; time: ${timestamps ? 'timestamp queries' : 'wall clock, one submit'}, median of ${trials} trials of ≥ ${reps} dispatches and ≥ ${MIN_TRIAL_SECONDS * 1e3} ms`,
);
const products = [
  ...args.models.split(',').filter(Boolean).flatMap(modelProducts),
  ...(args.tiles ? [] : ODD),
];

if (args.crossbar) await crossbarRates();
else if (args.tiles) {
  const tiles = [...MATMUL_TILES.map((t) => t.tile), ...args.tile.map(parseTile)];
  const W = [20, 30, 16, -9, -9, 6];
  console.log(row(['product', 'shapes', 'tile', 'ms', 'GFLOP/s', 'picked'], W));
  const lim = device.limits;
  for (const t of tiles) {
    const bytes = (t.m + t.n) * t.k * 4;
    const threads = (t.m / t.rm) * (t.n / t.rn);
    if (bytes > lim.maxComputeWorkgroupStorageSize || threads > lim.maxComputeInvocationsPerWorkgroup) {
      console.error(
        `--tile ${tileName(t)}: needs ${bytes} bytes of workgroup memory and ${threads} invocations; the device allows ${lim.maxComputeWorkgroupStorageSize} and ${lim.maxComputeInvocationsPerWorkgroup}`,
      );
      process.exit(2);
    }
  }
  // the products' time with the picked tiles and with the best of each
  let [picks, bests] = [0, 0];
  for (const p of products) {
    const bufs = buffers(p);
    const picked = matmulKernel(p.a, p.b, outShape(p)).code.match(/tile (\S+)/)![1];
    const times = new Map<string, number>();
    for (const t of tiles) {
      const s = await timeKernel(matmulKernelWith(p.a, p.b, outShape(p), t), bufs);
      const name = tileName(t);
      times.set(name, s);
      console.log(
        row([p.name, dims(p), name, (s * 1e3).toFixed(3), rate(flops(p), s), name === picked ? '*' : ''], W),
      );
    }
    const [best, bestTime] = [...times].reduce((x, y) => (y[1] < x[1] ? y : x));
    const pickedTime = times.get(picked!) ?? NaN;
    [picks, bests] = [picks + pickedTime, bests + bestTime];
    console.log(
      `  fastest: ${best}; the picked tile runs at ${((100 * bestTime) / pickedTime).toFixed(0)} % of its rate`,
    );
    for (const b of bufs) b.destroy();
  }
  console.log(
    `all products: the picked tiles take ${(picks * 1e3).toFixed(3)} ms, the fastest of each ${(bests * 1e3).toFixed(3)} ms (${((100 * bests) / picks).toFixed(0)} %)`,
  );
} else {
  const W = [20, 30, 16, -9, -9, -9, -8, -9];
  console.log(row(['product', 'shapes', 'tile', 'ms', 'GFLOP/s', 'naive', '× naive', 'max |Δ|'], W));
  const naiveToo = !args['no-naive'];
  const times = (a: number, b: number) => `${(a / b).toPrecision(2)}×`;
  let [total, totalNaive] = [0, 0];
  for (const p of products) {
    const bufs = buffers(p);
    const spec = matmulKernel(p.a, p.b, outShape(p));
    const size = numel(outShape(p));
    const s = await timeKernel(spec, bufs);
    const got = naiveToo ? await download(device, bufs[2]!, size) : null;
    // cleared, so that a naive kernel that wrote nothing shows
    const clear = device.createCommandEncoder();
    clear.clearBuffer(bufs[2]!);
    device.queue.submit([clear.finish()]);
    const naive = naiveToo ? await timeKernel(naiveKernel(p), bufs) : NaN;
    total += s;
    totalNaive += naive;
    // the two kernels' outputs, as a share of the largest output
    let delta = '-';
    if (got) {
      const want = await download(device, bufs[2]!, size);
      let [d, scale] = [0, 0];
      for (let i = 0; i < size; i++) {
        d = Math.max(d, Math.abs(got[i]! - want[i]!));
        scale = Math.max(scale, Math.abs(want[i]!));
      }
      delta = (d / scale).toExponential(1);
    }
    const g = (t: number) => rate(flops(p), t);
    console.log(
      row(
        [
          p.name,
          dims(p),
          spec.code.match(/tile (\S+)/)![1]!,
          (s * 1e3).toFixed(3),
          g(s),
          naiveToo ? g(naive) : '-',
          naiveToo ? times(naive, s) : '-',
          delta,
        ],
        W,
      ),
    );
    for (const b of bufs) b.destroy();
  }
  const all = products.reduce((n, p) => n + flops(p), 0);
  console.log(
    row(
      [
        'all of the above',
        '',
        '',
        (total * 1e3).toFixed(3),
        rate(all, total),
        naiveToo ? rate(all, totalNaive) : '-',
        naiveToo ? times(totalNaive, total) : '-',
        '',
      ],
      W,
    ),
  );
  console.log("max |Δ|: between the two kernels' outputs, as a share of the largest output");
}
releaseGpu(device);

/**
 * The crossbar products of DeiT-S's static layers (q,k,v, out, ffn in, ffn out; × 12 blocks) at
 * --batch, as `rram-clipformer` maps them: 64-row tiles, 4 weight slices, 7 input planes (8-bit
 * signed bit-serial), a 6-bit ADC, the DAC range computed per vector in the kernel. Each with
 * read noise drawn in the kernel and without it (the same products, no squares or noise), by the
 * tiled kernel (crossbar-tiled.ts, what static layers run on) with float32 products and, where
 * the adapter's WGSL has packed_4x8_integer_dot_product, with integer ones (the cells are integer
 * codes, as noise-free bit slices are), against the row-list kernel (crossbar.ts) in the same
 * run: ms, expanded TFLOP/s, speed-up over the list kernel, and images/s of the static layers alone.
 */
async function crossbarRates(): Promise<void> {
  const cfg = MODEL_SIZES['deit-s'] as VitConfig;
  const t = (cfg.imageSize / cfg.patchSize) ** 2 + 2;
  const [d, f] = [cfg.hidden, cfg.ffn];
  const [J, planes, rows] = [4, 7, 64];
  const layers: [string, number, number][] = [
    ['q,k,v', d, 3 * d],
    ['out', d, d],
    ['ffn in', d, f],
    ['ffn out', f, d],
  ];
  const coef = Float32Array.from(
    { length: planes * J },
    (_, i) => (4 ** (i % J) * 2 ** Math.floor(i / J)) / 127,
  );
  // the cells are rram-clipformer's: 2-bit codes k/3 (noise-free bit slices), squares from G_MIN/ΔG = 0.1/9.9
  const dot4 = wgsl.has('packed_4x8_integer_dot_product');
  const ratio = 0.1 / 9.9;
  const cellCodes = { unit: 1 / 3, squares: [2 * ratio * ratio, (2 * ratio) / 3, 1 / 9] as const };
  const kinds: ('list' | 'tiled' | 'integer')[] = ['list', 'tiled', ...(dot4 ? (['integer'] as const) : [])];
  const W = [10, 24, ...[true, false].flatMap(() => kinds.flatMap((_, i) => (i === 0 ? [-22] : [-22, -8])))];
  console.log(
    row(
      [
        'layer',
        'R × N × C',
        ...[true, false].flatMap((noise) =>
          kinds.flatMap((k, i) =>
            i === 0 ? [`${noise ? 'noise' : 'no noise'}: ${k} ms (TF/s)`] : [`${k} ms (TF/s)`, `${k} ×`],
          ),
        ),
      ],
      W,
    ),
  );
  if (!dot4) console.log("(no integer column: the adapter's WGSL lacks packed_4x8_integer_dot_product)");
  // seconds per batch of the static layers, by kind: with noise, then without
  const totals = [true, false].flatMap(() => kinds.map(() => 0));
  for (const [name, inDim, C] of layers) {
    const R = inDim / rows;
    const N = t * batch;
    const rng = new Rng(3);
    const common = {
      B: 1,
      Bw: 1,
      R,
      N,
      rows,
      C,
      J,
      planes,
      levels: 31,
      dacLevels: 127,
      weightScale: 1,
      written: null,
      samples: batch,
      samplesAlongB: false,
      outSigma: 0,
      coef,
      gainBlock: 64,
      gainBatches: 1,
      sumTiles: true,
      cellCodes,
      dot4,
    };
    const codes = Int8Array.from({ length: J * R * rows * C }, () => Math.round(rng.uniform() * 6 - 3));
    const x = upload(device, rng.fillNormal(new Float32Array(R * N * rows)));
    const w = upload(
      device,
      Float32Array.from(codes, (k) => k * cellCodes.unit),
    );
    const [c0, c1, c2] = cellCodes.squares;
    const sq = upload(
      device,
      Float32Array.from(codes, (k) => c0 + c1 * Math.abs(k) + c2 * k * k),
    );
    const gain = upload(device, new Float32Array(R * Math.ceil(C / 64)).fill(1));
    const out = upload(device, new Float32Array(N * C));
    const noisy = {
      ...common,
      squareScale: 1e-3,
      squares: true,
      noiseSeeds: Uint32Array.from({ length: planes }, (_, k) => 77 + k),
    };
    const quiet = { ...common, squareScale: 0, squares: false, noiseSeeds: null };
    const layout = { list: { layout: 'list' }, tiled: { layout: 'float' }, integer: {} } as const;
    const times: number[] = [];
    for (const [args, bufs] of [
      [noisy, [x, w, sq, gain, out]],
      [quiet, [x, w, gain, out]],
    ] as const)
      for (const k of kinds) times.push(await timeKernel(crossbarKernel({ ...args, ...layout[k] }), bufs));
    times.forEach((s, k) => {
      totals[k]! += 12 * s;
    });
    const flop = 2 * N * R * rows * C * J * planes;
    const cellOf = (s: number) => `${(s * 1e3).toFixed(2)} (${rate(flop, s * 1e3)})`;
    console.log(
      row(
        [
          name,
          `${R} × ${N} × ${C}`,
          ...[0, kinds.length].flatMap((at) =>
            kinds.flatMap((_, i) =>
              i === 0
                ? [cellOf(times[at]!)]
                : [cellOf(times[at + i]!), `${(times[at]! / times[at + i]!).toFixed(2)}×`],
            ),
          ),
        ],
        W,
      ),
    );
    for (const b of [x, w, sq, gain, out]) b.destroy();
  }
  const ips = (k: number) => (batch / totals[k]!).toPrecision(3);
  const each = (at: number) => kinds.map((k, i) => `${ips(at + i)} ${k}`).join(', ');
  console.log(
    `DeiT-S static layers, batch ${batch}, images/s (the products alone; attention and the digital rest not included): with read noise ${each(0)}; without ${each(kinds.length)}`,
  );
}
