/**
 * The WGSL both crossbar-products kernels (crossbar.ts, crossbar-tiled.ts) share: what the
 * native kernel (native/crossbar_products.cc) fixes the same way whatever the loop around it —
 * the noise's keys, one conversion (noise, ADC gain, ADC), the DAC's codes and the output store.
 */
import { RUN_STRUCT } from '../../graph/gpu-kernel.js';
import type { CrossbarKernelArgs } from './crossbar.js';
import { f32Literal, PHILOX_WGSL } from './philox.js';

/** The module-scope declarations: the run uniform and the generator (with noise), the noise seeds and recombination weights. */
export function productsHead(a: CrossbarKernelArgs): string {
  const { planes, J } = a;
  const noisy = a.noiseSeeds !== null;
  return `${noisy ? `${RUN_STRUCT}\n@group(1) @binding(0) var<uniform> run: Run;\n${PHILOX_WGSL}` : ''}
${noisy ? `var<private> SEEDS: array<u32, ${planes}> = array<u32, ${planes}>(${Array.from(a.noiseSeeds!, (k) => `${k}u`).join(', ')});` : ''}
var<private> COEF: array<f32, ${planes * J}> = array<f32, ${planes * J}>(${Array.from(a.coef, (c) => f32Literal(c)).join(', ')});`;
}

/**
 * The keys of the noise of vector `n` (a WGSL expression) in batch `b` and row tile `r`
 * (native noiseAt): its sample's index and its row of generator blocks.
 */
export function noiseKeys(a: CrossbarKernelArgs, n: string): { sample: string; row: string } {
  const { B, R, N } = a;
  if (a.samplesAlongB) {
    const perB = B / a.samples;
    return { sample: `run.firstSample + b / ${perB}u`, row: `((b % ${perB}u) * ${R}u + r) * ${N}u + ${n}` };
  }
  const perN = N / a.samples;
  return { sample: `run.firstSample + ${n} / ${perN}u`, row: `(b * ${R}u + r) * ${perN}u + ${n} % ${perN}u` };
}

/**
 * One conversion of `val` (plane k of slice j, 4 columns from quad `cq`): read noise
 * σ·sqrt(Σx²G² + σ_out²)·ξ from the sums of squares `squareSum` (null: output noise alone), the
 * ADC gain `ag` of a calibrated range, then the ADC's round-and-clip. `sample` and `row` are
 * the vector's noiseKeys.
 */
export function conversion(
  a: CrossbarKernelArgs,
  squareSum: string | null,
  sample: string,
  row: string,
): string {
  const { B, R, N } = a;
  const blocks = a.samplesAlongB ? (B / a.samples) * R * N : B * R * (N / a.samples);
  const sigma = f32Literal(a.outSigma);
  const noise =
    a.noiseSeeds === null
      ? ''
      : `val += ${squareSum === null ? sigma : `sqrt(${squareSum} + ${f32Literal(Math.fround(a.outSigma) ** 2)})`} * gaussianBlock(vec4<u32>(cq, j * ${blocks}u + ${row}, ${sample}, 0u), vec2<u32>(SEEDS[k], 0u));`;
  const adc =
    a.levels > 0
      ? `val = clamp(round(val), vec4<f32>(${f32Literal(-a.levels)}), vec4<f32>(${f32Literal(a.levels)}));`
      : '';
  return [noise, a.adcGains ? 'val *= ag;' : '', adc].filter(Boolean).join('\n');
}

/** `ag`: the ADC gains of row tile `r`'s columns c0…c0+3 (a calibrated ADC range), or nothing. */
export const adcGainsOf = (a: CrossbarKernelArgs): string =>
  a.adcGains
    ? `let ag = vec4<f32>(${[0, 1, 2, 3].map((l) => `adcGain[r * ${a.C}u + min(c0 + ${l}u, ${a.C - 1}u)]`).join(', ')});`
    : '';

/** The DAC's code of input `q` under a dynamic range whose bits `rangeBits` (a u32) holds: fl(q·fl(levels/range)), |·| rounded half to even, as the graph's DAC. */
export const dynamicCode = (a: CrossbarKernelArgs, rangeBits: string): string =>
  `u32(round(abs(q * (${f32Literal(a.dacLevels)} / max(bitcast<f32>(${rangeBits}), ${f32Literal(1e-30)})))))`;

/** The WGSL function that stores 4 columns from c0 of output row `row`, those past C left out. */
export const storeFn = (C: number): string => `
fn store(row: u32, c0: u32, value: vec4<f32>) {
  for (var l = 0u; l < 4u; l++) {
    if (c0 + l < ${C}u) { out[row * ${C}u + c0 + l] = value[l]; }
  }
}
`;
