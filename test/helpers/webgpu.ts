/**
 * The WebGPU runtime's device for kernel tests and benchmarks, and one KernelSpec dispatched on
 * it. Where no adapter is found (no GPU), SwiftShader's Vulkan ICD (Debian's `chromium`) is tried
 * when VK_ICD_FILENAMES is unset and the ICD is installed, as on CI; child processes inherit
 * the setting.
 */
import { existsSync } from 'node:fs';
import type { KernelSpec } from '../../src/graph/gpu-kernel.js';
import { type DeviceOptions, type Gpu, gpuDevice as runtimeDevice } from '../../src/runtime/webgpu/device.js';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

async function find(opts: DeviceOptions): Promise<Gpu | string> {
  try {
    return await runtimeDevice(opts);
  } catch (e) {
    if (process.env['VK_ICD_FILENAMES'] || !existsSync(SWIFTSHADER_ICD)) return (e as Error).message;
    // the runtime's next Dawn instance reads the variable
    process.env['VK_ICD_FILENAMES'] = SWIFTSHADER_ICD;
    return runtimeDevice(opts).catch((e2: Error) => e2.message);
  }
}

/**
 * The runtime's device (`backend`: Dawn's OpenGL ES backend, for hosts without Vulkan or to
 * compare), and the adapter's name; or why there is none.
 */
export async function gpuDevice(
  backend?: 'opengles',
): Promise<{ device: GPUDevice; name: string; wgsl: ReadonlySet<string> } | { skip: string }> {
  const gpu = await find(backend ? { backend } : {});
  if (typeof gpu === 'string') return { skip: `no WebGPU adapter: ${gpu}` };
  const i = gpu.info;
  return {
    device: gpu.device,
    name: [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' '),
    wgsl: gpu.wgslFeatures,
  };
}

/** Destroys `device` (the process's shared one: at the end only). */
export function releaseGpu(device?: GPUDevice): void {
  device?.destroy();
}

/** A storage buffer holding `data` (at least 16 bytes, so that vec4 views bind). */
export function upload(device: GPUDevice, data: Float32Array): GPUBuffer {
  const buf = device.createBuffer({
    size: Math.max(16, Math.ceil(data.byteLength / 16) * 16),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    mappedAtCreation: true,
  });
  new Float32Array(buf.getMappedRange()).set(data);
  buf.unmap();
  return buf;
}

/** The compute pipeline and bind group of `spec` over `buffers` (its inputs, then its output). */
export function prepare(
  device: GPUDevice,
  spec: KernelSpec,
  buffers: readonly GPUBuffer[],
): { pipeline: GPUComputePipeline; group: GPUBindGroup; run?: GPUBindGroup } {
  const module = device.createShaderModule({ code: spec.code });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const group = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  if (!spec.run) return { pipeline, group };
  // the per-run values (RUN_STRUCT), all zero: the first sample 0
  const values = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const run = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(1),
    entries: [{ binding: 0, resource: { buffer: values } }],
  });
  return { pipeline, group, run };
}

/** Copies the first `length` floats of `buf` back to the host. */
export async function download(device: GPUDevice, buf: GPUBuffer, length: number): Promise<Float32Array> {
  const read = device.createBuffer({
    size: buf.size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(buf, 0, read, 0, buf.size);
  device.queue.submit([enc.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(read.getMappedRange()).slice(0, length);
  read.destroy();
  return out;
}

/** Runs `spec` once on `inputs`; returns its output of `outLength` floats. */
export async function runKernel(
  device: GPUDevice,
  spec: KernelSpec,
  inputs: readonly Float32Array[],
  outLength: number,
): Promise<Float32Array> {
  const buffers = [...inputs.map((x) => upload(device, x)), upload(device, new Float32Array(outLength))];
  device.pushErrorScope('validation');
  const { pipeline, group } = prepare(device, spec, buffers);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, group);
  pass.dispatchWorkgroups(...spec.grid);
  pass.end();
  device.queue.submit([enc.finish()]);
  const error = await device.popErrorScope();
  if (error) throw new Error(`${error.message}\n${spec.code}`);
  const out = await download(device, buffers[buffers.length - 1]!, outLength);
  for (const b of buffers) b.destroy();
  return out;
}

/** false when the runtime's shared device was found (tests run), else why they skip. */
export const webgpuSkip: false | string = await find({}).then((g) =>
  typeof g === 'string' ? `no WebGPU adapter: ${g}` : false,
);
