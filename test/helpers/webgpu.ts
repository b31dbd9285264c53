/**
 * A WebGPU device for kernel tests and benchmarks (Dawn's `webgpu` package), and one
 * KernelSpec dispatched on it. Where no adapter is found (no GPU), SwiftShader's Vulkan ICD
 * (Debian's `chromium`) is tried when VK_ICD_FILENAMES is unset and the ICD is installed, as on
 * CI; child processes inherit the setting.
 */
import { existsSync } from 'node:fs';
import { create, globals } from 'webgpu';
import type { KernelSpec } from '../../src/graph/gpu-kernel.js';
import { gpuDevice as runtimeDevice } from '../../src/runtime/webgpu/device.js';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/**
 * Dawn's instance: it lives while referenced (the device stops working once it is collected),
 * and Node does not exit while it is (`releaseGpu`).
 */
let instance: GPU | null = null;

/** The first adapter of Dawn's `backend` (all where unset), or null. */
async function firstAdapter(backend?: string): Promise<GPUAdapter | null> {
  Object.assign(globalThis, globals);
  instance ??= create(backend ? [`backend=${backend}`] : []);
  return instance.requestAdapter(backend === 'opengles' ? { featureLevel: 'compatibility' } : {});
}

/**
 * The first adapter's device with the adapter's own limits, or why there is none. `backend`:
 * Dawn's backend (e.g. `opengles`, for hosts without Vulkan: compatibility mode).
 */
export async function gpuDevice(
  backend?: string,
): Promise<{ device: GPUDevice; name: string } | { skip: string }> {
  let adapter = await firstAdapter(backend);
  if (!adapter && !process.env['VK_ICD_FILENAMES'] && existsSync(SWIFTSHADER_ICD)) {
    // a new instance reads the variable again
    process.env['VK_ICD_FILENAMES'] = SWIFTSHADER_ICD;
    instance = null;
    adapter = await firstAdapter(backend);
  }
  if (!adapter)
    return {
      skip: `no WebGPU adapter (install chromium and libvulkan1 for SwiftShader, or set VK_ICD_FILENAMES)`,
    };
  const limits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const v = adapter.limits[key as keyof GPUSupportedLimits];
    if (typeof v === 'number') limits[key] = v;
  }
  const requiredFeatures = (['timestamp-query'] as const).filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits: limits, requiredFeatures });
  const info = adapter.info;
  return {
    device,
    name: [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' '),
  };
}

/** Destroys `device` and drops Dawn's instance, so that Node can exit. */
export function releaseGpu(device?: GPUDevice): void {
  device?.destroy();
  instance = null;
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
export const webgpuSkip: false | string = await (async () => {
  if (!process.env['VK_ICD_FILENAMES'] && existsSync(SWIFTSHADER_ICD))
    process.env['VK_ICD_FILENAMES'] = SWIFTSHADER_ICD;
  try {
    await runtimeDevice();
    return false;
  } catch (e) {
    return `no WebGPU adapter: ${(e as Error).message}`;
  }
})();
