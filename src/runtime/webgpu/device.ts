/**
 * The process's one GPUDevice for the WebGPU runtime. In a browser it comes from
 * `navigator.gpu`; in Node from Dawn (the `webgpu` package): its default backend (Vulkan on
 * Linux), else its OpenGL ES backend in compatibility mode, which reaches GPUs on hosts that
 * have EGL but no Vulkan driver (common in containers).
 */

export interface DeviceOptions {
  /**
   * Which adapter: its index in the list Dawn reports, or a substring of its name (Node only;
   * a browser picks its own adapter).
   */
  gpu?: number | string;
  /** 'opengles': Dawn's OpenGL ES backend even where Vulkan is there (to compare backends; Node only). */
  backend?: 'opengles';
}

/** What `describeAdapter` reports. */
export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** 'vulkan', 'opengles', … (Dawn), or 'browser'. */
  backend: string;
  features: readonly string[];
}

export interface Gpu {
  readonly device: GPUDevice;
  readonly info: AdapterInfo;
  readonly subgroups: boolean;
  readonly timestamps: boolean;
  /** The WGSL language features of the WebGPU implementation (`GPU.wgslLanguageFeatures`). */
  readonly wgslFeatures: ReadonlySet<string>;
}

/** Limits requested at the adapter's own values (the defaults are far below a GPU's). */
const LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupsPerDimension',
] as const;

const HOST_NEEDS =
  'a GPU host needs a Vulkan driver (libvulkan1 and the vendor ICD), or EGL (glvnd libEGL and the vendor GL driver) for the OpenGL ES backend; without a GPU, SwiftShader (VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json) runs the kernels slowly on the CPU';

let shared: Promise<Gpu> | undefined;
/**
 * Dawn's instances, held for the life of the process: a collected instance takes its devices
 * down with it (crashes at random points, from the garbage collector).
 */
const instances: GPU[] = [];
let sharedKey: string | undefined;

/** The shared device (made on first use; later calls must ask for the same adapter). */
export function gpuDevice(opts: DeviceOptions = {}): Promise<Gpu> {
  const key = `${opts.gpu ?? ''}${opts.backend ? ` (${opts.backend})` : ''}`;
  if (shared) {
    if (key !== sharedKey && key !== '')
      throw new Error(
        `--gpu ${key}: this process already uses the GPU '${sharedKey || 'default'}'; one device per process`,
      );
    return shared;
  }
  sharedKey = key;
  shared = open(opts);
  shared.catch(() => {
    shared = undefined;
  });
  return shared;
}

/** The adapter of the shared device, for version reports (opens the device if need be). */
export async function describeAdapter(opts: DeviceOptions = {}): Promise<AdapterInfo> {
  return (await gpuDevice(opts)).info;
}

async function open(opts: DeviceOptions): Promise<Gpu> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) {
    const adapter = await nav.gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) throw new Error('WebGPU: the browser offers no adapter');
    return finish(adapter, 'browser', nav.gpu);
  }
  const dawn = await import('webgpu');
  Object.assign(globalThis, dawn.globals);
  const instance = (f: string[]): GPU => {
    const g = dawn.create(f);
    instances.push(g);
    return g;
  };
  const available = await adapterList(instance);
  const name = pick(opts.gpu, available);
  const flags = name ? [`adapter=${name}`] : [];
  const vulkan = opts.backend === 'opengles' ? null : instance(flags);
  const first = await vulkan?.requestAdapter({ powerPreference: 'high-performance' });
  if (vulkan && first) return finish(first, backendOf(first, available), vulkan);
  // no Vulkan: Dawn's OpenGL ES backend (core WebGPU needs features GLES lacks: compatibility mode)
  const glesInstance = instance([...flags, 'backend=opengles']);
  const gles = await glesInstance.requestAdapter({
    featureLevel: 'compatibility',
  } as GPURequestAdapterOptions);
  if (gles) return finish(gles, 'opengles', glesInstance);
  const list = available.length
    ? `adapters: ${available.map((a) => `${a.name} (${a.backend})`).join(', ')}`
    : 'no adapter was found';
  throw new Error(`WebGPU: no usable adapter (${list}); ${HOST_NEEDS}`);
}

interface Listed {
  name: string;
  backend: string;
}

/** The adapters Dawn sees: it lists them when asked for one that does not exist. */
async function adapterList(create: (flags: string[]) => GPU): Promise<Listed[]> {
  try {
    await create(['adapter=(list every adapter)']).requestAdapter();
  } catch (e) {
    return parseAdapters((e as Error).message);
  }
  return [];
}

/** Dawn's list: lines ` * backend: 'vulkan', name: 'NVIDIA H100 80GB HBM3'`. */
export function parseAdapters(message: string): Listed[] {
  return [...message.matchAll(/backend: '([^']*)', name: '([^']*)'/g)].map((m) => ({
    backend: m[1]!,
    name: m[2]!,
  }));
}

function pick(gpu: number | string | undefined, available: readonly Listed[]): string | undefined {
  if (gpu === undefined || gpu === '') return undefined;
  const names = available.map((a, i) => `${i}: ${a.name} (${a.backend})`).join(', ') || 'none found';
  if (typeof gpu === 'number') {
    const a = available[gpu];
    if (!Number.isInteger(gpu) || !a)
      throw new Error(`--gpu ${gpu}: no adapter of that index (adapters: ${names})`);
    return a.name;
  }
  const a = available.find((x) => x.name.toLowerCase().includes(gpu.toLowerCase()));
  if (!a) throw new Error(`--gpu '${gpu}': no adapter's name contains it (adapters: ${names})`);
  return a.name;
}

/** The backend of the adapter Dawn chose: the listed one of its name, else the first listed. */
function backendOf(adapter: GPUAdapter, available: readonly Listed[]): string {
  const { description, device } = adapter.info;
  const named = available.find((a) => a.name === description || a.name === device);
  return named?.backend ?? available[0]?.backend ?? 'unknown';
}

/**
 * The WGSL language features kernels may use: the implementation's, less
 * packed_4x8_integer_dot_product under XBAR_GPU_DOT4=0 (the crossbar kernel's float32 products,
 * to compare).
 */
function wgslFeatures(gpu: GPU): Set<string> {
  const features = new Set(gpu.wgslLanguageFeatures ?? []);
  if (process.env['XBAR_GPU_DOT4'] === '0') features.delete('packed_4x8_integer_dot_product');
  return features;
}

async function finish(adapter: GPUAdapter, backend: string, gpu: GPU): Promise<Gpu> {
  const requiredLimits: Record<string, number> = {};
  for (const l of LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number | undefined>)[l];
    if (v !== undefined) requiredLimits[l] = v;
  }
  const wanted = ['subgroups', 'timestamp-query'] as const;
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const info = adapter.info;
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  device.lost.then((l) => {
    if (l.reason !== 'destroyed') console.error(`WebGPU: device lost: ${l.message}`);
  });
  return {
    device,
    info: {
      vendor: info.vendor,
      architecture: info.architecture,
      device: info.device,
      description: info.description,
      backend,
      features: [...adapter.features],
    },
    subgroups: requiredFeatures.includes('subgroups'),
    timestamps: requiredFeatures.includes('timestamp-query'),
    wgslFeatures: wgslFeatures(gpu),
  };
}
