/**
 * What a model needs before its hardware instances are evaluated, as `xbar eval` and sweep points
 * both prepare it: the ranges learned in hardware-aware training (analog_ranges.safetensors),
 * then those calibrated after training (input ranges and column scales where the spec asks for
 * them, ADC ranges last, seeing the others and ClipFormer's K/V transform).
 */
import type { InstanceOptions } from '../analog/instances.js';
import { learnedRangesFor } from '../analog/learned-ranges.js';
import type { ResolvedSpec } from '../analog/resolve.js';
import type { EvalData } from '../eval/data.js';
import type { Model } from '../models/index.js';
import { InputError } from '../util/errors.js';
import { calibrateAdcRanges } from './adc-range.js';
import { type ClipFormerConfig, checkWindow, kvTransformFor } from './clipformer.js';
import { calibrateConductanceRanges, calibrateInputRanges } from './pto.js';

export async function prepareInstances(
  model: Model,
  modelDir: string,
  hw: ResolvedSpec,
  o: {
    /** Opens the calibration data (called only when a layer asks for calibrated ranges). */
    calibration: () => EvalData;
    clipformer?: ClipFormerConfig | undefined;
    /** Names the ClipFormer setting in errors (a flag or a field). */
    clipformerWhere?: string;
    note?: (line: string) => void;
  },
): Promise<InstanceOptions> {
  const note = o.note ?? (() => {});
  const learned = learnedRangesFor(modelDir, model, hw);
  const inputRanges = new Map([
    ...learned.inputRanges,
    ...(await calibrateInputRanges(model, o.calibration, hw, note)),
  ]);
  const columnScales = new Map([
    ...learned.columnScales,
    ...(await calibrateConductanceRanges(model, o.calibration, hw, inputRanges, note)),
  ]);
  const kvTransform = o.clipformer ? { kvTransform: kvTransformFor(o.clipformer) } : {};
  const adcRanges = await calibrateAdcRanges(
    model,
    o.calibration,
    hw,
    { inputRanges, columnScales, ...kvTransform },
    note,
  );
  if (o.clipformer) {
    const where = o.clipformerWhere ?? '--clipformer';
    if (!hw.attention)
      throw new InputError(`${where}: ${hw.spec.name} runs attention digitally; nothing to transform`);
    checkWindow(o.clipformer, hw.attention, where);
  }
  return { inputRanges, columnScales, adcRanges, ...kvTransform };
}
