/**
 * The component library of the cost model: energy, delay and area of a crossbar (array, DAC and
 * drivers, ADCs, shift-add), of its writes, and of the CMOS units around it (softmax LUT unit,
 * score buffer, LayerNorm, GELU, digital MACs, PE/tile overhead), per device technology.
 *
 * Crossbar numbers are quoted for a reference configuration (the paper's); `crossbarCost` scales
 * them to the configuration in use with the physical law of each part (see docs/cost-model.md).
 * One unit per field, in its name: energyPJ, delayNs, areaMm2.
 */
import { z } from 'zod';
import { intIn, nonNeg, positive } from '../util/validate.js';

/** How an ADC's energy, area and conversion time grow with its bits b. */
export const ADC_KINDS = ['flash', 'sar', 'cco'] as const;
export type AdcKind = (typeof ADC_KINDS)[number];
/** [energy, area, delay] relative growth: flash 2^b comparators; SAR b steps on a 2^b cap DAC; CCO counts 2^b. */
const ADC_LAWS: Record<AdcKind, (b: number) => [number, number, number]> = {
  flash: (b) => [2 ** b, 2 ** b, 1],
  sar: (b) => [b, 2 ** b, b],
  cco: (b) => [2 ** b, b, 2 ** b],
};

export const CrossbarReference = z
  .object({
    rows: intIn(1, 65536),
    cols: intIn(1, 65536),
    inputBits: intIn(1, 16).describe('signed DAC bits'),
    inputMode: z.enum(['pwm', 'bitSerial']),
    inputBitsPerCycle: intIn(1, 16).default(1),
    adcBits: intIn(1, 16),
    colsPerAdc: intIn(1, 65536).describe('columns multiplexed onto one ADC'),
  })
  .strict()
  .describe('the configuration the crossbar numbers are quoted for');

export const CrossbarComponents = z
  .object({
    reference: CrossbarReference,
    adcKind: z.enum(ADC_KINDS),
    /** One MVM of one crossbar (all input cycles), split by part. */
    arrayEnergyPJ: nonNeg('pJ per crossbar MVM').describe('cells, bit lines and word lines'),
    dacEnergyPJ: nonNeg('pJ per crossbar MVM').describe('input DACs and row drivers'),
    adcEnergyPJ: nonNeg('pJ per crossbar MVM').describe('all ADC conversions of one MVM'),
    shiftAddEnergyPJ: nonNeg('pJ per crossbar MVM').describe('shift-add of input cycles and bit slices'),
    arrayDelayNs: nonNeg('ns per input cycle').describe('drive and settle of one input cycle'),
    adcDelayNs: nonNeg('ns per conversion'),
    writeEnergyPJ: nonNeg('pJ per crossbar write').describe('programming every cell of one crossbar'),
    writeDelayNs: nonNeg('ns per crossbar write').describe('row by row'),
    arrayAreaMm2: nonNeg('mm² per crossbar'),
    dacAreaMm2: nonNeg('mm² per crossbar'),
    adcAreaMm2: nonNeg('mm² per crossbar').describe('all ADCs of one crossbar'),
    shiftAddAreaMm2: nonNeg('mm² per crossbar'),
  })
  .strict();
export type CrossbarComponents = z.output<typeof CrossbarComponents>;

/** A digital unit that handles `lanes` elements per cycle. */
const Unit = z
  .object({
    energyPJPerElement: nonNeg('pJ per element'),
    lanes: intIn(1, 1 << 20),
    cycleNs: nonNeg('ns'),
    areaMm2: nonNeg('mm² per unit'),
  })
  .strict();

export const DigitalComponents = z
  .object({
    softmax: z
      .object({
        energyPJPerElement: nonNeg('pJ per score').describe('E_sel + E_exp + E_div'),
        delayNsPerElement: nonNeg('ns per score').describe('D_sel + D_exp + D_div'),
        areaMm2: nonNeg('mm² per unit').describe('LUT, max and divider logic; one unit per head'),
      })
      .strict(),
    scoreBuffer: z
      .object({
        energyPJPerBit: nonNeg('pJ per bit written or read'),
        areaUm2PerBit: nonNeg('µm² per bit'),
      })
      .strict()
      .describe('holds the t×t scores of a head between QKᵀ, softmax and S·V'),
    layerNorm: Unit,
    activation: Unit.describe('GELU'),
    mac: Unit.describe('8-bit digital MACs for matmuls not on crossbars'),
    peAreaMm2: nonNeg('mm² per PE').describe('PE overhead beyond its crossbars'),
    tileAreaMm2: nonNeg('mm² per tile').describe('tile overhead beyond its PEs'),
  })
  .strict();
export type DigitalComponents = z.output<typeof DigitalComponents>;

/** Cost-only architecture fields: what the hardware spec does not describe. */
export const Architecture = z
  .object({
    crossbarsPerPe: intIn(1, 65536).default(8).describe('crossbars per PE, read one after another'),
    pesPerTile: intIn(1, 65536).default(8),
    colsPerAdc: intIn(1, 65536).default(8).describe('columns sharing one ADC'),
    inputBitsPerCycle: intIn(1, 16).default(1).describe('input splitting of bit-serial DACs'),
    concurrentWritePes: intIn(1, 65536)
      .default(1)
      .describe('PEs whose dynamic (K/V) crossbars are written at the same time'),
  })
  .strict();
export type Architecture = z.output<typeof Architecture>;
export type ArchitectureInput = z.input<typeof Architecture>;

export const TechnologyCost = z
  .object({
    source: z.string().min(1),
    nodeNm: positive('nm'),
    crossbar: CrossbarComponents,
    digital: DigitalComponents,
    architecture: Architecture.partial().default({}).describe('defaults for this technology'),
  })
  .strict();
export type TechnologyCost = z.output<typeof TechnologyCost>;
export type TechnologyCostInput = z.input<typeof TechnologyCost>;

/** A constant solved from a published table rather than derived from device or circuit parameters. */
export interface Fitted {
  value: number;
  unit: string;
  /** The table it was solved from: that table cannot confirm it. */
  table: string;
  /** The figure of the table it reproduces, and how it was solved. */
  solvedFrom: string;
}

/**
 * The cost model's fitted constants (docs/cost-model.md §3). Each sits only in an attention block,
 * so the parts of an encoder outside attention are costed without any of them; that is what
 * test/cost/held-out.test.ts compares with figures the fit did not use.
 */
export const FITTED = {
  softmaxEnergyPJPerScore: {
    value: 5.3,
    unit: 'pJ per score',
    table: 'TReX Table IV (DeiT-S, 64×64 FeFET)',
    solvedFrom:
      'energy saved per removed attention block, (baseline − TReX-D-7)/5 with E = EDAP/(D·A), less the ' +
      'crossbars, LayerNorm and score buffer of the block, over h·t² scores',
  },
  softmaxDelayNsPerScore: {
    value: 2.07,
    unit: 'ns per score',
    table: 'TReX Table IV (DeiT-S, 64×64 FeFET)',
    solvedFrom: "baseline delay 10.92 ms less every other stage's, over 12·t² scores",
  },
  scoreBufferAreaUm2PerBit: {
    value: 3.1,
    unit: 'µm² per bit',
    table: 'TReX Table IV (DeiT-S, 64×64 FeFET) and its text: 24.7 mm² per removed attention block',
    solvedFrom:
      'area saved per removed attention block less its crossbars, softmax units and LayerNorm, over h·t²·8 bits',
  },
} as const satisfies Record<string, Fitted>;

/**
 * CMOS units at 32 nm: the FITTED constants, and estimates for the rest (docs/cost-model.md §4
 * gives the basis of each).
 */
const CMOS_32NM: z.input<typeof DigitalComponents> = {
  softmax: {
    energyPJPerElement: FITTED.softmaxEnergyPJPerScore.value,
    delayNsPerElement: FITTED.softmaxDelayNsPerScore.value,
    areaMm2: 0.02,
  },
  scoreBuffer: { energyPJPerBit: 0.05, areaUm2PerBit: FITTED.scoreBufferAreaUm2PerBit.value },
  layerNorm: { energyPJPerElement: 0.6, lanes: 64, cycleNs: 1, areaMm2: 0.08 },
  activation: { energyPJPerElement: 0.3, lanes: 64, cycleNs: 1, areaMm2: 0.02 },
  mac: { energyPJPerElement: 0.3, lanes: 256, cycleNs: 1, areaMm2: 0.1 },
  peAreaMm2: 0,
  tileAreaMm2: 0,
};

/** Constant-field scaling of a CMOS library to another node: energy ∝ L, area ∝ L². */
function scaleCmos(lib: z.input<typeof DigitalComponents>, fromNm: number, toNm: number) {
  const s = toNm / fromNm;
  const unit = (u: z.input<typeof Unit>) => ({
    ...u,
    energyPJPerElement: u.energyPJPerElement * s,
    areaMm2: u.areaMm2 * s * s,
  });
  return {
    softmax: {
      ...lib.softmax,
      energyPJPerElement: lib.softmax.energyPJPerElement * s,
      areaMm2: lib.softmax.areaMm2 * s * s,
    },
    scoreBuffer: {
      energyPJPerBit: lib.scoreBuffer.energyPJPerBit * s,
      areaUm2PerBit: lib.scoreBuffer.areaUm2PerBit * s * s,
    },
    layerNorm: unit(lib.layerNorm),
    activation: unit(lib.activation),
    mac: unit(lib.mac),
    peAreaMm2: (lib.peAreaMm2 ?? 0) * s * s,
    tileAreaMm2: (lib.tileAreaMm2 ?? 0) * s * s,
  };
}

/** TReX's 32-nm 64×64 periphery: 8-bit inputs, one bit per cycle, 6-bit flash ADC, 8 columns per ADC. */
const TREX_REFERENCE = {
  rows: 64,
  cols: 64,
  inputBits: 8,
  inputMode: 'bitSerial',
  inputBitsPerCycle: 1,
  adcBits: 6,
  colsPerAdc: 8,
} as const;

/** Split of TReX's per-crossbar totals (E_R,X, D_R,X, A_X) into parts; only the totals are the paper's. */
const trexCrossbar = (c: {
  readPJ: number;
  writePJ: number;
  readNs: number;
  writeNs: number;
  areaMm2: number;
  arrayDelayNs: number;
}): z.input<typeof CrossbarComponents> => {
  // ADC, DAC/drivers and shift-add are the same 32-nm periphery for every technology; the array
  // takes what is left of the paper's total
  const adcPJ = 12;
  const dacPJ = 3;
  const shiftAddPJ = 5;
  const adcMm2 = 0.015;
  const dacMm2 = 0.004;
  const shiftAddMm2 = 0.008;
  const cycles = TREX_REFERENCE.inputBits - 1;
  return {
    reference: TREX_REFERENCE,
    adcKind: 'flash',
    arrayEnergyPJ: c.readPJ - adcPJ - dacPJ - shiftAddPJ,
    dacEnergyPJ: dacPJ,
    adcEnergyPJ: adcPJ,
    shiftAddEnergyPJ: shiftAddPJ,
    arrayDelayNs: c.arrayDelayNs,
    adcDelayNs: (c.readNs / cycles - c.arrayDelayNs) / TREX_REFERENCE.colsPerAdc,
    writeEnergyPJ: c.writePJ,
    writeDelayNs: c.writeNs,
    arrayAreaMm2: c.areaMm2 - adcMm2 - dacMm2 - shiftAddMm2,
    dacAreaMm2: dacMm2,
    adcAreaMm2: adcMm2,
    shiftAddAreaMm2: shiftAddMm2,
  };
};

/** TReX's 64×64 FeFET crossbar (ClipFormer's RRAM has the same stated numbers). */
const FEFET_CROSSBAR = trexCrossbar({
  readPJ: 25,
  writePJ: 118,
  readNs: 20,
  writeNs: 3300,
  areaMm2: 0.03,
  arrayDelayNs: 0.5,
});

const TREX_ARCHITECTURE = { crossbarsPerPe: 8, pesPerTile: 8, colsPerAdc: 8, inputBitsPerCycle: 1 };

/** The library: one entry per technology of the hardware spec (`ideal` has none). */
export const COMPONENT_LIBRARY = {
  fefet: {
    source:
      'TReX, Moitra et al., TETC 2024 (arXiv 2408.12742), §V: 32 nm, 64×64 FeFET, E_R 25 pJ, E_W 118 pJ, ' +
      'D_R 0.02 µs, D_W 3.3 µs, A_X 0.03 mm²; 8 crossbars/PE, 8 PEs/tile; softmax and score-buffer constants FITTED to Table IV',
    nodeNm: 32,
    crossbar: FEFET_CROSSBAR,
    digital: CMOS_32NM,
    architecture: TREX_ARCHITECTURE,
  },
  sram: {
    source:
      'TReX (arXiv 2408.12742), §V: 32 nm, 64×64 1-bit SRAM, E_R 29 pJ, E_W 13 pJ, D_R = D_W = 0.018 µs, A_X 0.07 mm²',
    nodeNm: 32,
    crossbar: trexCrossbar({
      readPJ: 29,
      writePJ: 13,
      readNs: 18,
      writeNs: 18,
      areaMm2: 0.07,
      arrayDelayNs: 0.25,
    }),
    digital: CMOS_32NM,
    architecture: TREX_ARCHITECTURE,
  },
  rram: {
    source:
      'ClipFormer, Bhattacharjee et al., TCAD 2024 (arXiv 2402.02586), §IV-A: 32 nm, 64×64 RRAM, E_R 25 pJ, ' +
      'E_W 118 pJ, A_X 0.03 mm²; delays (not given) and CMOS units as TReX FeFET',
    nodeNm: 32,
    crossbar: FEFET_CROSSBAR, // ClipFormer's E_R, E_W and A_X equal TReX FeFET's
    digital: CMOS_32NM,
    architecture: TREX_ARCHITECTURE,
  },
  pcm: {
    source:
      'IBM 14-nm PCM core: Le Gallo et al., Nat. Electron. 2023 (256×256, 8-bit PWM in/out, 133 ns per MVM, ' +
      '9.76 TOPS/W at 2 ops/MAC → 13.4 nJ/MVM); Khaddam-Aljameh et al., JSSC 2022 (1.59 TOPS/mm² → 0.62 mm², ' +
      '300 ps/LSB CCO ADCs); write and CMOS units estimated (docs/cost-model.md §5)',
    nodeNm: 14,
    crossbar: {
      reference: {
        rows: 256,
        cols: 256,
        inputBits: 8,
        inputMode: 'pwm',
        inputBitsPerCycle: 1,
        adcBits: 8,
        colsPerAdc: 1,
      },
      adcKind: 'cco',
      arrayEnergyPJ: 3350,
      dacEnergyPJ: 2000,
      adcEnergyPJ: 5400,
      shiftAddEnergyPJ: 2650,
      arrayDelayNs: 56,
      adcDelayNs: 77,
      // program-and-verify, about 10 pulses of ~10 pJ per device, rows in turn at ~10 µs each
      writeEnergyPJ: 256 * 256 * 100,
      writeDelayNs: 256 * 10_000,
      arrayAreaMm2: 0.25,
      dacAreaMm2: 0.07,
      adcAreaMm2: 0.2,
      shiftAddAreaMm2: 0.1,
    },
    digital: scaleCmos(CMOS_32NM, 32, 14),
    architecture: { crossbarsPerPe: 1, pesPerTile: 1, colsPerAdc: 1, inputBitsPerCycle: 1 },
  },
} as const satisfies Record<string, TechnologyCostInput>;

export type CostTechnology = keyof typeof COMPONENT_LIBRARY;
export const COST_TECHNOLOGIES = Object.keys(COMPONENT_LIBRARY) as CostTechnology[];

/** The crossbar configuration a cost is computed for (what the spec and architecture say). */
export interface CrossbarConfig {
  rows: number;
  cols: number;
  inputBits: number;
  inputMode: 'pwm' | 'bitSerial';
  inputBitsPerCycle: number;
  adcBits: number;
  colsPerAdc: number;
}

/** Input cycles of one MVM: one per group of magnitude bits (bit-serial) or one (PWM). */
export const inputCycles = (c: Pick<CrossbarConfig, 'inputBits' | 'inputMode' | 'inputBitsPerCycle'>) =>
  c.inputMode === 'pwm' ? 1 : Math.max(1, Math.ceil((c.inputBits - 1) / c.inputBitsPerCycle));

/** Unit pulses an input occupies a row for: levels of a PWM pulse, or one per bit-serial cycle. */
const inputTime = (c: CrossbarConfig) =>
  c.inputMode === 'pwm' ? Math.max(1, 2 ** (c.inputBits - 1) - 1) : inputCycles(c);

/** Per-crossbar costs of one configuration, by part. */
export interface CrossbarCost {
  read: { arrayPJ: number; dacPJ: number; adcPJ: number; shiftAddPJ: number };
  /** D_R,X split into the array's input cycles and the ADC conversions. */
  readDelay: { arrayNs: number; adcNs: number };
  writePJ: number;
  writeNs: number;
  area: { arrayMm2: number; dacMm2: number; adcMm2: number; shiftAddMm2: number };
}

/**
 * Scales the reference numbers to `c`: array ∝ rows·cols·input time, DAC ∝ rows·input time,
 * ADC ∝ cols·conversions·law(bits), shift-add ∝ cols·cycles; delays per cycle; writes ∝ cells, rows.
 */
export function crossbarCost(x: CrossbarComponents, c: CrossbarConfig): CrossbarCost {
  const r = x.reference;
  const ref: CrossbarConfig = r;
  const cells = (c.rows * c.cols) / (r.rows * r.cols);
  const time = inputTime(c) / inputTime(ref);
  const cycles = inputCycles(c) / inputCycles(ref);
  const [eAdc, aAdc, dAdc] = ADC_LAWS[x.adcKind](c.adcBits);
  const [eAdc0, aAdc0, dAdc0] = ADC_LAWS[x.adcKind](r.adcBits);
  const adcs = Math.ceil(c.cols / c.colsPerAdc) / Math.ceil(r.cols / r.colsPerAdc);
  const arrayCycleNs = c.inputMode === 'pwm' ? x.arrayDelayNs * time : x.arrayDelayNs;
  const conversionsPerCycle = Math.min(c.colsPerAdc, c.cols);
  return {
    read: {
      arrayPJ: x.arrayEnergyPJ * cells * time,
      dacPJ: x.dacEnergyPJ * (c.rows / r.rows) * time,
      adcPJ: x.adcEnergyPJ * (c.cols / r.cols) * cycles * (eAdc / eAdc0),
      shiftAddPJ: x.shiftAddEnergyPJ * (c.cols / r.cols) * cycles,
    },
    readDelay: {
      arrayNs: inputCycles(c) * arrayCycleNs,
      adcNs: inputCycles(c) * conversionsPerCycle * x.adcDelayNs * (dAdc / dAdc0),
    },
    writePJ: x.writeEnergyPJ * cells,
    writeNs: x.writeDelayNs * (c.rows / r.rows),
    area: {
      arrayMm2: x.arrayAreaMm2 * cells,
      dacMm2: x.dacAreaMm2 * (c.rows / r.rows),
      adcMm2: x.adcAreaMm2 * adcs * (aAdc / aAdc0),
      shiftAddMm2: x.shiftAddAreaMm2 * (c.cols / r.cols),
    },
  };
}
