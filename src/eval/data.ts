/**
 * Evaluation data: a data spec (`fashion-mnist:DIR`, `glue-sst2:PATH`, `imagefolder:DIR`, …)
 * opened for a model, so that any range of examples becomes that model's inputs
 * (images preprocessed as its preprocessor_config.json says, text tokenized with its tokenizer).
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { hostArray } from '../graph/ndarray.js';
import {
  findGlueFile,
  GLUE_TASKS,
  type GlueExample,
  type GlueTask,
  glueTask,
  type MetricName,
  readGlue,
} from '../io/glue.js';
import { loadMnistLike } from '../io/idx.js';
import { type Image, readImage, readImageFolder } from '../io/images.js';
import {
  grayToTensor,
  outputSize,
  type PreprocessorConfig,
  parsePreprocessorConfig,
  preprocess,
  readPreprocessorConfig,
} from '../io/preprocess.js';
import { loadTokenizer } from '../io/tokenizer.js';
import type { ModelInput, ModelInputs } from '../models/family.js';
import type { Model } from '../models/index.js';
import { InputError } from '../util/errors.js';

/** The data kinds each kind of model input reads. */
export const DATA_KINDS: Record<ModelInput['kind'], readonly string[]> = {
  image: ['fashion-mnist', 'mnist', 'imagefolder'],
  text: Object.keys(GLUE_TASKS).map((t) => `glue-${t.toLowerCase().replace('-', '')}`),
};
const ALL_KINDS = Object.values(DATA_KINDS).flat();

export type Split = 'train' | 'dev' | 'test';

export interface DataSpec {
  kind: string;
  path: string;
}

/** Parses `KIND:PATH`; the error lists the kinds. */
export function parseDataSpec(spec: string): DataSpec {
  const at = spec.indexOf(':');
  const kind = at > 0 ? spec.slice(0, at).toLowerCase() : '';
  if (!ALL_KINDS.includes(kind) || at === spec.length - 1) {
    throw new InputError(`--data '${spec}': expected KIND:PATH with KIND one of ${ALL_KINDS.join(', ')}`);
  }
  return { kind, path: spec.slice(at + 1) };
}

export interface EvalData {
  /** e.g. 'glue-sst2 dev (872)' */
  name: string;
  size: number;
  /** Metrics to report, the main one first. */
  metrics: readonly MetricName[];
  regression: boolean;
  /** Targets: class indices, or scores for regression. */
  targets: Float64Array;
  /** Inputs of examples [start, end) for the model the data was opened for. */
  inputs(start: number, end: number): ModelInputs;
  /** Inputs of the examples at `indices` (shuffled training batches). */
  inputsAt(indices: readonly number[]): ModelInputs;
}

export interface OpenOptions {
  split?: Split;
  limit?: number;
  /** Folder of the model (its tokenizer and preprocessor config); none for built-in models. */
  modelDir?: string;
  /** Token limit for text (default 128). */
  maxLength?: number;
}

export function openData(spec: DataSpec, model: Model, opts: OpenOptions = {}): EvalData {
  const c = model.config;
  const input = model.input();
  if (!DATA_KINDS[input.kind].includes(spec.kind)) {
    const kinds = DATA_KINDS[input.kind].join(', ');
    throw new InputError(`--data ${spec.kind}: the ${c.modelType} model reads ${input.kind} data (${kinds})`);
  }
  const data =
    input.kind === 'image' ? openImages(spec, input, opts) : openGlue(spec, input, c.labels.length, opts);
  if (!data.regression) {
    const classes = c.labels.length;
    const bad = data.targets.findIndex((t) => t >= classes);
    if (bad >= 0) {
      throw new InputError(
        `${data.name}: example ${bad} has label ${data.targets[bad]}, outside the model's ${classes} classes (${c.labels.join(', ')})`,
      );
    }
  }
  return data;
}

const limited = (n: number, limit?: number) => (limit === undefined ? n : Math.min(n, limit));

type ImageInput = Extract<ModelInput, { kind: 'image' }>;

function preprocessorFor(c: ImageInput, modelDir?: string): { pp: PreprocessorConfig; source: string } {
  const file = modelDir ? join(modelDir, 'preprocessor_config.json') : '';
  if (file && existsSync(file)) return { pp: readPreprocessorConfig(file, c.channels), source: file };
  // no processor config: resize to the model's input, ViTImageProcessor's normalisation
  const size = { height: c.size, width: c.size };
  const source = '(default image processor)';
  return { pp: parsePreprocessorConfig({ size, crop_size: size }, source), source };
}

function openImages(spec: DataSpec, c: ImageInput, opts: OpenOptions): EvalData {
  const { pp, source } = preprocessorFor(c, opts.modelDir);
  const hw = c.size;
  const pixels = (batch: Float32Array[]) => {
    const out = new Float32Array(batch.length * c.channels * hw * hw);
    for (const [i, x] of batch.entries()) out.set(x, i * x.length);
    return { pixel_values: hostArray('float32', [batch.length, c.channels, hw, hw], out) };
  };
  const rgbToModel = (img: Image, what: string): Float32Array => {
    const size = outputSize(pp, img.width, img.height);
    if (size.width !== hw || size.height !== hw) {
      throw new InputError(
        `${what}: ${source} makes this ${img.width}×${img.height} image ${size.width}×${size.height} pixels (size, crop_size), the model takes ${hw}×${hw} (image_size in its config.json)`,
      );
    }
    const x = preprocess(img, pp);
    if (c.channels === 3) return x;
    if (c.channels !== 1)
      throw new InputError(`${what}: models with ${c.channels} channels are not supported`);
    // luminance of the normalised channels (ITU-R 601, as PIL's convert('L'))
    const gray = new Float32Array(hw * hw);
    for (let p = 0; p < gray.length; p++)
      gray[p] = 0.299 * x[p]! + 0.587 * x[hw * hw + p]! + 0.114 * x[2 * hw * hw + p]!;
    return gray;
  };

  if (spec.kind === 'imagefolder') {
    const folder = readImageFolder(spec.path);
    const items = folder.items.slice(0, limited(folder.items.length, opts.limit));
    return {
      name: `imagefolder ${spec.path} (${items.length})`,
      size: items.length,
      metrics: ['accuracy'],
      regression: false,
      targets: Float64Array.from(items, (it) => it.label),
      inputs: (s, e) => pixels(items.slice(s, e).map((it) => rgbToModel(readImage(it.path), it.path))),
      inputsAt: (idx) => pixels(idx.map((i) => rgbToModel(readImage(items[i]!.path), items[i]!.path))),
    };
  }
  const split = opts.split === 'train' ? 'train' : 'test';
  const set = loadMnistLike(spec.path, split);
  const n = limited(set.count, opts.limit);
  const plane = set.rows * set.cols;
  const direct = c.channels === 1 && set.rows === hw && set.cols === hw;
  const example = (i: number): Float32Array => {
    const u8 = set.images.subarray(i * plane, (i + 1) * plane);
    if (direct) return grayToTensor(u8, hw, hw, pp.image_mean[0]!, pp.image_std[0]!);
    const rgb = new Uint8Array(3 * plane);
    for (let p = 0; p < plane; p++) rgb.fill(u8[p]!, 3 * p, 3 * p + 3);
    return rgbToModel({ width: set.cols, height: set.rows, channels: 3, data: rgb }, set.imagesPath);
  };
  return {
    name: `${spec.kind} ${split} (${n})`,
    size: n,
    metrics: ['accuracy'],
    regression: false,
    targets: Float64Array.from(set.labels.subarray(0, n)),
    inputs: (s, e) => pixels(Array.from({ length: e - s }, (_, k) => example(s + k))),
    inputsAt: (idx) => pixels(idx.map(example)),
  };
}

function openGlue(
  spec: DataSpec,
  c: Extract<ModelInput, { kind: 'text' }>,
  classes: number,
  opts: OpenOptions,
): EvalData {
  const task: GlueTask = glueTask(spec.kind.slice('glue-'.length));
  const info = GLUE_TASKS[task];
  const split = opts.split ?? 'dev';
  const file = statSync(spec.path, { throwIfNoEntry: false })?.isFile()
    ? spec.path
    : findGlueFile(spec.path, task, split);
  const all = readGlue(task, file);
  const rows: GlueExample[] = all.slice(0, limited(all.length, opts.limit));
  const unlabelled = rows.findIndex((r) => r.label === null);
  if (unlabelled >= 0)
    throw new InputError(
      `${file}: row ${unlabelled + 1} has no label (test splits are unlabelled; use --split dev)`,
    );
  const regression = info.numLabels === 1;
  if (regression !== c.regression || (!regression && info.numLabels !== classes)) {
    throw new InputError(
      `${task} has ${regression ? 'a regression score' : `${info.numLabels} classes`}, the model predicts ${c.regression ? 'a score' : `${classes} classes`}`,
    );
  }
  if (!opts.modelDir) throw new InputError('text evaluation needs the model folder (for its tokenizer)');
  const tokenizer = loadTokenizer(opts.modelDir);
  const maxLength = Math.min(opts.maxLength ?? 128, c.maxTokens);
  return {
    name: `glue-${task.toLowerCase()} ${split} (${rows.length})`,
    size: rows.length,
    metrics: info.metrics,
    regression,
    targets: Float64Array.from(rows, (r) => r.label!),
    inputs: (s, e) => encode(rows.slice(s, e)),
    inputsAt: (idx) => encode(idx.map((i) => rows[i]!)),
  };

  function encode(batch: readonly GlueExample[]): ModelInputs {
    const texts = batch.map((r) => (r.textB === undefined ? r.textA : ([r.textA, r.textB] as const)));
    const longest = tokenizer.encodeBatch(texts, { maxLength }).shape[1];
    // pad to a multiple of 16 so a whole data set needs few compiled shapes
    const padTo = Math.min(maxLength, Math.ceil(longest / 16) * 16);
    const enc = tokenizer.encodeBatch(texts, { maxLength, padTo });
    const shape = enc.shape;
    return {
      input_ids: hostArray('int32', shape, enc.inputIds),
      attention_mask: hostArray('int32', shape, enc.attentionMask),
      token_type_ids: hostArray('int32', shape, enc.tokenTypeIds),
    };
  }
}

/** The examples at `indices` of `data` as data of their own, named `name (count)`. */
export function subset(data: EvalData, indices: readonly number[], name: string): EvalData {
  const idx = [...indices];
  return {
    name: `${name} (${idx.length})`,
    size: idx.length,
    metrics: data.metrics,
    regression: data.regression,
    targets: Float64Array.from(idx, (i) => data.targets[i]!),
    inputs: (s, e) => data.inputsAt(idx.slice(s, e)),
    inputsAt: (ii) => data.inputsAt(ii.map((i) => idx[i]!)),
  };
}

/** Examples [start, end) of `data` as data of their own (a training fraction, a held-out slice). */
export function sliceData(data: EvalData, start: number, end: number): EvalData {
  const s = Math.max(0, Math.min(start, data.size));
  const e = Math.max(s, Math.min(end, data.size));
  const range = Array.from({ length: e - s }, (_, i) => s + i);
  return { ...subset(data, range, data.name), name: `${data.name} [${s}, ${e})` };
}

/**
 * Splits one labelled set into a held-out calibration part (the last `n` examples) and an
 * evaluation part (the rest): the two never share an example.
 */
export function holdOut(data: EvalData, n: number): { calibration: number[]; evaluation: number[] } {
  if (!(n >= 1 && n < data.size))
    throw new InputError(`calibration size ${n}: use 1..${data.size - 1} for ${data.name}`);
  const cut = data.size - n;
  return {
    calibration: Array.from({ length: n }, (_, i) => cut + i),
    evaluation: Array.from({ length: cut }, (_, i) => i),
  };
}
