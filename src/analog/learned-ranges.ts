/**
 * Ranges learned in hardware-aware training, beside the weights of a model folder: per static
 * layer, the DAC input range of each row tile and the conductance scale η of each (row tile,
 * column). They live in `analog_ranges.safetensors`, not in model.safetensors, so the checkpoint
 * stays a plain Hugging Face one; the metadata records the tiling they belong to, since a range
 * per tile means nothing for another tile size.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type HostArray, hostArray } from '../graph/ndarray.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import type { Model } from '../models/index.js';
import { layerKind } from '../models/layer-names.js';
import { InputError } from '../util/errors.js';
import { splitDim } from './program.js';
import type { ResolvedSpec } from './resolve.js';
import { type Crossbar, isPerfect } from './spec.js';

export const LEARNED_RANGES_FILE = 'analog_ranges.safetensors';

export interface LearnedRanges {
  /** Input range per row tile, by layer name. */
  inputRanges: Map<string, Float32Array>;
  /** η per (row tile, column), row-major [R, C], by layer name. */
  columnScales: Map<string, Float32Array>;
  /** The tiling they were learned for. */
  tile: Crossbar['tile'];
}

export const hasLearnedRanges = (dir: string): boolean => existsSync(join(dir, LEARNED_RANGES_FILE));

export function writeLearnedRanges(
  dir: string,
  r: LearnedRanges,
  outDims: ReadonlyMap<string, number>,
): void {
  const tensors: Record<string, HostArray> = {};
  for (const [name, v] of r.inputRanges)
    tensors[`${name}.input_range`] = hostArray('float32', [v.length], v.slice());
  for (const [name, v] of r.columnScales) {
    const c = outDims.get(name)!;
    tensors[`${name}.conductance_scale`] = hostArray('float32', [v.length / c, c], v.slice());
  }
  writeSafetensors(join(dir, LEARNED_RANGES_FILE), tensors, {
    tile: JSON.stringify(r.tile),
    format: 'xbar learned ranges v1',
  });
}

/** Reads a folder's learned ranges; throws, naming the file, when it is missing or malformed. */
export function readLearnedRanges(dir: string): LearnedRanges {
  const file = join(dir, LEARNED_RANGES_FILE);
  if (!existsSync(file)) {
    throw new InputError(
      file,
      "not found. Learned ranges (dac.range.kind or mapping.conductanceRange.kind 'learned') come from hardware-aware training: xbar train --hwa SPEC with a 'learned' range writes this file",
    );
  }
  const ck = readSafetensors(file);
  let tile: Crossbar['tile'];
  try {
    tile = JSON.parse(ck.metadata['tile'] ?? '') as Crossbar['tile'];
  } catch {
    throw new InputError(file, "metadata 'tile' is missing or not JSON; was it written by xbar train?");
  }
  const inputRanges = new Map<string, Float32Array>();
  const columnScales = new Map<string, Float32Array>();
  for (const [key, t] of ck.tensors) {
    const m = /^(.*)\.(input_range|conductance_scale)$/.exec(key);
    if (!m)
      throw new InputError(
        file,
        `unexpected tensor '${key}' (expected LAYER.input_range or LAYER.conductance_scale)`,
      );
    const data = Float32Array.from(t.toHost().data as Float32Array);
    (m[2] === 'input_range' ? inputRanges : columnScales).set(m[1]!, data);
  }
  return { inputRanges, columnScales, tile };
}

/**
 * Checks that learned ranges fit a layer as the spec tiles it: one input range per row tile,
 * one η per (row tile, column), for what its crossbar learns. Throws, naming the file, layer
 * and counts, when they do not.
 */
export function checkLearnedFit(
  dir: string,
  r: LearnedRanges,
  name: string,
  xbar: Crossbar,
  inDim: number,
  outDim: number,
): void {
  const want = learns(xbar);
  const file = join(dir, LEARNED_RANGES_FILE);
  const tiles = splitDim(inDim, xbar.tile.rows, xbar.tile.split).length;
  const hint = `it was learned for tiles of ${r.tile.rows}×${r.tile.cols} (${r.tile.split}); this spec has ${xbar.tile.rows}×${xbar.tile.cols} (${xbar.tile.split})`;
  for (const [wanted, v, what, field, per] of [
    [want.input, r.inputRanges.get(name), 'input ranges', 'dac.range', 1],
    [want.conductance, r.columnScales.get(name), 'conductance scales', 'mapping.conductanceRange', outDim],
  ] as const) {
    if (!wanted) continue;
    if (!v)
      throw new InputError(file, `no ${what} for layer '${name}' (trained without ${field}.kind 'learned'?)`);
    if (v.length !== tiles * per)
      throw new InputError(
        file,
        `'${name}' has ${v.length} ${what} for ${tiles} row tiles${per > 1 ? ` × ${per} columns` : ''}; ${hint}`,
      );
  }
}

/** What a crossbar learns in training: its input ranges, its conductance ranges. */
export const learns = (x: Crossbar) => ({
  input: x.dac.kind === 'uniform' && x.dac.range.kind === 'learned',
  conductance: x.mapping.conductanceRange.kind === 'learned',
});

/**
 * The learned ranges `hw` asks for (layers whose `dac.range` or `mapping.conductanceRange` is
 * 'learned'), read from the model folder `dir` and checked against the model's layers and the
 * spec's tiling. Empty maps when the spec learns nothing; the file is read only when it does.
 */
export function learnedRangesFor(
  dir: string,
  model: Model,
  hw: ResolvedSpec,
): { inputRanges: Map<string, Float32Array>; columnScales: Map<string, Float32Array> } {
  const inputRanges = new Map<string, Float32Array>();
  const columnScales = new Map<string, Float32Array>();
  let stored: LearnedRanges | null = null;
  for (const { name, weight } of model.linearLayers()) {
    if (!hw.spec.mapped[layerKind(name)]) continue;
    const xbar = hw.crossbar(name);
    if (isPerfect(xbar)) continue;
    const want = learns(xbar);
    if (!want.input && !want.conductance) continue;
    stored ??= readLearnedRanges(dir);
    const [inDim, outDim] = weight.shape as [number, number];
    checkLearnedFit(dir, stored, name, xbar, inDim, outDim);
    if (want.input) inputRanges.set(name, stored.inputRanges.get(name)!);
    if (want.conductance) columnScales.set(name, stored.columnScales.get(name)!);
  }
  return { inputRanges, columnScales };
}
