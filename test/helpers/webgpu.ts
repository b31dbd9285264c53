/**
 * The WebGPU device for tests: the host's adapter, else SwiftShader (a CPU Vulkan that Debian's
 * chromium installs), else the reason tests that need one skip.
 */
import { existsSync } from 'node:fs';
import { type Gpu, gpuDevice } from '../../src/runtime/webgpu/device.js';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';

async function find(): Promise<Gpu | string> {
  try {
    return await gpuDevice();
  } catch (e) {
    if (process.env['VK_ICD_FILENAMES'] || !existsSync(SWIFTSHADER)) return (e as Error).message;
    process.env['VK_ICD_FILENAMES'] = SWIFTSHADER;
    try {
      return await gpuDevice();
    } catch (e2) {
      return (e2 as Error).message;
    }
  }
}

/** false when a device was found (tests run), else why they skip. */
export const webgpuSkip: false | string = await find().then((g) =>
  typeof g === 'string' ? `no WebGPU adapter: ${g}` : false,
);
