/** Per-run noise of the crossbar graphs: the Gaussian sampler (seeds per layer: util/math seedFor). */
import { NOISE_TABLE_SAMPLES } from '../graph/noise-table.js';
import { numel, type Shape } from '../graph/shape.js';
import { noise, randomNormal, type Tensor } from '../graph/tensor.js';
import type { Crossbar } from './spec.js';

/** Fresh N(0, std²) noise of `shape` at every run, drawn as the crossbar's `noiseSampler` says. */
export function gaussianNoise(shape: Shape, std: number, seed: number, xbar: Crossbar): Tensor {
  return xbar.noiseSampler === 'table' && numel(shape) <= NOISE_TABLE_SAMPLES
    ? noise(shape, { seed, std })
    : randomNormal(shape, { seed, std });
}
