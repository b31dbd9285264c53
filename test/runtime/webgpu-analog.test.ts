/**
 * The analog kernels in WGSL (src/runtime/webgpu/philox.ts, crossbar.ts) against the CPU's: the
 * generator's integer words bit for bit, its Gaussians within a few float32 ulps, the `noise` op
 * as util/philox.ts fillNoise fills it, and the crossbar products as the native and WebAssembly
 * kernels compute them (the agreement rule), alone and in the WebGPU runtime. On a WebGPU
 * adapter (test/helpers/webgpu.ts: SwiftShader's where no GPU is); skipped, saying why, where
 * none is found.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { AnalogModel } from '../../src/analog/analog-model.js';
import { dynamicProduct } from '../../src/analog/dynamic.js';
import { loadSpec } from '../../src/analog/presets.js';
import { NATIVE_CONSTANTS } from '../../src/analog/write-noise.js';
import type { KernelSpec } from '../../src/graph/gpu-kernel.js';
import { type HostArray, hostArray } from '../../src/graph/ndarray.js';
import type { GpuKernel, HostKernel } from '../../src/graph/ops.js';
import { input, param, type Tensor } from '../../src/graph/tensor.js';
import { type CrossbarProductsArgs, nativeKernels } from '../../src/runtime/native.js';
import { compile } from '../../src/runtime/session.js';
import { wasmKernels } from '../../src/runtime/wasm.js';
import { type CrossbarKernelArgs, crossbarKernel, type WriteLaw } from '../../src/runtime/webgpu/crossbar.js';
import { tiledFits } from '../../src/runtime/webgpu/crossbar-tiled.js';
import { noiseKernel, PHILOX_WGSL } from '../../src/runtime/webgpu/philox.js';
import { Rng } from '../../src/util/math.js';
import { fillNoise, gaussianBlock, noiseLayout, philox4x32 } from '../../src/util/philox.js';
import { gpuDevice, releaseGpu } from '../helpers/webgpu.js';

/** The batch's first sample in the data set: not 0, so that the sample keys are tested. */
const FIRST = 5;
/**
 * Runs one kernel on `inputs` (float32 or uint32 words) with the run's first sample in its `Run`
 * uniform, → its output's `bytes` bytes.
 */
async function dispatch(
  device: GPUDevice,
  spec: KernelSpec,
  inputs: readonly (Float32Array | Uint32Array)[],
  bytes: number,
  firstSample = 0,
): Promise<ArrayBuffer> {
  const { before, ...main } = spec;
  if (before) {
    // the transformed input first (the WebGPU runtime's plan makes it a dispatch of its own)
    const made = new Uint32Array(
      await dispatch(device, before.spec, [inputs[before.input]!], 4 * before.words),
    );
    return dispatch(
      device,
      main,
      inputs.map((a, i) => (i === before.input ? made : a)),
      bytes,
      firstSample,
    );
  }
  const storage = (size: number, usage = 0) =>
    device.createBuffer({
      size: Math.max(16, Math.ceil(size / 4) * 4),
      usage: GPUBufferUsage.STORAGE | usage,
    });
  const buffers = inputs.map((a) => {
    const b = storage(a.byteLength, GPUBufferUsage.COPY_DST);
    device.queue.writeBuffer(b, 0, a.buffer, a.byteOffset, a.byteLength);
    return b;
  });
  const out = storage(bytes, GPUBufferUsage.COPY_SRC);
  const read = device.createBuffer({
    size: out.size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ code: spec.code });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const pass = device.createCommandEncoder();
  const compute = pass.beginComputePass();
  compute.setPipeline(pipeline);
  compute.setBindGroup(
    0,
    device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [...buffers, out].map((buffer, binding) => ({ binding, resource: { buffer } })),
    }),
  );
  if (spec.run) {
    const run = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(run, 0, Uint32Array.of(firstSample, 0, 0, 0));
    compute.setBindGroup(
      1,
      device.createBindGroup({
        layout: pipeline.getBindGroupLayout(1),
        entries: [{ binding: 0, resource: { buffer: run } }],
      }),
    );
  }
  compute.dispatchWorkgroups(...spec.grid);
  compute.end();
  pass.copyBufferToBuffer(out, 0, read, 0, out.size);
  device.queue.submit([pass.finish()]);
  const error = await device.popErrorScope();
  if (error) throw new Error(`${error.message}\n${spec.code}`);
  await read.mapAsync(GPUMapMode.READ);
  const result = read.getMappedRange().slice(0, bytes);
  read.unmap();
  for (const b of [...buffers, out, read]) b.destroy();
  return result;
}

const opened = await gpuDevice();
after(() => {
  if ('device' in opened) releaseGpu(opened.device);
});
const skip = () => ('skip' in opened ? opened.skip : false);
const gpu = () => (opened as { device: GPUDevice }).device;
const DOT4 = 'packed_4x8_integer_dot_product';
/** The device's WGSL language features (none without a device). */
const wgsl = (): ReadonlySet<string> => ('wgsl' in opened ? opened.wgsl : new Set());
const skipDot4 = () => skip() || (wgsl().has(DOT4) ? false : `the adapter's WGSL lacks ${DOT4}`);

/** float32 ulps between a and b (same sign assumed near zero: the distance of their bit patterns as ordered integers). */
function ulps(a: number, b: number): number {
  const bits = new Int32Array(new Float32Array([a, b]).buffer);
  const ordered = (i: number) => (i < 0 ? -2147483648 - i : i);
  return Math.abs(ordered(bits[0]!) - ordered(bits[1]!));
}

/** Counters and keys that cover every word's bits: 4·n words each. */
function counters(n: number): Uint32Array {
  const c = new Uint32Array(6 * n);
  let x = 0x12345678;
  for (let i = 0; i < c.length; i++) {
    // xorshift32, with runs of small values (the counters the noise uses)
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    c[i] = i % 3 === 0 ? i >>> 3 : x >>> 0;
  }
  return c;
}

describe('Philox and its Gaussians in WGSL', () => {
  const N = 1 << 14;
  const kernel = (body: string, type: string): KernelSpec => ({
    code: `@group(0) @binding(0) var<storage, read> c: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<${type}>;
${PHILOX_WGSL}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let t = id.x;
  let counter = vec4<u32>(c[6u * t], c[6u * t + 1u], c[6u * t + 2u], c[6u * t + 3u]);
  let key = vec2<u32>(c[6u * t + 4u], c[6u * t + 5u]);
  ${body}
}`,
    inputs: 1,
    grid: [N / 64, 1, 1],
  });

  it('draws util/philox.ts’s words bit for bit', { skip: skip() }, async () => {
    const c = counters(N);
    const got = new Uint32Array(
      await dispatch(
        gpu(),
        kernel(
          'let x = philox(counter, key); for (var l = 0u; l < 4u; l++) { out[4u * t + l] = x[l]; }',
          'u32',
        ),
        [c],
        16 * N,
      ),
    );
    const want = new Uint32Array(4 * N);
    const w = new Uint32Array(4);
    for (let t = 0; t < N; t++) {
      philox4x32(c[6 * t]!, c[6 * t + 1]!, c[6 * t + 2]!, c[6 * t + 3]!, c[6 * t + 4]!, c[6 * t + 5]!, w);
      want.set(w, 4 * t);
    }
    assert.deepEqual(got, want);
  });

  it('gives util/philox.ts’s Gaussians within a few float32 ulps', { skip: skip() }, async () => {
    const c = counters(N);
    const got = new Float32Array(
      await dispatch(
        gpu(),
        kernel(
          'let g = gaussianBlock(counter, key); for (var l = 0u; l < 4u; l++) { out[4u * t + l] = g[l]; }',
          'f32',
        ),
        [c],
        16 * N,
      ),
    );
    const want = new Float32Array(4 * N);
    for (let t = 0; t < N; t++)
      gaussianBlock(
        c[6 * t]!,
        c[6 * t + 1]!,
        c[6 * t + 2]!,
        c[6 * t + 3]!,
        c[6 * t + 4]!,
        c[6 * t + 5]!,
        want,
        4 * t,
      );
    let worst = 0;
    let exact = 0;
    for (let i = 0; i < want.length; i++) {
      const u = ulps(got[i]!, want[i]!);
      worst = Math.max(worst, u);
      if (u === 0) exact++;
    }
    console.log(
      `Gaussians: ${((100 * exact) / want.length).toFixed(2)} % bit for bit, at most ${worst} ulps apart`,
    );
    assert.ok(worst <= 8, `at most 8 ulps apart (${worst})`);
  });

  it('fills the noise op as fillNoise does, keyed by the run’s first sample', { skip: skip() }, async () => {
    // [outer 3, along 6 (2 samples of 3), inner 5, columns 11]: a partial last block in every row
    const shape = [3, 6, 5, 11];
    const layout = noiseLayout(shape, 1, 2);
    const size = shape.reduce((a, b) => a * b, 1);
    for (const [std, first] of [
      [1, 0],
      [0.37, 41],
    ] as const) {
      const got = new Float32Array(
        await dispatch(gpu(), noiseKernel(shape, layout, 0xdeadbeef, std), [], 4 * size, first),
      );
      const want = new Float32Array(size);
      fillNoise(want, layout, 0xdeadbeef, std, first);
      let worst = 0;
      for (let i = 0; i < size; i++) worst = Math.max(worst, ulps(got[i]!, want[i]!));
      assert.ok(worst <= 8, `std ${std}, first sample ${first}: at most 8 ulps apart (${worst})`);
      // the run's first sample moves the draws: sample s of one run is sample s − 1 of the next
      const next = new Float32Array(
        await dispatch(gpu(), noiseKernel(shape, layout, 0xdeadbeef, std), [], 4 * size, first + 1),
      );
      const per = size / shape[0]! / 2;
      for (let o = 0; o < shape[0]!; o++)
        assert.deepEqual(
          next.subarray(o * 2 * per, o * 2 * per + per),
          got.subarray(o * 2 * per + per, (o + 1) * 2 * per),
        );
    }
  });
});

interface ProductsCase {
  name: string;
  B?: number;
  Bw?: number;
  R?: number;
  N?: number;
  rows?: number;
  C?: number;
  J?: number;
  planes?: number;
  levels?: number;
  squares?: boolean;
  outSigma?: number;
  dynamic?: boolean;
  write?: WriteLaw;
  cellLevels?: number;
  gainBlock?: number;
  sumTiles?: boolean;
  samplesAlongB?: boolean;
  /** Cells that are integer codes k·unit (|k| ≤ `codeLevels`), squares c0 + c1·|k| + c2·k²: program.ts cellCodes. */
  codeLevels?: number;
}

const LAW_CODES = NATIVE_CONSTANTS.writeKinds;

/**
 * A programmed operand's cells: Gaussian weights, or with `codeLevels` integer codes k·unit
 * (zeros among them, as bit slices of small weights are), and their squares where `squares`.
 */
function programmed(c: ProductsCase, size: number, rng: Rng) {
  const L = c.codeLevels;
  if (!L) {
    const weights = rng.fillNormal(new Float32Array(size));
    const squares = c.squares ? Float32Array.from(weights, (w) => w * w + 0.1) : null;
    return { weights, squares, cellCodes: null };
  }
  const ks = Int8Array.from({ length: size }, () =>
    rng.uniform() < 0.3 ? 0 : Math.round((rng.uniform() * 2 - 1) * L),
  );
  // squares large enough that read noise spans ADC steps (a wrong sum of squares moves outputs)
  const cellCodes = { unit: 1 / L, squares: [8, 40 / L, 400 / L ** 2] as const };
  const [c0, c1, c2] = cellCodes.squares;
  return {
    weights: Float32Array.from(ks, (k) => k * cellCodes.unit),
    squares: c.squares ? Float32Array.from(ks, (k) => c0 + c1 * Math.abs(k) + c2 * k * k) : null,
    cellCodes,
  };
}

/** One product's arguments for the CPU kernels and the GPU kernel, and its inputs in the GPU kernel's order. */
function productsCase(c: ProductsCase) {
  const { B = 2, R = 2, N = 13, rows = 64, C = 22, J = 2, planes = 8, levels = 31 } = c;
  const Bw = c.Bw ?? 1;
  const rng = new Rng(C * 131 + N * 7 + J);
  const top = 2 ** planes - 1;
  const inSize = B * R * N * rows;
  const wSize = J * Bw * R * rows * C;
  const gainBlock = c.gainBlock ?? 4;
  const blocks = Math.ceil(C / gainBlock);
  const dynamic = c.dynamic ?? false;
  // codes with zeros, both signs and every magnitude bit; or inputs for a dynamic range
  const x = Float32Array.from({ length: inSize }, () =>
    dynamic ? rng.normal() * 0.7 : rng.uniform() < 0.2 ? 0 : Math.round((rng.uniform() * 2 - 1) * top),
  );
  const planeWeights = Array.from({ length: planes }, (_, k) => 2 ** k);
  const coef = Float32Array.from(
    { length: planes * J },
    (_, i) => (4 ** (i % J) * planeWeights[Math.floor(i / J)]!) / 64,
  );
  const noiseSeeds =
    c.squares || c.outSigma ? Uint32Array.from({ length: planes }, (_, k) => 1000 + 17 * k) : null;
  const samplesAlongB = c.samplesAlongB ?? true;
  const samples = samplesAlongB ? B : 1;
  // operand scale: sums of ~half the rows land across the ADC's range
  const weightScale = Math.fround(((1.6 / Math.sqrt(rows)) * (levels || 8)) / 8 / Math.max(1, top / 8));
  const squareScale = Math.fround(0.25 * weightScale) ** 2;
  const gain = Float32Array.from(
    { length: dynamic ? (c.B ? B : 1) * R * blocks : B * R * N * blocks },
    () => 0.5 + rng.uniform(),
  );
  const gainBatches = dynamic && c.B ? B : 1;
  const common = {
    B,
    Bw,
    R,
    N,
    rows,
    C,
    J,
    planes,
    levels,
    coef,
    noiseSeeds,
    samples,
    samplesAlongB,
    outSigma: Math.fround(c.outSigma ?? 0),
    gainBlock,
    gainBatches,
    sumTiles: c.sumTiles ?? true,
    dacLevels: dynamic ? 127 : 0,
  };
  let cpu: CrossbarProductsArgs;
  let gpuArgs: CrossbarKernelArgs;
  let operand: Float32Array[];
  if (c.write) {
    const law = c.write;
    const cellLevels = c.cellLevels ?? 255;
    const written = {
      writeNoiseScale: Math.fround(law === 'pcm' ? 0.8 : law === 'additive' ? 0.5 : 0.1),
      cellLevels,
      cellBase: cellLevels === 0 ? 1 : 4,
      gMin: Math.fround(1),
      gMax: Math.fround(40),
      dG: Math.fround(39),
      dGSquared: Math.fround(39 * 39),
    };
    const unit = Float32Array.from({ length: wSize / J }, () =>
      Math.max(-1, Math.min(1, rng.normal() * 0.5)),
    );
    const noise =
      law === 'none'
        ? null
        : ([0, 1].map(() => rng.fillNormal(new Float32Array(wSize))) as [Float32Array, Float32Array]);
    const scale = Math.fround(weightScale * 8);
    cpu = {
      ...common,
      codes: dynamic ? null : x,
      ...(dynamic ? { inputs: x } : {}),
      threads: 2,
      weightScale: scale,
      squareScale: Math.fround(0.25 * scale) ** 2,
      unit,
      writeNoise: noise,
      writeKind: LAW_CODES[law],
      writeSquares: c.squares ?? false,
      ...written,
      ...(dynamic ? { gainScale: gain } : { gain }),
    };
    gpuArgs = {
      ...common,
      weightScale: scale,
      squareScale: Math.fround(0.25 * scale) ** 2,
      squares: c.squares ?? false,
      written: { law, ...written, pcmFit: NATIVE_CONSTANTS.pcmProgFit },
    };
    operand = [unit, ...(noise ?? [])];
  } else {
    const { weights, squares, cellCodes } = programmed(c, wSize, rng);
    cpu = {
      ...common,
      codes: dynamic ? null : x,
      ...(dynamic ? { inputs: x } : {}),
      threads: 2,
      weightScale,
      squareScale,
      weights,
      squares,
      ...(dynamic ? { gainScale: gain } : { gain }),
    };
    gpuArgs = { ...common, weightScale, squareScale, squares: squares !== null, written: null, cellCodes };
    operand = [weights, ...(squares ? [squares] : [])];
  }
  return { cpu, gpu: gpuArgs, inputs: [x, ...operand, gain], size: B * (common.sumTiles ? 1 : R) * N * C };
}

const CASES: ProductsCase[] = [
  { name: '1 slice, 1 plane, ideal ADC, no noise', J: 1, planes: 1, levels: 0 },
  {
    name: '2 slices, 8 planes, read and output noise, C not a multiple of 4',
    J: 2,
    squares: true,
    outSigma: 0.7,
  },
  {
    name: '4 slices, output noise only, per-column gain, row tiles kept',
    J: 4,
    outSigma: 0.5,
    gainBlock: 1,
    sumTiles: false,
  },
  {
    name: '4 slices, read noise, dynamic range, batched gain, samples along N',
    J: 4,
    squares: true,
    dynamic: true,
    samplesAlongB: false,
    C: 24,
  },
  {
    name: 'a batched operand (Bw = B), read noise',
    Bw: 2,
    J: 2,
    squares: true,
    outSigma: 0.3,
    C: 40,
    gainBlock: 8,
  },
  {
    name: 'written K/V, writeSqrt noise, read noise',
    Bw: 2,
    J: 4,
    write: 'writeSqrt',
    squares: true,
    outSigma: 0.2,
    C: 24,
  },
  {
    name: 'written K/V, relative noise, no read noise',
    Bw: 2,
    J: 2,
    write: 'relative',
    outSigma: 0.4,
    C: 13,
  },
  {
    name: 'written analog cells, pcm noise, dynamic range',
    Bw: 2,
    J: 1,
    write: 'pcm',
    cellLevels: 0,
    squares: true,
    dynamic: true,
  },
  { name: '8 slices (1-bit cells), 7 planes, no noise', J: 8, planes: 7, levels: 15, C: 20 },
  {
    name: '12 planes (two passes over the rows), 150-row tiles, output noise',
    J: 1,
    planes: 12,
    rows: 150,
    outSigma: 0.6,
    C: 9,
  },
  {
    name: '512-row tiles, read noise, one column group of vectors',
    J: 1,
    planes: 4,
    rows: 512,
    R: 1,
    squares: true,
    C: 300,
    N: 5,
  },
  {
    name: 'written cells without noise, shared operand',
    J: 2,
    write: 'none',
    squares: true,
    outSigma: 0.1,
    rows: 40,
    R: 3,
  },
  {
    name: 'integer cells (2-bit codes), 4 slices, read and output noise, C not a multiple of 4',
    J: 4,
    codeLevels: 3,
    squares: true,
    outSigma: 0.3,
  },
  {
    name: 'integer cells (1-bit codes), 5 planes, 30-row tiles (not a multiple of 4), dynamic range, samples along N',
    J: 2,
    planes: 5,
    rows: 30,
    codeLevels: 1,
    squares: true,
    dynamic: true,
    samplesAlongB: false,
    C: 24,
  },
  {
    // noise keeps the sums off the ADC's ties, which exact sums on a lattice of k·unit would hit
    name: 'integer cells (4-bit codes), 3 planes, output noise only, row tiles kept',
    J: 2,
    planes: 3,
    levels: 15,
    codeLevels: 15,
    outSigma: 0.2,
    sumTiles: false,
    C: 16,
  },
];

/** Outputs further apart than 1e-4 relative (ADC-boundary flips), and the largest relative difference among the rest. */
function agreement(got: Float32Array, want: Float32Array) {
  let flips = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]!));
    if (Math.abs(got[i]! - want[i]!) > 1e-4 * Math.abs(want[i]!) + 1e-6) flips++;
  }
  return { flips, scale };
}

describe('the crossbar products in WGSL', () => {
  const kernels = [
    ['native', nativeKernels()] as const,
    [
      'WebAssembly',
      (() => {
        const w = wasmKernels();
        return 'kernels' in w ? w.kernels : null;
      })(),
    ] as const,
  ];
  // the tiled kernel takes programmed operands, with integer codes as integer dot products too; the row-list one every case
  const layouts = (c: ProductsCase) =>
    tiledFits(productsCase(c).gpu)
      ? c.codeLevels
        ? (['integer', 'tiled', 'list'] as const)
        : (['tiled', 'list'] as const)
      : (['list'] as const);
  for (const c of CASES)
    for (const layout of layouts(c))
      it(`${c.name} (${layout}): the native and WebAssembly kernels' outputs`, {
        skip: layout === 'integer' ? skipDot4() : skip(),
      }, async () => {
        const p = productsCase(c);
        const spec =
          layout === 'integer'
            ? crossbarKernel({ ...p.gpu, dot4: true })
            : layout === 'tiled'
              ? crossbarKernel({ ...p.gpu, dot4: true, layout: 'float' })
              : crossbarKernel({ ...p.gpu, layout: 'list' });
        assert.equal(
          spec.code.includes('dot4I8Packed'),
          layout === 'integer',
          'integer dot products where asked',
        );
        const got = new Float32Array(await dispatch(gpu(), spec, p.inputs, 4 * p.size, FIRST));
        let compared = 0;
        for (const [name, k] of kernels) {
          if (!k) continue;
          const want = k.crossbarProducts({ ...p.cpu, firstSample: FIRST });
          const { flips, scale } = agreement(got, want);
          assert.ok(scale > 0, `${name}: the outputs are not all zero`);
          assert.ok(
            flips <= Math.max(2, 1e-4 * want.length),
            `${name}: ${flips} of ${want.length} outputs differ`,
          );
          compared++;
        }
        assert.ok(compared > 0, 'a CPU kernel to compare with');
      });
  it('integer dot products for integer cells only, and only where the device has them', () => {
    for (const c of CASES) {
      const a = productsCase(c).gpu;
      const integer = (args: CrossbarKernelArgs) => crossbarKernel(args).code.includes('dot4I8Packed');
      assert.equal(integer({ ...a, dot4: true }), !!c.codeLevels && tiledFits(a), c.name);
      assert.equal(integer({ ...a, dot4: false }), false, c.name);
    }
  });
  it('the tiled kernel takes the programmed cases', () => {
    assert.deepEqual(
      CASES.filter((c) => tiledFits(productsCase(c).gpu)).length,
      CASES.filter((c) => !c.write && (c.Bw ?? 1) === 1 && (c.planes ?? 8) <= 8 && (c.rows ?? 64) <= 256)
        .length,
    );
  });
});

/** The host ops (`hostCall`) a graph computes `y` with. */
function hostOps(y: Tensor): Tensor[] {
  const seen = new Set<Tensor>();
  const found: Tensor[] = [];
  const visit = (t: Tensor) => {
    if (seen.has(t)) return;
    seen.add(t);
    if (t.op === 'host') found.push(t);
    for (const i of t.inputs) visit(i);
  };
  visit(y);
  return found;
}

type HostAttrs = { run: HostKernel; gpu?: GpuKernel };

describe('the analog MVM’s host op on the GPU (native-mvm.ts)', () => {
  /** Runs `y` on the CPU, capturing each host op's inputs and output, then its `gpu` kernel on them. */
  async function hostAgainstGpu(y: Tensor, feeds: Record<string, HostArray>): Promise<number> {
    const ops = hostOps(y);
    assert.ok(ops.length > 0, 'the product is a host op');
    const calls: { ins: HostArray[]; out: Float32Array; gpu: GpuKernel }[] = [];
    for (const op of ops) {
      const a = op.attrs as HostAttrs;
      assert.ok(a.gpu, 'the host op carries its GPU kernel');
      const run = a.run;
      a.run = (ins, reuse, first) => {
        const r = run(ins, reuse, first);
        calls.push({ ins: [...ins], out: (r.data as Float32Array).slice(), gpu: a.gpu! });
        return r;
      };
    }
    await (await compile({ y }, { cache: false })).run(feeds, FIRST);
    assert.equal(calls.length, ops.length);
    for (const call of calls) {
      const spec = call.gpu(
        call.ins.map((i) => i.shape),
        wgsl(),
      );
      const inputs = call.ins.map((i) => i.data as Float32Array);
      const got = new Float32Array(await dispatch(gpu(), spec, inputs, call.out.byteLength, FIRST));
      const { flips, scale } = agreement(got, call.out);
      assert.ok(scale > 0, 'the outputs are not all zero');
      assert.ok(flips <= Math.max(2, 1e-4 * got.length), `${flips} of ${got.length} outputs differ`);
    }
    return calls.length;
  }

  const cpuKernel = () => skip() || (nativeKernels() ? false : 'no CPU kernel loads');

  it('a static layer of rram-clipformer (dynamic DAC range, read noise, gain per tile): the host kernel’s outputs', {
    skip: cpuKernel(),
  }, async () => {
    const { y, feeds } = staticLayer();
    assert.equal(await hostAgainstGpu(y, feeds), 1);
  });

  it('integer dot products for noise-free bit slices (rram-clipformer), not for noisy ones (fefet-trex)', () => {
    const integer = (preset: string, features: ReadonlySet<string>) => {
      const [op] = hostOps(staticLayer(false, preset).y);
      const spec = (op!.attrs as HostAttrs).gpu!(
        op!.inputs.map((i) => i.shape),
        features,
      );
      return spec.code.includes('dot4I8Packed');
    };
    assert.equal(integer('rram-clipformer', new Set([DOT4])), true);
    assert.equal(integer('rram-clipformer', new Set()), false, 'not where the WGSL lacks it');
    assert.equal(integer('fefet-trex', new Set([DOT4])), false, 'programming noise');
  });

  it('XBAR_GPU_DOT4=0 leaves packed_4x8_integer_dot_product out of the features kernels may use', {
    skip: skipDot4(),
  }, () => {
    const device = new URL('../../src/runtime/webgpu/device.js', import.meta.url).href;
    const script = `const { gpuDevice } = await import(${JSON.stringify(device)}); const g = await gpuDevice(); console.log(g.wgslFeatures.has('${DOT4}')); g.device.destroy();`;
    const has = (dot4: string) =>
      execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        env: { ...process.env, XBAR_GPU_DOT4: dot4 },
        encoding: 'utf8',
      }).trim();
    assert.equal(has('0'), 'false');
    assert.equal(has('1'), 'true');
  });

  it('a static layer of fefet-trex (programming noise: float32 cells): the host kernel’s outputs', {
    skip: cpuKernel(),
  }, async () => {
    const { y, feeds } = staticLayer(false, 'fefet-trex');
    assert.equal(await hostAgainstGpu(y, feeds), 1);
  });

  it('a static layer with a calibrated ADC range per row tile and column: the host kernel’s outputs', {
    skip: cpuKernel(),
  }, async () => {
    const { y, feeds } = staticLayer(true);
    assert.equal(await hostAgainstGpu(y, feeds), 1);
  });

  it('K written per input with writeSqrt noise (rram-clipformer’s attention): the host kernel’s outputs', {
    skip: cpuKernel(),
  }, async () => {
    const { y, feeds } = writtenProduct();
    assert.equal(await hostAgainstGpu(y, feeds), 1);
  });

  it('K written per input with a calibrated ADC range per column: the host kernel’s outputs', {
    skip: cpuKernel(),
  }, async () => {
    const { y, feeds } = writtenProduct(true);
    assert.equal(await hostAgainstGpu(y, feeds), 1);
  });

  it('both in the WebGPU runtime (write noise fed, products’ noise drawn on the GPU): the CPU’s outputs', {
    skip: cpuKernel(),
  }, async () => {
    for (const { y, feeds } of [staticLayer(), writtenProduct()]) {
      const run = async (o: { provider?: 'webgpu' }) =>
        (await (await compile({ y }, { cache: false, ...o })).run(feeds, FIRST)).y!.data as Float32Array;
      const want = await run({});
      const { flips, scale } = agreement(await run({ provider: 'webgpu' }), want);
      assert.ok(scale > 0, 'the outputs are not all zero');
      assert.ok(flips <= Math.max(2, 1e-4 * want.length), `${flips} of ${want.length} outputs differ`);
    }
  });
});

/** x·W of a static layer on rram-clipformer, x [3 samples, 5 tokens, 100]: two row tiles, the second padded. */
function staticLayer(
  calibratedAdc = false,
  preset = 'rram-clipformer',
): { y: Tensor; feeds: Record<string, HostArray> } {
  const spec = loadSpec(preset, calibratedAdc ? ['adc.range.kind=calibrated'] : []);
  const rng = new Rng(17);
  const [n, tokens, inDim, outDim] = [3, 5, 100, 40];
  const w = hostArray('float32', [inDim, outDim], rng.fillNormal(new Float32Array(inDim * outDim), 0, 0.05));
  const x = hostArray('float32', [n, tokens, inDim], rng.fillNormal(new Float32Array(n * tokens * inDim)));
  const analog = new AnalogModel(spec, 5);
  // ranges 0.2…3.2 normalised units per (row tile, column), against a full scale of 64
  if (calibratedAdc)
    analog.setAdcRanges(
      new Map([['layer.0.ffnIn', Float32Array.from({ length: 2 * outDim }, () => 0.2 + 3 * rng.uniform())]]),
    );
  const y = analog.linear('layer.0.ffnIn', input('x', [n, tokens, inDim]), param('w', w));
  return { y, feeds: { x } };
}

/** x·w with w written per input on rram-clipformer's attention crossbars, [2, 3 heads, 11, 64]·[2, 3, 64, 40]. */
function writtenProduct(calibratedAdc = false): { y: Tensor; feeds: Record<string, HostArray> } {
  const xbar = loadSpec('rram-clipformer', calibratedAdc ? ['adc.range.kind=calibrated'] : []).attention!;
  const [b, h, n, rows, cols] = [2, 3, 11, 64, 40];
  const rng = new Rng(3);
  const x = hostArray('float32', [b, h, n, rows], rng.fillNormal(new Float32Array(b * h * n * rows)));
  const w = hostArray('float32', [b, h, rows, cols], rng.fillNormal(new Float32Array(b * h * rows * cols)));
  // one row tile, 40 columns padded to a 64-column tile; ranges 0.2…3.2 against a full scale of 64
  const ranges = calibratedAdc ? Float32Array.from({ length: 64 }, () => 0.2 + 3 * rng.uniform()) : undefined;
  const y = dynamicProduct(input('x', [b, h, n, rows]), input('w', [b, h, rows, cols]), xbar, 99, undefined, {
    ranges,
  });
  return { y, feeds: { x, w } };
}
