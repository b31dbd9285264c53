/**
 * The hardware spec: every knob of the analog model as a typed, documented field with one
 * unit and a default. The simulator and the cost model read only this.
 *
 * Units: conductances in µS, times in s. "Normalised output units" are those of a column
 * in which one device at G_MAX is driven by a full-scale input (aihwkit's convention), so an
 * ADC range of 10 saturates when ten such devices add up.
 */
import { z } from 'zod';
import { intIn, nonNeg, numIn, positive } from '../util/validate.js';

/** Technologies the cost model has component numbers for. */
export const TECHNOLOGIES = ['rram', 'fefet', 'sram', 'pcm', 'ideal'] as const;

export const Tile = z
  .object({
    rows: intIn(1, 65536).default(512).describe('crossbar rows: inputs per tile'),
    cols: intIn(1, 65536).default(512).describe('crossbar columns: outputs per tile'),
    split: z
      .enum(['fixed', 'even'])
      .default('even')
      .describe(
        "how a layer larger than a tile is split: 'fixed' = full tiles, remainder last; 'even' = as even as possible (aihwkit)",
      ),
  })
  .strict();

export const WeightClip = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('none') }).strict(),
  z
    .object({ kind: z.literal('fixed'), max: positive('|w| bound') })
    .strict()
    .describe('clip weights to ±max before mapping'),
  z
    .object({ kind: z.literal('sigma'), n: positive('multiples of the std') })
    .strict()
    .describe("clip to ±n·std of the layer's weights"),
]);

export const ConductanceRange = z.discriminatedUnion('kind', [
  z
    .object({ kind: z.literal('full') })
    .strict()
    .describe('every column spans [G_MIN, G_MAX]'),
  z
    .object({
      kind: z.literal('calibrated'),
      sigmas: nonNeg('L: multiples of the std').default(3),
      samples: intIn(1, 1_000_000).default(2),
      current: z
        .enum(['signed', 'magnitude'])
        .default('signed')
        .describe(
          "the statistics' variable: 'signed' I as the paper's μ + L·σ; 'magnitude' |I|, which also catches columns that saturate at −I_S",
        ),
    })
    .strict()
    .describe(
      'per column: where μ + L·σ of the column current over N calibration inputs exceeds the ADC saturation, the column’s G_MAX shrinks by their ratio (post-training optimisation; needs reprogramming)',
    ),
  z
    .object({
      kind: z.literal('learned'),
      min: numIn(0, 1, true).default(0.01).describe('the smallest η training may reach'),
    })
    .strict()
    .describe(
      "per column scale η ∈ (0, 1] of the conductance range, trained with the weights (xbar train --hwa); stored in the model folder's analog_ranges.safetensors",
    ),
]);

export const Mapping = z
  .object({
    kind: z
      .enum(['differential', 'offset'])
      .default('differential')
      .describe('differential: a G+/G− pair per weight; offset: one device, weight 0 at mid-range'),
    gMinUS: nonNeg('µS').default(0).describe('lowest programmable conductance, µS'),
    gMaxUS: positive('µS').default(25).describe('highest programmable conductance, µS'),
    scale: z
      .enum(['tile', 'column', 'none'])
      .default('tile')
      .describe(
        "max|W| of each tile (or column) maps to G_MAX and is restored digitally; 'none': the MVM sees W as is (aihwkit's default weight_scaling_omega 0), so ADC ranges are in weight units",
      ),
    clip: WeightClip.default({ kind: 'none' }),
    conductanceRange: ConductanceRange.default({ kind: 'full' }),
  })
  .strict()
  .refine((m) => m.gMinUS < m.gMaxUS, { error: 'use gMinUS < gMaxUS', path: ['gMinUS'] });

export const Cells = z.discriminatedUnion('kind', [
  z
    .object({ kind: z.literal('analog') })
    .strict()
    .describe('unquantised conductances (PCM)'),
  z
    .object({
      kind: z.literal('quantized'),
      bitsPerCell: intIn(1, 8).describe('levels per device = 2^bitsPerCell'),
      weightBits: intIn(1, 16).describe(
        'magnitude bits per polarity, bit-sliced over ceil(weightBits/bitsPerCell) crossbars',
      ),
    })
    .strict(),
]);

/** Programming (write) noise, applied once per Monte Carlo instance to static weights, per input to dynamic K/V. */
export const Programming = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('none') }).strict(),
  z
    .object({ kind: z.literal('relative'), sigma: nonNeg('relative std') })
    .strict()
    .describe('G·(1 + σξ)'),
  z
    .object({
      kind: z.literal('writeSqrt'),
      gamma: nonNeg('γ'),
      sigma: nonNeg('σ_W'),
      per: z
        .enum(['value', 'cell'])
        .default('value')
        .describe(
          "value: once on the conductance of the value's device, G_MIN + |w|·ΔG, whose slices are then written exactly (the paper's equation); cell: on every bit-slice cell, each a device of its own",
        ),
    })
    .strict()
    .describe('ClipFormer: G + γσ_W·sqrt((G − G_MIN)(G_MAX − G_MIN))·ξ, floored at G_MIN'),
  z
    .object({ kind: z.literal('pcm'), scale: nonNeg('multiplier').default(1) })
    .strict()
    .describe("aihwkit PCMLikeNoiseModel's polynomial σ(ĝ), scaled by G_MAX/25 µS"),
  z
    .object({ kind: z.literal('additive'), sigma: nonNeg('fraction of G_MAX') })
    .strict()
    .describe('G + σ·G_MAX·ξ'),
]);

/** Per-MVM read noise of every mapped matrix, realised exactly as output-referred noise. */
export const ReadNoise = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('none') }).strict(),
  z
    .object({ kind: z.literal('relative'), sigma: nonNeg('relative std') })
    .strict()
    .describe('G·(1 + σ_R ξ) at every read'),
]);

export const Drift = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('none') }).strict(),
  z
    .object({
      kind: z.literal('pcm'),
      t0S: positive('s').default(20).describe('reference time of the drift law, s'),
      readNoise: z.boolean().default(true).describe('accumulated 1/f read noise at the evaluation time'),
      tReadS: positive('s').default(250e-9).describe('duration of one read, s (1/f noise)'),
    })
    .strict()
    .describe('G·(t/t0)^−ν with ν per device (aihwkit PCM fit)'),
]);

export const OutputNoise = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('none') }).strict(),
  z.object({ kind: z.literal('gaussian'), sigma: nonNeg('normalised output units') }).strict(),
]);

export const InputRange = z.discriminatedUnion('kind', [
  z
    .object({ kind: z.literal('dynamic') })
    .strict()
    .describe('max|x| of each input vector, per tile (noise management)'),
  z.object({ kind: z.literal('fixed'), max: positive('input units') }).strict(),
  z
    .object({
      kind: z.literal('calibrated'),
      percentile: numIn(0, 100, true),
      samples: intIn(1, 1_000_000).default(2),
    })
    .strict()
    .describe('K-th percentile of |x| over N calibration inputs, per tile (post-training optimisation)'),
  z
    .object({
      kind: z.literal('learned'),
      init: positive('input units')
        .optional()
        .describe("every tile's range when training starts; default: from the data (initSigmas)"),
      initSigmas: positive('multiples of the std')
        .default(3)
        .describe("without init: initSigmas × the std of the tile's inputs over the first training batch"),
      decay: nonNeg('per step, relative')
        .default(0.01)
        .describe(
          'the decay term of the range gradient, decay·range, that shrinks it (Eq. 2; the paper: 0.01)',
        ),
      minInside: numIn(0, 1)
        .default(0.95)
        .describe('the decay acts only while more than this fraction of the inputs lie inside the range'),
    })
    .strict()
    .describe(
      "per tile, trained with the weights (xbar train --hwa); stored in the model folder's analog_ranges.safetensors",
    ),
]);

export const Dac = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('ideal') }).strict(),
  z
    .object({
      kind: z.literal('uniform'),
      bits: intIn(1, 16).describe('signed: 2^(bits−1) − 1 levels each side of zero'),
      mode: z
        .enum(['pwm', 'bitSerial'])
        .default('pwm')
        .describe(
          'pwm: one analog MVM; bitSerial: one MVM and ADC conversion per magnitude bit, shift-added',
        ),
      range: InputRange.default({ kind: 'dynamic' }),
    })
    .strict(),
]);

export const AdcRange = z.discriminatedUnion('kind', [
  z
    .object({ kind: z.literal('fixed'), max: positive('normalised output units') })
    .strict()
    .describe('saturates at ±max'),
  z
    .object({ kind: z.literal('full') })
    .strict()
    .describe('±rows: a full column never saturates'),
  z
    .object({
      kind: z.literal('calibrated'),
      percentile: numIn(0, 100, true)
        .default(99.99)
        .describe(
          'K (0..100]: the percentile of |value before the ADC| (normalised output units) that becomes the range; default 99.99, the K of the post-training input-range runs (docs/experiments.md)',
        ),
      samples: intIn(1, 1_000_000)
        .default(2)
        .describe(
          'N: calibration inputs, the first of the training split; default 2, the post-training paper’s N',
        ),
    })
    .strict()
    .describe(
      'per row tile and column of every static layer and attention product: ±the K-th percentile of |value before the ADC| over every conversion of the column (all input planes and weight slices; K/V: all heads) for N calibration inputs through the noise-free crossbars (needs calibration data: xbar eval --calibration, or xbar experiment ablation, clipformer or pto)',
    ),
]);

/**
 * What the periphery does when a conversion saturates. aihwkit 1.x (`forward.bound_management =
 * ITERATIVE`, `max_bm_factor`, `max_bm_res`): the MVM of an input vector whose output hits the
 * ADC bound is run again with the input scaled down by 2 (fresh DAC quantisation and noise) and
 * the result scaled back up, until nothing saturates or the limit is reached.
 */
export const BoundManagement = z.discriminatedUnion('kind', [
  z
    .object({ kind: z.literal('none') })
    .strict()
    .describe('a saturated conversion stays clipped at the ADC range'),
  z
    .object({
      kind: z.literal('iterative'),
      maxFactor: intIn(1, 1 << 20)
        .default(1000)
        .describe(
          'the input is divided by 1, 2, 4, …; the round whose divisor first exceeds maxFactor is the last (aihwkit max_bm_factor)',
        ),
      minInputLevels: positive('DAC levels')
        .default(4)
        .describe(
          'with a quantised DAC, the round in which the largest input first spans fewer than this many DAC levels (levels/divisor) is also the last (aihwkit max_bm_res = 1/minInputLevels)',
        ),
    })
    .strict()
    .describe(
      'per input vector and column tile: while a conversion saturates (its rounded code lies beyond ±levels), rerun the MVM with the input halved (fresh DAC quantisation and noise) and scale the result back up',
    ),
]);

export const Adc = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('ideal') }).strict(),
  z
    .object({
      kind: z.literal('uniform'),
      bits: intIn(1, 16),
      range: AdcRange.default({ kind: 'full' }),
      boundManagement: BoundManagement.default({ kind: 'none' }),
    })
    .strict(),
]);

/** Which static matrices are stored in crossbars (the rest stay digital). */
export const Mapped = z
  .object({
    qkv: z.boolean().default(true),
    projection: z.boolean().default(true),
    ffn: z.boolean().default(true),
    patchEmbedding: z.boolean().default(false),
    classifier: z.boolean().default(false),
  })
  .strict();

/** The fields that describe one kind of crossbar (static weights, or the dynamic K/V ones). */
const crossbarFields = {
  technology: z
    .enum(TECHNOLOGIES)
    .default('ideal')
    .describe('device technology (selects the cost model component numbers)'),
  tile: Tile.prefault({}),
  mapping: Mapping.prefault({}),
  cells: Cells.default({ kind: 'analog' }),
  program: Programming.default({ kind: 'none' }),
  readNoise: ReadNoise.default({ kind: 'none' }),
  drift: Drift.default({ kind: 'none' }),
  driftCompensation: z
    .enum(['none', 'global', 'column', 'global-ideal', 'column-ideal'])
    .default('none')
    .describe(
      "digital gain per tile ('global') or per column after drift: the ratio of mean |output| of one-hot readouts through the periphery right after programming and at the evaluation time (aihwkit's GlobalDriftCompensation); '-ideal': the noise-free ratio mean |W_programmed| / mean |W_t|, which isolates drift from readout noise",
    ),
  outputNoise: OutputNoise.default({ kind: 'none' }),
  dac: Dac.default({ kind: 'ideal' }),
  adc: Adc.default({ kind: 'ideal' }),
};
export const Crossbar = z.object(crossbarFields).strict();
export type Crossbar = z.output<typeof Crossbar>;

export const Attention = z.discriminatedUnion('kind', [
  z
    .object({ kind: z.literal('digital') })
    .strict()
    .describe('QKᵀ and S·V in floating point'),
  z
    .object({
      kind: z.literal('crossbar'),
      /** Fields that differ from the static crossbars (e.g. write noise, another technology). */
      device: z.record(z.string(), z.unknown()).default({}),
    })
    .strict()
    .describe('K and V written into crossbars for every input'),
]);

export const Override = z
  .object({
    layers: z.string().min(1).describe("glob over layer names, e.g. 'layer.0.*' or '*.ffnIn'"),
    set: z.record(z.string(), z.unknown()).describe('crossbar fields for those layers'),
  })
  .strict();

export const HardwareSpec = z
  .object({
    name: z.string().default('custom'),
    description: z.string().default(''),
    source: z.string().default('').describe('where the numbers come from'),
    ...crossbarFields,
    timeS: nonNeg('s').default(0).describe('evaluation time after programming, s (drift)'),
    mapped: Mapped.prefault({}),
    attention: Attention.default({ kind: 'digital' }),
    overrides: z.array(Override).default([]),
  })
  .strict();
export type HardwareSpec = z.output<typeof HardwareSpec>;
export type HardwareSpecInput = z.input<typeof HardwareSpec>;

/** Bit slices of a weight (1 for analog cells). */
export const sliceCount = (c: Crossbar['cells']): number =>
  c.kind === 'analog' ? 1 : Math.ceil(c.weightBits / c.bitsPerCell);

/** Quantisation levels each side of zero of a signed `bits`-bit converter. */
export const signedLevels = (bits: number): number => 2 ** (bits - 1) - 1;

/** Whether a crossbar computes exactly what the floating-point matmul does. */
export function isPerfect(x: Crossbar): boolean {
  return (
    x.cells.kind === 'analog' &&
    x.program.kind === 'none' &&
    x.readNoise.kind === 'none' &&
    x.drift.kind === 'none' &&
    x.outputNoise.kind === 'none' &&
    x.dac.kind === 'ideal' &&
    x.adc.kind === 'ideal' &&
    x.mapping.clip.kind === 'none'
  );
}
