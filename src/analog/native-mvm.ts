/**
 * The analog MVM in one call of the native kernel (native/crossbar_products.cc), for bit-serial
 * inputs, where the ONNX graph makes ~8 passes over K× expanded values (a PWM product is one
 * Gemm, which ONNX Runtime does best), and on the GPU in its WGSL equivalent
 * (runtime/webgpu/crossbar.ts). The kernels draw the read and output noise themselves, keyed
 * as the graph's noise leaves are (util/philox.ts), so all give the same noise to an output.
 */

import type { HostArray } from '../graph/ndarray.js';
import { numel } from '../graph/shape.js';
import { hostCall, type Tensor } from '../graph/tensor.js';
import {
  type CrossbarProductsArgs,
  kernelInfo,
  type NativeKernels,
  nativeKernels,
  nativeKernelsOff,
  nativeThreads,
} from '../runtime/native.js';
import { crossbarKernel, type WriteLaw } from '../runtime/webgpu/crossbar.js';
import { InputError } from '../util/errors.js';
import { seedFor } from '../util/math.js';
import { boundManagementRounds } from './adc.js';
import { dac } from './dac.js';
import { type Mvm, operandScales, outputSigma, scalesLeft } from './products.js';
import { type Crossbar, signedLevels } from './spec.js';
import { NATIVE_CONSTANTS } from './write-noise.js';

const CONSTANTS = JSON.stringify(NATIVE_CONSTANTS);
let stale = false;

/** The native kernels, when built with this xbar's write-noise constants (another build would write other noise). */
export function currentKernels(): NativeKernels | null {
  const kernels = nativeKernels();
  if (!kernels || kernels.constants === CONSTANTS) return kernels;
  if (!stale)
    console.error('xbar: the native kernels were built from other constants; run `npm run build:native`');
  stale = true;
  return null;
}

/**
 * Whether the native kernel computes this crossbar's products (when built): bit-serial inputs,
 * no bound management (which needs the values before the ADC).
 */
export function nativeApplies(xbar: Crossbar): boolean {
  return xbar.dac.kind === 'uniform' && xbar.dac.mode === 'bitSerial' && boundManagementRounds(xbar) === 1;
}

/** Slice counts the native kernel is compiled for. */
const NATIVE_SLICES = new Set([1, 2, 3, 4, 8]);

/** The write-noise laws by the native kernel's codes. */
const LAWS = new Map(
  Object.entries(NATIVE_CONSTANTS.writeKinds).map(([law, code]) => [code, law as WriteLaw]),
);

/**
 * `m` in the native kernel (on the GPU: its WGSL equivalent), gain and sum over row tiles
 * included: → [(…), N, C], or null where the kernel does not apply or the kernels are turned off
 * (XBAR_NATIVE=0; then `analogMvm` and the caller's gain and sum compute the same).
 * `gain.scale`: the gain's per-column part (tile scale × ADC step) per (batch, row tile, block
 * of `gain.block` columns), [1 or B, R, C/block]; the gain is that × each vector's DAC range.
 * ONNX Runtime's broadcast multiply by a gain per 64 columns and its ReduceSum over a leading
 * axis are passes over the outputs; in the kernel they are a multiply-add per output. Operands
 * are shared by every input batch or one per batch.
 */
export function nativeMvm(m: Mvm, gain: { scale: Tensor; block: number }): Tensor | null {
  const { x, xbar, tileRanges, operand: op, rows } = m;
  // a probe reads the values before the ADC, which only the graph has
  if (nativeKernelsOff() || !nativeApplies(xbar) || m.probe) return null;
  // the kernels loaded when the graph is built run it (a later load of another target, as a
  // benchmark does, must not change what an earlier graph runs); none here: the GPU's only
  const built = currentKernels();
  // DAC nodes nothing reads are never emitted
  const d = dac(x, xbar, tileRanges);
  const J = op.weights.shape[0]!;
  const lead = x.shape.slice(0, -3);
  const wLead = op.weights.shape.slice(1, -3);
  const [R, N, tileRows] = x.shape.slice(-3) as [number, number, number];
  const C = op.weights.shape.at(-1)!;
  const B = numel(lead);
  const sameLead = wLead.length === lead.length && wLead.every((v, i) => v === lead[i]);
  const k = d.planeWeights.length;
  if (!NATIVE_SLICES.has(J) || (numel(wLead) !== 1 && !sameLead) || k > 31) return null;
  const scales = operandScales(xbar, rows);
  const { weightScale, squareScale } = scalesLeft(op, scales);
  const sq = scales.squareScale > 0 ? op.squares : null;
  // a dynamic DAC range is computed in the kernel, with the codes and the gain from it (one pass
  // over the inputs instead of ~12 ONNX ops); a given range (fixed, calibrated, learned) in the graph
  const dynamic = xbar.dac.kind === 'uniform' && xbar.dac.range.kind === 'dynamic' && !tileRanges;
  const [gainBatches, , blocks] = gain.scale.shape as [number, number, number];
  const gainValues = dynamic
    ? gain.scale
    : gain.scale.reshape([gainBatches, R, 1, blocks]).mul(d.range.reshape([B, R, N, 1]));
  // the seeds of the graph's noise leaves (products.ts sliceProducts)
  const outSigma = Math.fround(outputSigma(xbar, rows));
  const noiseSeeds =
    sq || outSigma > 0
      ? Uint32Array.from(d.planeWeights, (_, p) => seedFor(seedFor(m.seed, `plane${p}`), 'noise'))
      : null;
  const coef = Float32Array.from(
    { length: k * J },
    (_, i) => m.sliceWeights[i % J]! * d.planeWeights[Math.floor(i / J)]!,
  );
  const shape = [...lead, N, C];
  const dims = {
    B,
    Bw: numel(wLead),
    R,
    N,
    rows: tileRows,
    C,
    J,
    planes: k,
    levels: xbar.adc.kind === 'uniform' ? signedLevels(xbar.adc.bits) : 0,
    weightScale: Math.fround(weightScale),
    squareScale: Math.fround(squareScale),
    gainBlock: gain.block,
    gainBatches,
    sumTiles: true,
    dacLevels: dynamic && xbar.dac.kind === 'uniform' ? signedLevels(xbar.dac.bits) : 0,
    outSigma,
    samples: m.batch,
    samplesAlongB: lead.length > 0,
    ...(m.adcGains ? { adcGains: true } : {}),
  };
  const written = op.written;
  const writes = written ? { ...written.params, writeSquares: sq !== null } : null;
  const codes = written ? null : (op.codes ?? null);
  const key = `crossbarProducts ${JSON.stringify(dims)} ${sq ? 'squares' : ''} [${noiseSeeds?.join(',') ?? ''}] [${coef.join(',')}] ${JSON.stringify(writes)} ${JSON.stringify(codes)}`;
  // the operand: programmed cells (weights, and squares for read noise), or what the kernel writes them from
  const operand = written ? [written.unit, ...(written.noise ?? [])] : [op.weights, ...(sq ? [sq] : [])];
  const adcGains = m.adcGains ? [m.adcGains.reshape([R, C])] : [];
  const inputs = [dynamic ? x : d.codes, ...operand, ...adcGains, gainValues];
  const gpu = (_shapes: unknown, wgsl: ReadonlySet<string>) =>
    crossbarKernel({
      ...dims,
      cellCodes: codes,
      dot4: wgsl.has('packed_4x8_integer_dot_product'),
      squares: sq !== null,
      noiseSeeds,
      coef,
      written: written
        ? { ...written.params, law: LAWS.get(written.params.writeKind)!, pcmFit: NATIVE_CONSTANTS.pcmProgFit }
        : null,
    });
  const run = (ins: readonly HostArray[], reuse?: HostArray['data'], firstSample = 0): HostArray => {
    const kernels = built;
    if (!kernels) {
      const info = kernelInfo();
      throw new InputError(
        `xbar: the crossbar products need the native or WebAssembly kernel, and none runs here (${info.kind === 'onnx' ? info.reason : 'built from other write-noise constants'}); rebuild them (npm run build:native, npm run build:wasm), or set XBAR_NATIVE=0 for the ONNX graphs`,
      );
    }
    const data = (i: number) => ins[i]!.data as Float32Array;
    const cells = writes
      ? {
          ...writes,
          unit: data(1),
          writeNoise: written!.noise ? ([data(2), data(3)] as [Float32Array, Float32Array]) : null,
        }
      : { weights: data(1), squares: sq ? data(2) : null };
    const args: CrossbarProductsArgs = {
      ...dims,
      ...(dynamic ? { inputs: data(0), codes: null } : { codes: data(0) }),
      ...cells,
      noiseSeeds,
      firstSample,
      coef,
      ...(dynamic ? { gainScale: data(ins.length - 1) } : { gain: data(ins.length - 1) }),
      ...(m.adcGains ? { adcGain: data(ins.length - 2) } : {}),
      threads: nativeThreads(),
      ...(reuse instanceof Float32Array ? { out: reuse } : {}),
    };
    return { dtype: 'float32', shape, data: kernels.crossbarProducts(args) };
  };
  return hostCall(key, inputs, shape, run, 'float32', false, gpu);
}
