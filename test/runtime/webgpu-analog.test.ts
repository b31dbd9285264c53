/// <reference types="@webgpu/types" />
/**
 * The analog kernels in WGSL (src/runtime/webgpu/philox.ts, crossbar.ts) against the CPU's: the
 * generator's integer words bit for bit, its Gaussians within a few float32 ulps, the `noise` op
 * as util/philox.ts fillNoise fills it, and the crossbar products as the native and WebAssembly
 * kernels compute them (the agreement rule). On a WebGPU adapter: SwiftShader's (a CPU Vulkan)
 * where no GPU is, found through VK_ICD_FILENAMES; skipped, saying why, where none is found.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import type { KernelSpec } from '../../src/graph/gpu-kernel.js';
import { noiseKernel, PHILOX_WGSL } from '../../src/runtime/webgpu/philox.js';
import { fillNoise, gaussianBlock, noiseLayout, philox4x32 } from '../../src/util/philox.js';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';

/**
 * A device of the first adapter with its own limits, or why there is none. (A stand-in for the
 * WebGPU runtime's device: one dispatch of a KernelSpec on given inputs.)
 */
let instance: GPU | undefined;
async function openDevice(): Promise<GPUDevice | string> {
  if (!process.env['VK_ICD_FILENAMES'] && existsSync(SWIFTSHADER))
    process.env['VK_ICD_FILENAMES'] = SWIFTSHADER;
  let webgpu: typeof import('webgpu');
  try {
    webgpu = await import('webgpu');
  } catch (e) {
    return `the webgpu package does not load: ${(e as Error).message}`;
  }
  Object.assign(globalThis, webgpu.globals);
  // the instance must outlive its devices (Dawn frees them with it)
  instance = webgpu.create([]);
  const adapter = await instance.requestAdapter();
  if (!adapter) return 'no WebGPU adapter (install chromium for SwiftShader, or run on a GPU)';
  const l = adapter.limits;
  return adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    },
  });
}

/** Runs one kernel on `inputs`, → its output's `bytes` bytes. */
async function dispatch(
  device: GPUDevice,
  spec: KernelSpec,
  inputs: readonly (Float32Array | Uint32Array)[],
  bytes: number,
  firstSample = 0,
): Promise<ArrayBuffer> {
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

const device = await openDevice();
after(() => {
  if (typeof device !== 'string') device.destroy();
});
const skip = () => (typeof device === 'string' ? device : false);
const gpu = () => device as GPUDevice;

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
