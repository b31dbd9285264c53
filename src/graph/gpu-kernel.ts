/**
 * What a WebGPU kernel is to the WebGPU runtime (runtime/webgpu/): one compute dispatch, described by its WGSL source
 * (which is also the pipeline's cache key), how many inputs it binds and its grid. Shapes are
 * baked into the source as constants: a compiled graph's shapes never change, and constant
 * loop bounds and strides let the shader compiler unroll and fold the index arithmetic.
 */

/**
 * The per-run values a kernel may read, bound at @group(1) @binding(0) as
 * `var<uniform> run: Run` (the struct below, declared by the kernel's source).
 * `firstSample`: the index in the data set of the run's first sample (keys sample noise).
 */
export const RUN_STRUCT = 'struct Run { firstSample: u32, pad0: u32, pad1: u32, pad2: u32 }';

export interface KernelSpec {
  /**
   * WGSL with entry point `main`. Bindings: @group(0) @binding(i), for i < `inputs`, the inputs
   * as `var<storage, read>`; @binding(inputs), the output as `var<storage, read_write>`.
   */
  code: string;
  /** Number of input bindings. */
  inputs: number;
  /** Workgroups to dispatch (x, y, z), each at most 65,535. */
  grid: readonly [number, number, number];
  /** Whether the kernel reads the run's values (`RUN_STRUCT` at @group(1) @binding(0)). */
  run?: boolean;
  /**
   * A dispatch that first transforms input `input` (`spec` binds it at @binding(0) and writes
   * `words` 32-bit words at @binding(1)); this kernel binds the result in that input's place.
   */
  before?: { input: number; spec: KernelSpec; words: number };
}
