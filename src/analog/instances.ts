/** Programmed instances of a hardware spec, for Monte Carlo evaluation (eval/montecarlo.ts). */
import type { Instance } from '../eval/montecarlo.js';
import type { Model } from '../models/index.js';
import { AnalogModel } from './analog-model.js';
import type { ConductanceTransform } from './dynamic.js';
import type { ResolvedSpec } from './resolve.js';

export interface InstanceOptions {
  /** Per-tile input ranges of the static layers (calibrated or learned; see AnalogModel.inputRanges). */
  inputRanges?: ReadonlyMap<string, Float32Array>;
  /** Per-column conductance scales η of the static layers (calibrated or learned). */
  columnScales?: ReadonlyMap<string, Float32Array>;
  /** Per-(row tile, column) ADC ranges of the static layers (calibrated; see AnalogModel.adcRanges). */
  adcRanges?: ReadonlyMap<string, Float32Array>;
  /** The K/V conductance transform per attention product name (ClipFormer), if any. */
  kvTransform?: (name: string) => ConductanceTransform | undefined;
}

/**
 * Instance `seed` of `model` on `hw`: programmed, with its ranges, ready to evaluate. Each
 * instance is programmed into the cell arrays of the one before (a real-size model's cells are
 * gigabytes, which the garbage collector may not have freed yet), so an instance is valid until
 * the next is made: evaluate them one at a time, as `monteCarlo` does.
 */
export function analogInstances(model: Model, hw: ResolvedSpec, o: InstanceOptions = {}): Instance {
  let previous: AnalogModel | undefined;
  return async (seed) => {
    const analog = new AnalogModel(hw, seed, o.kvTransform);
    if (o.inputRanges) analog.setInputRanges(o.inputRanges);
    if (o.columnScales) analog.setColumnScales(o.columnScales);
    if (o.adcRanges) analog.setAdcRanges(o.adcRanges);
    const reuse = previous?.takeCells();
    previous = undefined;
    await analog.prepare(model, reuse);
    previous = analog;
    return analog.matmuls();
  };
}
