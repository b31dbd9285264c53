/**
 * Ranges an experiment's spec sets on data (`dac.range` or `adc.range` kind 'calibrated'),
 * calibrated for each spec as `xbar eval` calibrates them: the input ranges first, then the ADC
 * ranges through them, on the first examples of the training split, so that `xbar eval` with the
 * same spec reruns a cell's numbers.
 */
import { calibratedAdc } from '../analog/adc.js';
import type { ConductanceTransform } from '../analog/dynamic.js';
import type { ResolvedSpec } from '../analog/resolve.js';
import type { EvalData } from '../eval/data.js';
import { calibrateAdcRanges } from '../methods/adc-range.js';
import { calibrateInputRanges } from '../methods/pto.js';
import type { Model } from '../models/index.js';
import { InputError } from '../util/errors.js';

/** Whether `hw` sets a range on data: a calibrated DAC or ADC range, on the static crossbars or K/V's. */
export function calibratedOnData(hw: ResolvedSpec): boolean {
  return [hw.spec, hw.attention].some(
    (x) => !!x && ((x.dac.kind === 'uniform' && x.dac.range.kind === 'calibrated') || calibratedAdc(x)),
  );
}

/** The calibration data `hw` needs (null when it sets no range on data), refused where the run has none. */
export function calibrationFor(
  hw: ResolvedSpec,
  open: (() => EvalData) | undefined,
  where: string,
): (() => EvalData) | null {
  if (!calibratedOnData(hw)) return null;
  if (!open)
    throw new InputError(where, 'its calibrated ranges need calibration data, which this run was not given');
  return open;
}

/**
 * The input and ADC ranges `spec` sets on data, from `open` (null: none to set), the ADC's with
 * the K/V conductance `kvTransform` the instances will write (the values before the ADC are those
 * of the transformed K/V). `log` receives each calibration's line.
 */
export async function calibrateRanges(
  model: Model,
  open: (() => EvalData) | null,
  spec: ResolvedSpec,
  o: { kvTransform?: (name: string) => ConductanceTransform | undefined; log?: (line: string) => void } = {},
): Promise<{ inputRanges: Map<string, Float32Array>; adcRanges: Map<string, Float32Array> }> {
  if (!open) return { inputRanges: new Map(), adcRanges: new Map() };
  const inputRanges = await calibrateInputRanges(model, open, spec, o.log);
  const adcRanges = await calibrateAdcRanges(
    model,
    open,
    spec,
    { inputRanges, ...(o.kvTransform ? { kvTransform: o.kvTransform } : {}) },
    o.log,
  );
  return { inputRanges, adcRanges };
}
