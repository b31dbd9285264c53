/**
 * Safetensors checkpoints (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * header length N, N bytes of JSON header {name: {dtype, shape, data_offsets}, __metadata__},
 * then the data buffer the offsets point into. Reading checks every rule of the format and
 * decodes tensors only when asked; writing is deterministic and lays tensors out aligned.
 */
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { type HostArray, type HostData, hostArray } from '../graph/ndarray.js';
import { type DType, fmtShape, numel } from '../graph/shape.js';
import { InputError } from '../util/errors.js';
import { errorCode, readJson, writeFileAtomic } from '../util/files.js';

export type SafetensorsDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I8' | 'U8' | 'BOOL';
/** The dtypes a float32 tensor may be written as. */
export type FloatStorage = 'F32' | 'F16' | 'BF16';

/** Bytes per element of each stored dtype, and the host dtype it decodes to. */
const FORMATS: Record<SafetensorsDType, { readonly bytes: number; readonly host: DType }> = {
  F32: { bytes: 4, host: 'float32' },
  F16: { bytes: 2, host: 'float32' },
  BF16: { bytes: 2, host: 'float32' },
  F64: { bytes: 8, host: 'float32' },
  I64: { bytes: 8, host: 'int64' },
  I32: { bytes: 4, host: 'int32' },
  I8: { bytes: 1, host: 'int32' },
  U8: { bytes: 1, host: 'int32' },
  BOOL: { bytes: 1, host: 'bool' },
};
const SAFETENSORS_DTYPES = Object.keys(FORMATS) as SafetensorsDType[];
const FLOAT_STORAGE: readonly FloatStorage[] = ['F32', 'F16', 'BF16'];

/** The reference writer's dtype order (increasing alignment); data is laid out in reverse of it. */
const ALIGNMENT_ORDER: readonly SafetensorsDType[] = [
  'BOOL',
  'U8',
  'I8',
  'F16',
  'BF16',
  'I32',
  'F32',
  'F64',
  'I64',
];

/** A tensor of a checkpoint, described by its header entry. */
export interface StoredTensor {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: number[];
  /** Decodes the values at each call (read from the file again, when read from a file). */
  toHost(): HostArray;
}

export interface Checkpoint {
  readonly tensors: Map<string, StoredTensor>;
  readonly metadata: Record<string, string>;
  /** Names the checkpoint in errors: the .safetensors file, or the index of a sharded one. */
  readonly file: string;
}

/** True on every platform Node ships for in practice; the format is little-endian. */
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const INDEX_FILE = 'model.safetensors.index.json';
const SINGLE_FILE = 'model.safetensors';

// ---------------------------------------------------------------------------------------------
// Reading

/**
 * Reads a .safetensors file's header now, and a tensor's bytes from the file each time it is
 * decoded: a checkpoint never sits in memory whole beside the weights decoded from it.
 */
export function readSafetensors(path: string): Checkpoint {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new InputError(path, `cannot read: ${errorCode(e)}`);
  }
  try {
    const size = fstatSync(fd).size;
    const lengthField = readAt(path, fd, 0, Math.min(8, size));
    const headerLength = lengthField.length === 8 ? readUint64(lengthField) : 0n;
    const prefix =
      headerLength <= BigInt(size - 8) ? readAt(path, fd, 0, 8 + Number(headerLength)) : lengthField;
    return parseLayout(prefix, size, path, (begin, end) => {
      const at = openSync(path, 'r');
      try {
        return readAt(path, at, begin, end - begin);
      } finally {
        closeSync(at);
      }
    });
  } finally {
    closeSync(fd);
  }
}

/** `length` bytes of an open file from `position`, into their own buffer (aligned for any element type). */
function readAt(path: string, fd: number, position: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  try {
    while (done < length) {
      const n = readSync(fd, out, done, length - done, position + done);
      if (n === 0)
        throw new InputError(path, `truncated: ended at byte ${position + done} of ${position + length}`);
      done += n;
    }
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(path, `cannot read: ${errorCode(e)}`);
  }
  return out;
}

const readUint64 = (b: Uint8Array): bigint => new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);

/** Parses the bytes of a .safetensors file; `file` names it in errors. */
export function parseSafetensors(bytes: Uint8Array, file: string): Checkpoint {
  // a plain view: Buffer.slice would not copy
  const all = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return parseLayout(all, all.length, file, (begin, end) => all.subarray(begin, end));
}

/**
 * The checkpoint of a file of `size` bytes from its first bytes (at least the length field and
 * the header, where the file has them); `bytes(begin, end)` gives a range of the file.
 */
function parseLayout(
  prefix: Uint8Array,
  size: number,
  file: string,
  bytes: (begin: number, end: number) => Uint8Array,
): Checkpoint {
  const fail = (message: string): never => {
    throw new InputError(file, message);
  };
  if (size < 8) {
    fail(`${size} bytes is too short for safetensors, which starts with an 8-byte header length`);
  }
  const headerLength = readUint64(prefix);
  if (headerLength > BigInt(size - 8)) {
    // a text file read as safetensors (JSON weights, a config) starts with '{' or '['
    const text = prefix[0] === 0x7b || prefix[0] === 0x5b ? '; it reads as JSON text, not safetensors' : '';
    fail(`truncated: the header length field says ${headerLength} bytes, only ${size - 8} follow it${text}`);
  }
  const dataStart = 8 + Number(headerLength);
  const header = parseHeader(prefix.subarray(8, dataStart), fail);
  const dataLength = size - dataStart;
  const tensors = new Map<string, StoredTensor>();
  const spans: Span[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = checkMetadata(entry, fail);
      continue;
    }
    const { dtype, shape, begin, end } = checkEntry(name, entry, dataLength, fail);
    const toHost = () => decode(dtype, shape, bytes(dataStart + begin, dataStart + end));
    tensors.set(name, { name, dtype, shape, toHost });
    spans.push({ name, begin, end });
  }
  checkCoverage(spans, dataLength, fail);
  return { tensors, metadata, file };
}

function parseHeader(bytes: Uint8Array, fail: (m: string) => never): Record<string, unknown> {
  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    fail('the header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`the header is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(header)) fail(`the header must be a JSON object, got ${preview(header)}`);
  return header as Record<string, unknown>;
}

function checkMetadata(value: unknown, fail: (m: string) => never): Record<string, string> {
  if (!isObject(value)) fail(`__metadata__ must be an object of strings, got ${preview(value)}`);
  for (const [k, v] of Object.entries(value as object)) {
    if (typeof v !== 'string') fail(`__metadata__ '${k}' is ${preview(v)}, must be a string`);
  }
  return { ...(value as Record<string, string>) };
}

interface Entry {
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

/** Checks one header entry against the rules of the format and the buffer size. */
function checkEntry(name: string, entry: unknown, bufferLength: number, fail: (m: string) => never): Entry {
  const bad = (m: string): never => fail(`tensor '${name}': ${m}`);
  if (!isObject(entry))
    bad(`the entry must be an object {dtype, shape, data_offsets}, got ${preview(entry)}`);
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== 'string' || !Object.hasOwn(FORMATS, dtype)) {
    bad(`dtype ${preview(dtype)} is not supported; xbar reads ${SAFETENSORS_DTYPES.join(', ')}`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    bad(`shape must be an array of integers ≥ 0, got ${preview(shape)}`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every(isCount) ||
    offsets[0] > offsets[1] ||
    offsets[1] > bufferLength
  ) {
    bad(
      `data_offsets must be [begin, end], integers with 0 ≤ begin ≤ end ≤ ${bufferLength} (the data size), got ${preview(offsets)}`,
    );
  }
  const d = dtype as SafetensorsDType;
  const [begin, end] = offsets as [number, number];
  const needed = numel(shape as number[]) * FORMATS[d].bytes;
  if (end - begin !== needed) {
    bad(
      `shape ${fmtShape(shape as number[])} needs ${needed} bytes of ${d}, data_offsets give ${end - begin}`,
    );
  }
  return { dtype: d, shape: [...(shape as number[])], begin, end };
}

type Span = Pick<Entry, 'begin' | 'end'> & { name: string };

/** Tensors must tile the data buffer exactly: no overlaps, no holes, nothing after the last. */
function checkCoverage(spans: Span[], bufferLength: number, fail: (m: string) => never): void {
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let last: Span | undefined;
  for (const s of spans) {
    if (last && s.begin < covered) {
      fail(
        `tensors '${last.name}' (bytes [${last.begin}, ${last.end})) and '${s.name}' (bytes [${s.begin}, ${s.end})) overlap`,
      );
    }
    if (s.begin > covered) {
      fail(
        `data bytes [${covered}, ${s.begin}) before tensor '${s.name}' belong to no tensor; the format allows no holes`,
      );
    }
    covered = s.end;
    last = s;
  }
  if (covered < bufferLength) {
    const where = last ? `after tensor '${last.name}'` : 'and the header lists no tensors';
    fail(`data bytes [${covered}, ${bufferLength}) ${where} belong to no tensor; the format allows no holes`);
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** The stored bytes of one tensor as a host array (floats as float32, integers as int32/int64). */
function decode(dtype: SafetensorsDType, shape: number[], raw: Uint8Array): HostArray {
  const host = FORMATS[dtype].host;
  switch (dtype) {
    case 'F32':
      return hostArray(host, shape, elements(raw, Float32Array));
    case 'F64':
      return hostArray(host, shape, Float32Array.from(elements(raw, Float64Array)));
    case 'F16':
      return hostArray(host, shape, halfToFloat(elements(raw, Uint16Array)));
    case 'BF16':
      return hostArray(host, shape, bfloatToFloat(elements(raw, Uint16Array)));
    case 'I64':
      return hostArray(host, shape, elements(raw, BigInt64Array));
    case 'I32':
      return hostArray(host, shape, elements(raw, Int32Array));
    case 'I8':
      return hostArray(host, shape, Int32Array.from(new Int8Array(raw.buffer, raw.byteOffset, raw.length)));
    case 'U8':
      return hostArray(host, shape, Int32Array.from(raw));
    case 'BOOL':
      return hostArray(
        host,
        shape,
        Uint8Array.from(raw, (b) => (b ? 1 : 0)),
      );
  }
}

interface ElementType<T> {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): T;
  readonly BYTES_PER_ELEMENT: number;
}

/** `raw` read as elements of `Type`: a view when aligned on a little-endian host, else a copy. */
function elements<T>(raw: Uint8Array, Type: ElementType<T>): T {
  const width = Type.BYTES_PER_ELEMENT;
  const n = raw.length / width;
  if (LITTLE_ENDIAN_HOST && raw.byteOffset % width === 0) return new Type(raw.buffer, raw.byteOffset, n);
  const copy = swapToHost(new Uint8Array(raw), width);
  return new Type(copy.buffer, 0, n);
}

/** Reverses the bytes of each element in place on big-endian hosts (little-endian ↔ host order). */
function swapToHost(bytes: Uint8Array, width: number): Uint8Array {
  if (LITTLE_ENDIAN_HOST || width === 1) return bytes;
  for (let i = 0; i < bytes.length; i += width) bytes.subarray(i, i + width).reverse();
  return bytes;
}

let halfTable: Float32Array | undefined;

/** Every half-precision value as float32 (exact: float32 holds them all), built on first use. */
function halfValues(): Float32Array {
  if (halfTable) return halfTable;
  const table = new Float32Array(0x10000);
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 0x10000; h++) {
    const negative = (h & 0x8000) !== 0;
    const exp = (h >> 10) & 0x1f;
    const man = h & 0x3ff;
    if (exp === 0x1f) {
      // inf or NaN: keep the payload
      bits[h] = ((negative ? 0x80000000 : 0) | 0x7f800000 | (man << 13)) >>> 0;
      continue;
    }
    const magnitude = exp === 0 ? man * 2 ** -24 : (man + 0x400) * 2 ** (exp - 25);
    table[h] = negative ? -magnitude : magnitude;
  }
  halfTable = table;
  return table;
}

function halfToFloat(halves: Uint16Array): Float32Array {
  const table = halfValues();
  const out = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i++) out[i] = table[halves[i]!]!;
  return out;
}

function bfloatToFloat(halves: Uint16Array): Float32Array {
  const bits = new Uint32Array(halves.length);
  // bfloat16 is the top half of a float32
  for (let i = 0; i < halves.length; i++) bits[i] = halves[i]! << 16;
  return new Float32Array(bits.buffer);
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Float32 bits → half bits, rounding to nearest even; too large → ±inf, NaN stays NaN. */
function floatBitsToHalf(f: number): number {
  const sign = (f >>> 16) & 0x8000;
  const exp = (f >>> 23) & 0xff;
  const man = f & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 | (man >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  // a carry out of the mantissa correctly bumps the exponent (up to inf)
  if (e >= 1) return sign | roundShift((e << 23) | man, 13);
  // subnormal half: the significand with its implicit bit, in units of 2^-24
  if (e < -10) return sign;
  return sign | roundShift(man | 0x800000, 14 - e);
}

/** Float32 bits → bfloat16 bits, rounding to nearest even; NaN stays NaN. */
function floatBitsToBfloat(f: number): number {
  if ((f & 0x7fffffff) > 0x7f800000) return (f >>> 16) | 0x40;
  return (f + 0x7fff + ((f >>> 16) & 1)) >>> 16;
}

/** `v >> s` rounded to nearest, ties to even. */
function roundShift(v: number, s: number): number {
  const q = v >>> s;
  const rest = v & ((1 << s) - 1);
  const half = 1 << (s - 1);
  return rest > half || (rest === half && (q & 1) === 1) ? q + 1 : q;
}

interface Encoded {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  bytes: Uint8Array;
}

/** Serialises tensors to safetensors bytes; float32 tensors are stored as `dtype` (F32, F16 or BF16). */
export function encodeSafetensors(
  tensors: Record<string, HostArray>,
  metadata?: Record<string, string>,
  dtype: FloatStorage = 'F32',
): Uint8Array {
  return encode('encodeSafetensors', tensors, metadata, dtype);
}

/** Writes a .safetensors file atomically (a temporary file beside `path`, then a rename). */
export function writeSafetensors(
  path: string,
  tensors: Record<string, HostArray>,
  metadata?: Record<string, string>,
  dtype: FloatStorage = 'F32',
): void {
  writeFileAtomic(path, encode(path, tensors, metadata, dtype));
}

function encode(
  file: string,
  tensors: Record<string, HostArray>,
  metadata: Record<string, string> | undefined,
  dtype: FloatStorage,
): Uint8Array {
  const fail = (message: string): never => {
    throw new InputError(file, message);
  };
  if (!FLOAT_STORAGE.includes(dtype)) {
    fail(`float tensors cannot be written as ${preview(dtype)}; allowed: ${FLOAT_STORAGE.join(', ')}`);
  }
  if (metadata) checkMetadata(metadata, fail);
  const rank = (d: SafetensorsDType) => ALIGNMENT_ORDER.indexOf(d);
  // widest elements first, then by name: every tensor starts aligned to its element size
  const entries = Object.entries(tensors)
    .map(([name, a]) => encodeTensor(name, a, dtype, fail))
    .sort((a, b) => rank(b.dtype) - rank(a.dtype) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  // built by hand: a JS object would move integer-like names to the front
  const parts: string[] = [];
  if (metadata) {
    const keys = Object.keys(metadata).sort();
    parts.push(
      `"__metadata__":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`,
    );
  }
  let offset = 0;
  for (const t of entries) {
    const info = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    parts.push(`${JSON.stringify(t.name)}:${JSON.stringify(info)}`);
    offset += t.bytes.length;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  // spaces pad the header so the data starts 8-byte aligned
  const headerLength = json.length + ((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const t of entries) {
    out.set(t.bytes, at);
    at += t.bytes.length;
  }
  return out;
}

/** One tensor's stored dtype and little-endian bytes. */
function encodeTensor(name: string, a: HostArray, floats: FloatStorage, fail: (m: string) => never): Encoded {
  const bad = (m: string): never => fail(`tensor '${name}': ${m}`);
  if (name === '__metadata__') bad('this name is reserved for the metadata; rename the tensor');
  if (!Array.isArray(a.shape) || !a.shape.every(isCount)) {
    bad(`shape must be an array of integers ≥ 0, got ${preview(a.shape)}`);
  }
  const want = HOST_ARRAYS[a.dtype];
  if (!want)
    bad(`dtype ${preview(a.dtype)} cannot be stored; allowed: ${Object.keys(HOST_ARRAYS).join(', ')}`);
  if (!(a.data instanceof want))
    bad(`dtype ${a.dtype} needs a ${want.name}, got ${a.data?.constructor.name}`);
  if (a.data.length !== numel(a.shape)) {
    bad(`shape ${fmtShape(a.shape)} needs ${numel(a.shape)} elements, data has ${a.data.length}`);
  }
  const shape = a.shape;
  switch (a.dtype) {
    case 'float32': {
      if (floats === 'F32') return { name, dtype: 'F32', shape, bytes: littleEndianBytes(a.data, 4) };
      const bits = new Uint32Array(a.data.buffer, a.data.byteOffset, a.data.length);
      const convert = floats === 'F16' ? floatBitsToHalf : floatBitsToBfloat;
      const halves = new Uint16Array(bits.length);
      for (let i = 0; i < bits.length; i++) halves[i] = convert(bits[i]!);
      return { name, dtype: floats, shape, bytes: littleEndianBytes(halves, 2) };
    }
    case 'int32':
      return { name, dtype: 'I32', shape, bytes: littleEndianBytes(a.data, 4) };
    case 'int64':
      return { name, dtype: 'I64', shape, bytes: littleEndianBytes(a.data, 8) };
    case 'bool':
      return { name, dtype: 'BOOL', shape, bytes: Uint8Array.from(a.data as Uint8Array, (b) => (b ? 1 : 0)) };
  }
}

/** The typed array each host dtype must carry. */
const HOST_ARRAYS: Record<DType, { new (n: number): HostData; readonly name: string }> = {
  float32: Float32Array,
  int32: Int32Array,
  int64: BigInt64Array,
  bool: Uint8Array,
};

/** The bytes of `data` in little-endian order: a view on little-endian hosts, else a swapped copy. */
function littleEndianBytes(data: HostData | Uint16Array, width: number): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return LITTLE_ENDIAN_HOST ? bytes : swapToHost(new Uint8Array(bytes), width);
}

// ---------------------------------------------------------------------------------------------
// Hugging Face model folders

/** Reads the checkpoint of a Hugging Face model folder: model.safetensors, or its sharded index. */
export function readCheckpoint(dir: string): Checkpoint {
  const single = join(dir, SINGLE_FILE);
  if (existsSync(single)) return readSafetensors(single);
  const index = join(dir, INDEX_FILE);
  if (existsSync(index)) return readSharded(dir, index);
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new InputError(dir, `cannot read the model folder: ${errorCode(e)}`);
  }
  const torch = names.filter((n) => /^pytorch_model.*\.bin$|\.pth?$/.test(n)).sort();
  if (torch.length > 0) {
    // the architecture class keeps the task head, which AutoModel would drop
    const py =
      `import transformers as t; d='${dir}'; c=t.AutoConfig.from_pretrained(d); ` +
      'getattr(t, c.architectures[0]).from_pretrained(d).save_pretrained(d, safe_serialization=True)';
    throw new InputError(
      dir,
      `found ${torch.join(', ')} but no ${SINGLE_FILE}; xbar reads safetensors only. Convert the folder once with:\n  python -c "${py}"`,
    );
  }
  throw new InputError(dir, `no checkpoint found: looked for ${SINGLE_FILE} and ${INDEX_FILE}`);
}

/** Merges the shards an index lists; its weight_map (tensor name → shard file) is the authority. */
function readSharded(dir: string, indexPath: string): Checkpoint {
  const fail = (message: string): never => {
    throw new InputError(indexPath, message);
  };
  const index = readJson(indexPath);
  const weightMap = isObject(index) ? (index as Record<string, unknown>)['weight_map'] : undefined;
  if (!isObject(weightMap) || !Object.values(weightMap as object).every((v) => typeof v === 'string')) {
    fail(`weight_map must be an object mapping tensor names to shard file names, got ${preview(weightMap)}`);
  }
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(weightMap as Record<string, string>)) {
    const names = byShard.get(shard);
    if (names) names.push(name);
    else byShard.set(shard, [name]);
  }
  const tensors = new Map<string, StoredTensor>();
  const metadata: Record<string, string> = {};
  for (const [shard, names] of byShard) {
    const path = join(dir, shard);
    if (!existsSync(path)) {
      const what = names.length > 1 ? `'${names[0]}' and ${names.length - 1} more` : `'${names[0]}'`;
      fail(`weight_map puts ${what} in shard '${shard}', which is missing from ${dir}`);
    }
    const part = readSafetensors(path);
    for (const name of names) {
      const t = part.tensors.get(name);
      if (!t)
        throw new InputError(path, `tensor '${name}' is missing; ${INDEX_FILE} says this shard holds it`);
      tensors.set(name, t);
    }
    Object.assign(metadata, part.metadata);
  }
  return { tensors, metadata, file: indexPath };
}

// ---------------------------------------------------------------------------------------------
// Small checks

const isObject = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v);

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** A value as JSON, cut short so an error stays one readable line. */
function preview(v: unknown): string {
  const s = v === undefined ? 'nothing' : (JSON.stringify(v) ?? String(v));
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
