/**
 * Image → model input the way Hugging Face's (PIL-based) ViT/DeiT image processors do it:
 * resize with PIL's resampling, center crop, rescale, normalize, CHW float32. Resizing ports
 * Pillow's Resample.c step by step (22-bit fixed-point taps, uint8 after each pass) so pixel
 * values match what a model was evaluated with in Python.
 */
import { z } from 'zod';
import { InputError } from '../util/errors.js';
import { readJson } from '../util/files.js';
import { parseWith } from '../util/validate.js';
import type { Image } from './images.js';

/** PIL resampling codes: NEAREST, LANCZOS, BILINEAR, BICUBIC, BOX, HAMMING. */
export const RESAMPLE = { nearest: 0, lanczos: 1, bilinear: 2, bicubic: 3, box: 4, hamming: 5 } as const;
export type Resample = (typeof RESAMPLE)[keyof typeof RESAMPLE];

interface Filter {
  support: number;
  at: (x: number) => number;
}

const sinc = (x: number): number => (x === 0 ? 1 : Math.sin(x * Math.PI) / (x * Math.PI));

/** Pillow's filters, with its supports and edge conventions. */
const FILTERS: Record<Exclude<Resample, 0>, Filter> = {
  1: { support: 3, at: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
  2: { support: 1, at: (x) => Math.max(0, 1 - Math.abs(x)) },
  3: {
    support: 2,
    at: (x) => {
      const a = -0.5; // Keys' cubic as PIL has it (not -0.75 like OpenCV)
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
  4: { support: 0.5, at: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  5: {
    support: 1,
    at: (x) => {
      const t = Math.abs(x);
      if (t === 0) return 1;
      if (t >= 1) return 0;
      // Pillow writes these constants as C floats
      return (
        (Math.sin(t * Math.PI) / (t * Math.PI)) *
        (Math.fround(0.54) + Math.fround(0.46) * Math.cos(t * Math.PI))
      );
    },
  },
};

/** Fractional bits of Pillow's fixed-point taps for 8-bit images. */
const PRECISION_BITS = 22;
const ONE = 2 ** PRECISION_BITS;

/** Per output index: first source index, tap count, and `ksize` fixed-point weights. */
interface Taps {
  ksize: number;
  first: Int32Array;
  count: Int32Array;
  weights: Int32Array;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc: the filter widened by the downscale factor. */
function taps(inSize: number, outSize: number, filter: Filter): Taps {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1); // widening the filter when shrinking is the antialiasing
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const ss = 1 / filterscale;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const n = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let sum = 0;
    for (let x = 0; x < n; x++) {
      w[x] = filter.at((x + xmin - center + 0.5) * ss);
      sum += w[x]!;
    }
    for (let x = 0; x < n; x++) {
      const k = sum === 0 ? w[x]! : w[x]! / sum;
      weights[xx * ksize + x] = Math.trunc(k < 0 ? -0.5 + k * ONE : 0.5 + k * ONE);
    }
    first[xx] = xmin;
    count[xx] = n;
  }
  return { ksize, first, count, weights };
}

/** Pillow's clip8: drop the fraction bits (floor), clamp to 0..255. */
const clip8 = (acc: number): number => Math.min(255, Math.max(0, Math.floor(acc / ONE)));

/** Horizontal pass (Pillow's ImagingResampleHorizontal_8bpc): each row to `t.first.length` pixels. */
function resampleRows(src: Uint8Array, width: number, height: number, c: number, t: Taps): Uint8Array {
  const ow = t.first.length;
  const out = new Uint8Array(ow * height * c);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < ow; x++) {
      const base = (y * width + t.first[x]!) * c;
      const k0 = x * t.ksize;
      for (let ch = 0; ch < c; ch++) {
        let acc = ONE / 2; // so that clip8's floor rounds to nearest
        for (let i = 0; i < t.count[x]!; i++) acc += src[base + i * c + ch]! * t.weights[k0 + i]!;
        out[(y * ow + x) * c + ch] = clip8(acc);
      }
    }
  }
  return out;
}

/** Vertical pass (Pillow's ImagingResampleVertical_8bpc): each column to `t.first.length` pixels. */
function resampleColumns(src: Uint8Array, width: number, c: number, t: Taps): Uint8Array {
  const oh = t.first.length;
  const row = width * c;
  const out = new Uint8Array(oh * row);
  for (let y = 0; y < oh; y++) {
    const base = t.first[y]! * row;
    const k0 = y * t.ksize;
    for (let j = 0; j < row; j++) {
      let acc = ONE / 2;
      for (let i = 0; i < t.count[y]!; i++) acc += src[base + i * row + j]! * t.weights[k0 + i]!;
      out[y * row + j] = clip8(acc);
    }
  }
  return out;
}

/** Source index of each output index for PIL's NEAREST (its ImagingScaleAffine, -1 = outside). */
function nearestIndex(inSize: number, outSize: number): Int32Array {
  const a = inSize / outSize;
  const idx = new Int32Array(outSize);
  let o = a * 0.5;
  for (let x = 0; x < outSize; x++) {
    const i = o < 0 ? -1 : Math.trunc(o);
    idx[x] = i < inSize ? i : -1;
    o += a; // accumulated like Pillow, not multiplied, so rounding matches
  }
  return idx;
}

/** PIL's NEAREST: one source pixel per output pixel, zeros where none maps. */
function resizeNearest(src: Uint8Array, w: number, h: number, c: number, ow: number, oh: number): Uint8Array {
  const xs = nearestIndex(w, ow);
  const ys = nearestIndex(h, oh);
  const out = new Uint8Array(ow * oh * c);
  for (let y = 0; y < oh; y++) {
    if (ys[y]! < 0) continue;
    for (let x = 0; x < ow; x++) {
      if (xs[x]! < 0) continue;
      for (let k = 0; k < c; k++) out[(y * ow + x) * c + k] = src[(ys[y]! * w + xs[x]!) * c + k]!;
    }
  }
  return out;
}

/**
 * Resizes interleaved 8-bit pixels (`channels` per pixel) like PIL's `Image.resize(size, resample)`:
 * rows first, then columns, each rounded to uint8.
 */
export function resizePixels(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
  resample: Resample,
): Uint8Array {
  if (src.length !== width * height * channels) {
    throw new RangeError(
      `resize: ${src.length} bytes for a ${width}×${height}×${channels} image, expected ${width * height * channels}`,
    );
  }
  for (const [name, v] of [
    ['width', outWidth],
    ['height', outHeight],
  ] as const) {
    if (!Number.isInteger(v) || v < 1)
      throw new RangeError(`resize: output ${name} ${v}, expected a positive integer`);
  }
  if (resample === 0) return resizeNearest(src, width, height, channels, outWidth, outHeight);
  const filter = FILTERS[resample];
  if (!filter)
    throw new RangeError(
      `resize: resample ${resample}, expected one of ${Object.values(RESAMPLE).join(', ')}`,
    );
  let data = src;
  // a pass runs only where the size changes, as in Pillow (an unchanged axis is not filtered)
  if (outWidth !== width) data = resampleRows(data, width, height, channels, taps(width, outWidth, filter));
  if (outHeight !== height) data = resampleColumns(data, outWidth, channels, taps(height, outHeight, filter));
  return data === src ? src.slice() : data;
}

/**
 * Crops the centre `outWidth`×`outHeight` like transformers' `center_crop`: offset
 * floor((size − crop) / 2), zero padding where the image is smaller than the crop.
 */
export function centerCropPixels(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
): Uint8Array {
  const top = Math.floor((height - outHeight) / 2);
  const left = Math.floor((width - outWidth) / 2);
  const out = new Uint8Array(outWidth * outHeight * channels);
  for (let y = 0; y < outHeight; y++) {
    const sy = top + y;
    if (sy < 0 || sy >= height) continue;
    const x0 = Math.max(0, -left);
    const x1 = Math.min(outWidth, width - left);
    if (x1 <= x0) continue;
    out.set(
      src.subarray((sy * width + left + x0) * channels, (sy * width + left + x1) * channels),
      (y * outWidth + x0) * channels,
    );
  }
  return out;
}

const dim = z.number().int().positive();
const square = (n: number) => ({ height: n, width: n });
const HeightWidth = z.strictObject({ height: dim, width: dim });
const pair = z.tuple([dim, dim]).transform(([height, width]) => ({ height, width }));
const sizeHelp = 'expected a positive integer (square), [height, width], {height, width} or {shortest_edge}';
const Size = z.union([dim.transform(square), pair, HeightWidth, z.strictObject({ shortest_edge: dim })], {
  error: sizeHelp,
});
const CropSize = z.union([dim.transform(square), pair, HeightWidth], {
  error: 'expected a positive integer (square), [height, width] or {height, width}',
});
/** One number for every channel, or one per channel (checked against the model's channels). */
const perChannel = (x: z.ZodNumber) =>
  z.union([x, z.array(x).min(1)], { error: 'expected a number or a list of one number per channel' });

/**
 * The fields of a `preprocessor_config.json` that change pixel values; defaults are
 * ViTImageProcessor's (other keys are ignored). Integer sizes mean squares, as for ViT/DeiT.
 */
const PreprocessorSchema = z.object({
  do_resize: z.boolean().default(true),
  size: Size.default({ height: 224, width: 224 }),
  resample: z.literal([0, 1, 2, 3, 4, 5]).default(RESAMPLE.bilinear),
  do_center_crop: z.boolean().default(false),
  crop_size: CropSize.default({ height: 224, width: 224 }),
  do_rescale: z.boolean().default(true),
  rescale_factor: z
    .number()
    .positive()
    .default(1 / 255),
  do_normalize: z.boolean().default(true),
  image_mean: perChannel(z.number()).default(0.5),
  image_std: perChannel(z.number().positive()).default(0.5),
});
type RGB = [number, number, number];
/** The processor's settings, normalisation per R, G, B (images are read as RGB). */
export type PreprocessorConfig = Omit<z.output<typeof PreprocessorSchema>, 'image_mean' | 'image_std'> & {
  image_mean: RGB;
  image_std: RGB;
};

/** DeiTImageProcessor's defaults where they differ from ViT's (ImageNet mean/std, 256 → crop 224). */
const DEIT_DEFAULTS = {
  size: 256,
  resample: RESAMPLE.bicubic,
  do_center_crop: true,
  crop_size: 224,
  image_mean: [0.485, 0.456, 0.406],
  image_std: [0.229, 0.224, 0.225],
};

/**
 * Validates a parsed `preprocessor_config.json` for a model of `channels` channels (its
 * config.json's num_channels), filling the defaults of its processor class. As in transformers,
 * `image_mean` and `image_std` are one number or a list of `channels` numbers.
 */
export function parsePreprocessorConfig(json: unknown, file: string, channels = 3): PreprocessorConfig {
  const j = json !== null && typeof json === 'object' ? (json as Record<string, unknown>) : {};
  const type = String(j.image_processor_type ?? j.feature_extractor_type ?? '');
  const defaults = type.startsWith('DeiT') ? DEIT_DEFAULTS : {};
  const cfg = parseWith(PreprocessorSchema, json === j ? { ...defaults, ...j } : json, file);
  const rgb = (field: 'image_mean' | 'image_std'): RGB => {
    const v = cfg[field];
    if (typeof v === 'number') return [v, v, v];
    if (v.length !== channels)
      throw new InputError(file, [
        `${field}: ${v.length} value${v.length === 1 ? '' : 's'} for a model of ${channels} channel${channels === 1 ? '' : 's'} (num_channels in its config.json); use one number or a list of ${channels}`,
      ]);
    return v.length === 1 ? [v[0]!, v[0]!, v[0]!] : [v[0]!, v[1]!, v[2]!];
  };
  return { ...cfg, image_mean: rgb('image_mean'), image_std: rgb('image_std') };
}

/** Reads and validates a `preprocessor_config.json` file (for a model of `channels` channels). */
export function readPreprocessorConfig(path: string, channels = 3): PreprocessorConfig {
  return parsePreprocessorConfig(readJson(path), path, channels);
}

/** Size after the resize step (transformers' get_resize_output_image_size for shortest_edge). */
function resizedSize(
  size: PreprocessorConfig['size'],
  width: number,
  height: number,
): { width: number; height: number } {
  if (!('shortest_edge' in size)) return size;
  const s = size.shortest_edge;
  const [short, long] = width <= height ? [width, height] : [height, width];
  const newLong = Math.trunc((s * long) / short); // Python's int(s * long / short)
  return width <= height ? { width: s, height: newLong } : { width: newLong, height: s };
}

/** Height and width of `preprocess`'s output for an image of the given size. */
export function outputSize(
  cfg: PreprocessorConfig,
  width: number,
  height: number,
): { width: number; height: number } {
  if (cfg.do_center_crop) return cfg.crop_size;
  return cfg.do_resize ? resizedSize(cfg.size, width, height) : { width, height };
}

/**
 * uint8 → model value of one channel as a lookup table: rescale in float64 then float32,
 * normalize in float32 (transformers' `rescale` and `normalize`).
 */
function valueTable(
  doRescale: boolean,
  factor: number,
  doNormalize: boolean,
  mean: number,
  std: number,
): Float32Array {
  const lut = new Float32Array(256);
  const m = Math.fround(mean);
  const s = Math.fround(std);
  for (let v = 0; v < 256; v++) {
    let x = doRescale ? Math.fround(v * factor) : v;
    if (doNormalize) x = Math.fround(Math.fround(x - m) / s);
    lut[v] = x;
  }
  return lut;
}

/** Resize, center crop, rescale and normalize an RGB image; returns CHW float32 (see `outputSize`). */
export function preprocess(image: Image, cfg: PreprocessorConfig): Float32Array {
  let { width, height, data } = image;
  if (data.length !== width * height * 3) {
    throw new RangeError(
      `preprocess: ${data.length} bytes for a ${width}×${height} RGB image, expected ${width * height * 3}`,
    );
  }
  if (cfg.do_resize) {
    const to = resizedSize(cfg.size, width, height);
    data = resizePixels(data, width, height, 3, to.width, to.height, cfg.resample);
    ({ width, height } = to);
  }
  if (cfg.do_center_crop) {
    const to = cfg.crop_size;
    data = centerCropPixels(data, width, height, 3, to.width, to.height);
    ({ width, height } = to);
  }
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const lut = valueTable(
      cfg.do_rescale,
      cfg.rescale_factor,
      cfg.do_normalize,
      cfg.image_mean[c]!,
      cfg.image_std[c]!,
    );
    for (let p = 0; p < plane; p++) out[c * plane + p] = lut[data[p * 3 + c]!]!;
  }
  return out;
}

/**
 * A 1-channel uint8 image (Fashion-MNIST) → [1, h, w] float32, like torchvision's
 * `ToTensor()` + `Normalize(mean, std)`: v/255 and the normalisation in float32.
 */
export function grayToTensor(u8: Uint8Array, h: number, w: number, mean: number, std: number): Float32Array {
  if (u8.length !== h * w)
    throw new RangeError(`grayToTensor: ${u8.length} bytes, a ${h}×${w} image needs ${h * w}`);
  if (!(std > 0)) throw new RangeError(`grayToTensor: std ${std}, expected a positive number`);
  const lut = new Float32Array(256);
  for (let v = 0; v < 256; v++)
    lut[v] = Math.fround(Math.fround(Math.fround(v / 255) - Math.fround(mean)) / Math.fround(std));
  return Float32Array.from(u8, (v) => lut[v]!);
}
