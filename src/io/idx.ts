/**
 * IDX files, the format of MNIST and Fashion-MNIST: a big-endian header (magic 0x000008NN for
 * unsigned bytes in NN dimensions, then NN sizes) followed by the bytes. Gzipped or raw.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { InputError } from '../util/errors.js';
import { readBytes } from '../util/files.js';

/** An unsigned-byte tensor read from an IDX file. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Magic of an image file: unsigned bytes, 3 dims [n, rows, cols]. */
export const IDX_IMAGES = 0x00000803;
/** Magic of a label file: unsigned bytes, 1 dim [n]. */
export const IDX_LABELS = 0x00000801;
const UBYTE = 0x08;

const hex = (m: number): string => `0x${m.toString(16).padStart(8, '0')}`;

/** The file's bytes, gunzipped when they start with the gzip signature. */
function readMaybeGzipped(path: string): Uint8Array {
  const raw = readBytes(path);
  // sniff the content rather than trust the extension: raw IDX starts with 00 00, gzip with 1f 8b
  if (raw[0] !== 0x1f || raw[1] !== 0x8b) return raw;
  try {
    return gunzipSync(raw);
  } catch (e) {
    throw new InputError(path, `truncated or corrupt gzip data (${(e as Error).message})`);
  }
}

/** Reads an unsigned-byte IDX file; `expectMagic` (IDX_IMAGES, IDX_LABELS) pins its rank. */
export function readIdx(path: string, expectMagic?: number): IdxArray {
  const bytes = readMaybeGzipped(path);
  if (bytes.length < 4)
    throw new InputError(path, `truncated: ${bytes.length} bytes, the IDX magic alone needs 4`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const rank = magic & 0xff;
  const wanted = expectMagic === undefined ? '0x000008NN (unsigned bytes in NN ≥ 1 dims)' : hex(expectMagic);
  if (magic >>> 8 !== UBYTE || rank === 0 || (expectMagic !== undefined && magic !== expectMagic)) {
    throw new InputError(path, `magic ${hex(magic)}, expected ${wanted}`);
  }
  const header = 4 + 4 * rank;
  if (bytes.length < header) {
    throw new InputError(path, `truncated: ${bytes.length} bytes, a header of ${rank} dims needs ${header}`);
  }
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const n = dims.reduce((a, b) => a * b, 1);
  const have = bytes.length - header;
  if (have !== n) {
    const what = have < n ? 'truncated' : 'trailing bytes';
    throw new InputError(
      path,
      `${what}: dims [${dims.join(', ')}] need ${n} data bytes after the header, found ${have}`,
    );
  }
  return { dims, data: bytes.subarray(header, header + n) };
}

/** Images and labels of one split of an MNIST-like data set. */
export interface ImageSet {
  count: number;
  rows: number;
  cols: number;
  /** [count, rows, cols] row-major, 0 = background. */
  images: Uint8Array;
  labels: Uint8Array;
  imagesPath: string;
  labelsPath: string;
}

export type IdxSplit = 'train' | 'test';

/** The first of the usual names (LeCun's, gzipped or not; Kaggle's dotted variant) present in `dir`. */
function findIdxFile(dir: string, split: IdxSplit, kind: 'images' | 'labels'): string {
  const prefix = split === 'train' ? 'train' : 't10k';
  const rank = kind === 'images' ? 3 : 1;
  const names = [`-${kind}-idx${rank}-ubyte`, `-${kind}.idx${rank}-ubyte`].flatMap((s) => [
    `${prefix}${s}.gz`,
    `${prefix}${s}`,
  ]);
  for (const name of names) {
    const path = join(dir, name);
    if (existsSync(path)) return path;
  }
  const missing = existsSync(dir) ? '' : ' (the folder does not exist)';
  throw new InputError(dir, `no ${split} ${kind} file${missing}: looked for ${names.join(', ')}`);
}

/** Loads the `train` (60k for MNIST) or `test` (t10k) split from a folder of the four IDX files. */
export function loadMnistLike(dir: string, split: IdxSplit): ImageSet {
  const imagesPath = findIdxFile(dir, split, 'images');
  const labelsPath = findIdxFile(dir, split, 'labels');
  const images = readIdx(imagesPath, IDX_IMAGES);
  const labels = readIdx(labelsPath, IDX_LABELS);
  const [count, rows, cols] = images.dims as [number, number, number];
  if (labels.dims[0] !== count) {
    throw new InputError(labelsPath, `${labels.dims[0]} labels, but ${imagesPath} has ${count} images`);
  }
  return { count, rows, cols, images: images.data, labels: labels.data, imagesPath, labelsPath };
}
