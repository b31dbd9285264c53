/** Per-run noise of the crossbar graphs: a seed per layer and purpose, and the Gaussian sampler. */
import { NOISE_TABLE_SAMPLES } from '../graph/noise-table.js';
import { numel, type Shape } from '../graph/shape.js';
import { noise, randomNormal, type Tensor } from '../graph/tensor.js';
import type { Crossbar } from './spec.js';

/** A stable 31-bit seed from a base seed and a label (layer name and purpose). */
export function seedFor(base: number, label: string): number {
  let h = (base ^ 0x811c9dc5) >>> 0;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
  return h & 0x7fffffff;
}

/** Fresh N(0, std²) noise of `shape` at every run, drawn as the crossbar's `noiseSampler` says. */
export function gaussianNoise(shape: Shape, std: number, seed: number, xbar: Crossbar): Tensor {
  return xbar.noiseSampler === 'table' && numel(shape) <= NOISE_TABLE_SAMPLES
    ? noise(shape, { seed, std })
    : randomNormal(shape, { seed, std });
}
