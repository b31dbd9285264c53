/**
 * From the hardware spec to what the cost model counts: crossbars per layer (bit slices
 * included), the crossbar configuration of each layer, and the cost-only architecture.
 * Fields the spec has (tile rows/cols, cells, DAC, ADC, technology) are read from it.
 */
import { mergeSpec, type ResolvedSpec } from '../analog/resolve.js';
import type { Crossbar, HardwareSpec } from '../analog/spec.js';
import { InputError } from '../util/errors.js';
import { parseWith } from '../util/validate.js';
import {
  Architecture,
  type ArchitectureInput,
  COMPONENT_LIBRARY,
  COST_TECHNOLOGIES,
  type CostTechnology,
  type CrossbarConfig,
  type TechnologyCost,
  type TechnologyCostInput,
  TechnologyCost as TechnologyCostSchema,
} from './components.js';

/** N_X,L = ⌈in/rows⌉·⌈out/cols⌉ crossbars per bit slice, times the slices. */
export function crossbarCount(inp: number, out: number, rows: number, cols: number, slices = 1): number {
  for (const [k, v] of Object.entries({ in: inp, out, rows, cols, slices })) {
    if (!Number.isInteger(v) || v < 1)
      throw new RangeError(`crossbarCount: ${k} = ${v}, expected a whole number ≥ 1`);
  }
  return Math.ceil(inp / rows) * Math.ceil(out / cols) * slices;
}

/** Throws unless 0 < β ≤ 1. */
export function checkBeta(beta: number): void {
  if (!(beta > 0 && beta <= 1))
    throw new InputError('beta', [`${beta} is not allowed, use a number in (0, 1]`]);
}

/**
 * Bit slices of K and V. ClipFormer's Stage II clips conductances at β·G_MAX, so K and V need
 * ⌊log2(1/β)⌋ fewer bits (β = 0.25: 8-bit → 6-bit, one 2-bit slice fewer).
 */
export function kvSlices(cells: Crossbar['cells'], beta = 1): number {
  checkBeta(beta);
  if (cells.kind === 'analog') return 1;
  const saved = Math.floor(Math.log2(1 / beta) + 1e-9);
  return Math.ceil(Math.max(1, cells.weightBits - saved) / cells.bitsPerCell);
}

/** User overrides of library entries, per technology (deep-merged, then validated). */
export type LibraryOverrides = Partial<Record<CostTechnology, Record<string, unknown>>>;

/**
 * Why `hw` has no cost, or null where it has one: a technology without cost numbers (the `ideal`
 * preset's, say) on its crossbars. Accuracy is still measured on such a spec; its cost is not.
 */
export function noCostReason(hw: ResolvedSpec): string | null {
  const layers = hw.layers ?? [];
  const techs = new Set([hw.spec.technology, ...layers.map((l) => hw.crossbar(l).technology)]);
  if (hw.attention) techs.add(hw.attention.technology);
  const missing = [...techs].filter((t) => !(COST_TECHNOLOGIES as readonly string[]).includes(t));
  return missing.length
    ? `technology ${missing.map((t) => `'${t}'`).join(', ')} has no cost numbers (${COST_TECHNOLOGIES.join(', ')} have)`
    : null;
}

/** The validated library entry of a technology, with a user's overrides. */
export function libraryEntry(tech: string, overrides: LibraryOverrides = {}): TechnologyCost {
  if (!(COST_TECHNOLOGIES as readonly string[]).includes(tech)) {
    throw new InputError('technology', [
      `'${tech}' has no cost numbers; use a spec whose technology is one of ${COST_TECHNOLOGIES.join(', ')} ` +
        `(e.g. --hw fefet-trex, or --set technology=fefet)`,
    ]);
  }
  const t = tech as CostTechnology;
  const base = COMPONENT_LIBRARY[t] as TechnologyCostInput as Record<string, unknown>;
  const over = overrides[t];
  return parseWith(TechnologyCostSchema, over ? mergeSpec(base, over) : base, `cost library: ${t}`);
}

/** The architecture: defaults, then the technology's, then the caller's. */
export function architectureFor(tech: TechnologyCost, overrides: ArchitectureInput = {}): Architecture {
  return parseWith(Architecture, { ...tech.architecture, ...overrides }, 'cost architecture');
}

/** A crossbar of the spec as the cost model sees it. */
export interface MappedCrossbar {
  config: CrossbarConfig;
  tech: TechnologyCost;
  technology: CostTechnology;
}

/**
 * The crossbar configuration of a spec crossbar: tile, DAC and ADC from the spec, sharing and
 * input splitting from the architecture. An ideal DAC/ADC is costed at the reference resolution
 * (noted in `notes`).
 */
export function mapCrossbar(
  x: Crossbar,
  arch: Architecture,
  overrides: LibraryOverrides,
  notes: Set<string>,
): MappedCrossbar {
  const tech = libraryEntry(x.technology, overrides);
  const r = tech.crossbar.reference;
  if (x.dac.kind === 'ideal')
    notes.add(`ideal DAC costed as the ${x.technology} reference: ${r.inputBits}-bit ${r.inputMode}`);
  if (x.adc.kind === 'ideal')
    notes.add(`ideal ADC costed as the ${x.technology} reference: ${r.adcBits} bits`);
  if (arch.colsPerAdc > x.tile.cols) {
    throw new InputError('cost architecture', [
      `colsPerAdc: ${arch.colsPerAdc} is not allowed, a crossbar has only ${x.tile.cols} columns to share an ADC`,
    ]);
  }
  return {
    technology: x.technology as CostTechnology,
    tech,
    config: {
      rows: x.tile.rows,
      cols: x.tile.cols,
      inputBits: x.dac.kind === 'ideal' ? r.inputBits : x.dac.bits,
      inputMode: x.dac.kind === 'ideal' ? r.inputMode : x.dac.mode,
      inputBitsPerCycle: arch.inputBitsPerCycle,
      adcBits: x.adc.kind === 'ideal' ? r.adcBits : x.adc.bits,
      colsPerAdc: arch.colsPerAdc,
    },
  };
}

/** The static layer kinds of the spec's `mapped` switches. */
export type MappedKind = keyof HardwareSpec['mapped'];
