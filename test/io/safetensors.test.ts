/** Safetensors: exact round trips of every dtype, zero-copy views, sharded folders, and errors that name the problem. */
import assert from 'node:assert/strict';
import { existsSync, linkSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { f32, type HostArray, hostArray, i32 } from '../../src/graph/ndarray.js';
import {
  encodeSafetensors,
  parseSafetensors,
  readCheckpoint,
  readSafetensors,
  writeSafetensors,
} from '../../src/io/safetensors.js';
import { InputError } from '../../src/util/errors.js';

const FIXTURE = fileURLToPath(
  new URL('../../../test/fixtures/models/bert/model.safetensors', import.meta.url),
);

const tempDir = () => mkdtempSync(join(tmpdir(), 'xbar-st-'));

/** A file from a header (object or raw text) and a data buffer, without alignment padding. */
function rawFile(header: unknown, data: Uint8Array | number = 0): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const buffer = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + buffer.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(buffer, 8 + json.length);
  return out;
}

/** The stored little-endian 16-bit words of a single-tensor file. */
function storedHalves(bytes: Uint8Array): number[] {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const data = bytes.subarray(8 + n);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return Array.from({ length: data.length / 2 }, (_, i) => view.getUint16(2 * i, true));
}

const parse = (bytes: Uint8Array) => parseSafetensors(bytes, 'model.safetensors');
const only = (bytes: Uint8Array, name = 'x') => parse(bytes).tensors.get(name)!.toHost();

function rejects(f: () => unknown, message: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof InputError, `expected an InputError, got ${e}`);
    assert.match(e.message, message);
    return true;
  });
}

describe('safetensors round trip', () => {
  it('keeps F32, I32, I64 and BOOL tensors, shapes (scalar, empty) and metadata exactly', () => {
    const tensors: Record<string, HostArray> = {
      w: f32([2, 3], [1.5, -0, 3.4028234663852886e38, 1e-45, Number.NaN, Number.NEGATIVE_INFINITY]),
      ids: i32([3], [-2147483648, 0, 2147483647]),
      big: hostArray('int64', [2], BigInt64Array.from([-(2n ** 63n), 2n ** 53n + 1n])),
      mask: hostArray('bool', [2, 2], Uint8Array.from([1, 0, 0, 1])),
      scalar: f32([], [7]),
      empty: f32([0, 4]),
    };
    const ck = parse(encodeSafetensors(tensors, { format: 'pt', note: 'ü' }));
    assert.deepEqual(ck.metadata, { format: 'pt', note: 'ü' });
    assert.deepEqual(Object.fromEntries([...ck.tensors].map(([n, t]) => [n, t.dtype])), {
      w: 'F32',
      ids: 'I32',
      big: 'I64',
      mask: 'BOOL',
      scalar: 'F32',
      empty: 'F32',
    });
    for (const [name, want] of Object.entries(tensors)) {
      const got = ck.tensors.get(name)!.toHost();
      assert.equal(got.dtype, want.dtype, name);
      assert.deepEqual(got.shape, want.shape, name);
      assert.deepEqual(got.data, want.data, name);
    }
  });

  it('writes F16 rounding to nearest even, with subnormals, -0, inf and NaN', () => {
    const cases: [number, number, number][] = [
      // [value, F16 bits, value read back]
      [1, 0x3c00, 1],
      [-2, 0xc000, -2],
      [0.1, 0x2e66, 0.0999755859375],
      [65504, 0x7bff, 65504],
      [65519, 0x7bff, 65504],
      [65520, 0x7c00, Number.POSITIVE_INFINITY], // halfway to 2^16: ties to even overflows
      [2 ** -14, 0x0400, 2 ** -14],
      [2 ** -24, 0x0001, 2 ** -24],
      [2 ** -25, 0x0000, 0], // halfway: ties to even 0
      [1.5 * 2 ** -24, 0x0002, 2 ** -23], // halfway: ties to even 2
      [2 ** -14 - 2 ** -25, 0x0400, 2 ** -14], // largest subnormal rounds up into the normals
      [1 + 2 ** -11, 0x3c00, 1], // halfway: ties to even
      [1 + 3 * 2 ** -11, 0x3c02, 1 + 2 ** -9],
      [1e-10, 0x0000, 0],
      [-0, 0x8000, -0],
      [Number.POSITIVE_INFINITY, 0x7c00, Number.POSITIVE_INFINITY],
      [Number.NEGATIVE_INFINITY, 0xfc00, Number.NEGATIVE_INFINITY],
      [Number.NaN, 0x7e00, Number.NaN],
    ];
    const bytes = encodeSafetensors(
      {
        x: f32(
          [cases.length],
          cases.map((c) => c[0]),
        ),
      },
      undefined,
      'F16',
    );
    assert.deepEqual(
      storedHalves(bytes).map(hex),
      cases.map((c) => hex(c[1])),
    );
    const back = only(bytes);
    assert.equal(back.dtype, 'float32');
    assert.deepEqual(
      Array.from(back.data as Float32Array),
      cases.map((c) => c[2]),
    );
    assert.ok(Object.is((back.data as Float32Array)[14], -0));
  });

  it('writes BF16 rounding to nearest even, with subnormals, -0, inf and NaN', () => {
    const cases: [number, number, number][] = [
      [1, 0x3f80, 1],
      [-2, 0xc000, -2],
      [0.1, 0x3dcd, 0.10009765625],
      [1 + 2 ** -8, 0x3f80, 1], // halfway: ties to even
      [1 + 3 * 2 ** -8, 0x3f82, 1 + 2 ** -6],
      [3.4028234663852886e38, 0x7f80, Number.POSITIVE_INFINITY],
      [1e-40, 0x0001, 2 ** -133],
      [-0, 0x8000, -0],
      [Number.POSITIVE_INFINITY, 0x7f80, Number.POSITIVE_INFINITY],
      [Number.NEGATIVE_INFINITY, 0xff80, Number.NEGATIVE_INFINITY],
      [Number.NaN, 0x7fc0, Number.NaN],
    ];
    const bytes = encodeSafetensors(
      {
        x: f32(
          [cases.length],
          cases.map((c) => c[0]),
        ),
      },
      undefined,
      'BF16',
    );
    assert.deepEqual(
      storedHalves(bytes).map(hex),
      cases.map((c) => hex(c[1])),
    );
    const back = only(bytes);
    assert.deepEqual(
      Array.from(back.data as Float32Array),
      cases.map((c) => c[2]),
    );
    assert.ok(Object.is((back.data as Float32Array)[7], -0));
  });

  it('decodes every F16 value exactly (all 65536 bit patterns)', () => {
    const halves = Uint16Array.from({ length: 0x10000 }, (_, i) => i);
    const bytes = rawFile(
      { x: { dtype: 'F16', shape: [0x10000], data_offsets: [0, 0x20000] } },
      new Uint8Array(halves.buffer),
    );
    const got = only(bytes).data as Float32Array;
    for (let h = 0; h < 0x10000; h++) {
      const exp = (h >> 10) & 0x1f;
      const man = h & 0x3ff;
      const mag =
        exp === 0x1f
          ? man
            ? Number.NaN
            : Number.POSITIVE_INFINITY
          : exp === 0
            ? man * 2 ** -24
            : (1 + man / 1024) * 2 ** (exp - 15);
      assert.ok(Object.is(got[h], h & 0x8000 ? -mag : mag), `0x${h.toString(16)}: ${got[h]} vs ${mag}`);
    }
  });

  it('decodes F64 to float32, I8 and U8 to int32, and keeps I64 beyond 2^53', () => {
    const f64 = new Uint8Array(Float64Array.from([1.5, -0.1, 1e300]).buffer);
    const i64 = new Uint8Array(BigInt64Array.from([2n ** 62n + 1n]).buffer);
    const data = new Uint8Array([...f64, ...i64, 0x80, 0x7f, 0xff, 0, 255]);
    const ck = parse(
      rawFile(
        {
          d: { dtype: 'F64', shape: [3], data_offsets: [0, 24] },
          l: { dtype: 'I64', shape: [1], data_offsets: [24, 32] },
          s: { dtype: 'I8', shape: [3], data_offsets: [32, 35] },
          u: { dtype: 'U8', shape: [1, 2], data_offsets: [35, 37] },
        },
        data,
      ),
    );
    const get = (n: string) => ck.tensors.get(n)!.toHost();
    assert.deepEqual(get('d'), f32([3], [1.5, -0.1, Number.POSITIVE_INFINITY]));
    assert.deepEqual(get('l'), hostArray('int64', [1], BigInt64Array.from([2n ** 62n + 1n])));
    assert.deepEqual(get('s'), i32([3], [-128, 127, -1]));
    assert.deepEqual(get('u'), i32([1, 2], [0, 255]));
  });

  it('views aligned F32 data without copying, and copies unaligned data', () => {
    const bytes = encodeSafetensors({ a: f32([3], [1, 2, 3]), b: f32([2], [4, 5]) });
    for (const name of ['a', 'b']) {
      const data = only(bytes, name).data as Float32Array;
      assert.equal(data.buffer, bytes.buffer, `${name} is a view`);
    }
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const copy = only(shifted.subarray(1), 'b');
    assert.notEqual(copy.data.buffer, shifted.buffer);
    assert.deepEqual(copy, f32([2], [4, 5]));
  });

  it('lays data out widest dtype first, then by name, so every tensor is aligned', () => {
    const tensors = {
      z: hostArray('bool', [3], Uint8Array.from([1, 0, 1])),
      '10': f32([1], [1]),
      '2': f32([1], [2]),
      h: f32([3], [1, 2, 3]),
      i: hostArray('int64', [1], BigInt64Array.from([5n])),
    };
    const bytes = encodeSafetensors(tensors, undefined, 'F16');
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal((8 + n) % 8, 0);
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    assert.match(header, /^\{"i":.*,"10":.*,"2":.*,"h":.*,"z":.*\} *$/);
    const offsets = JSON.parse(header) as Record<string, { data_offsets: [number, number] }>;
    assert.deepEqual(offsets['i']!.data_offsets, [0, 8]);
    assert.deepEqual(offsets['z']!.data_offsets, [18, 21]);
    const reversed = Object.fromEntries(Object.entries(tensors).reverse());
    assert.deepEqual(encodeSafetensors(reversed, undefined, 'F16'), bytes);
  });

  it('writes the same bytes as the reference implementation (Python safetensors)', () => {
    const file = new Uint8Array(readFileSync(FIXTURE));
    const ck = readSafetensors(FIXTURE);
    const tensors = Object.fromEntries([...ck.tensors].map(([n, t]) => [n, t.toHost()]));
    assert.deepEqual(encodeSafetensors(tensors, ck.metadata), file);
  });

  it('writes atomically, creating the folder and leaving no temporary file', () => {
    const dir = join(tempDir(), 'nested');
    const path = join(dir, 'weights.safetensors');
    writeSafetensors(path, { w: f32([1], [3]) });
    // a second name for the old file: a new file renamed over the path leaves it whole, where
    // writing in place would change it under a reader
    const other = join(tempDir(), 'old.safetensors');
    linkSync(path, other);
    const old = readFileSync(other);
    writeSafetensors(path, { w: f32([2], [1, 2]) }, { step: '3' }, 'BF16');
    assert.deepEqual(readFileSync(other), old);
    assert.deepEqual(readdirSync(dir), ['weights.safetensors']);
    const ck = readSafetensors(path);
    assert.equal(ck.file, path);
    assert.deepEqual(ck.metadata, { step: '3' });
    assert.equal(ck.tensors.get('w')!.dtype, 'BF16');
    assert.deepEqual(ck.tensors.get('w')!.toHost(), f32([2], [1, 2]));
  });

  it('reads each tensor from the file into a buffer of its own size, never the whole file', () => {
    const path = join(tempDir(), 'two.safetensors');
    writeSafetensors(path, { a: f32([1000], new Array(1000).fill(1)), b: f32([3], [1, 2, 3]) });
    const ck = readSafetensors(path);
    assert.equal(ck.tensors.get('a')!.toHost().data.buffer.byteLength, 4000);
    assert.equal(ck.tensors.get('b')!.toHost().data.buffer.byteLength, 12);
  });
});

describe('Hugging Face model folders', () => {
  function shardedFolder(): string {
    const dir = tempDir();
    writeSafetensors(
      join(dir, 'model-00001-of-00002.safetensors'),
      { a: f32([2], [1, 2]), b: i32([1], [3]) },
      { format: 'pt' },
    );
    writeSafetensors(
      join(dir, 'model-00002-of-00002.safetensors'),
      { c: f32([1, 1], [4]) },
      { format: 'pt', part: '2' },
    );
    const weight_map = {
      a: 'model-00001-of-00002.safetensors',
      b: 'model-00001-of-00002.safetensors',
      c: 'model-00002-of-00002.safetensors',
    };
    writeFileSync(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: 16 }, weight_map }),
    );
    return dir;
  }

  it('reads model.safetensors', () => {
    const dir = tempDir();
    writeSafetensors(join(dir, 'model.safetensors'), { w: f32([1], [9]) });
    const ck = readCheckpoint(dir);
    assert.equal(ck.file, join(dir, 'model.safetensors'));
    assert.deepEqual(ck.tensors.get('w')!.toHost(), f32([1], [9]));
  });

  it('merges the shards of a sharded checkpoint', () => {
    const dir = shardedFolder();
    const ck = readCheckpoint(dir);
    assert.equal(ck.file, join(dir, 'model.safetensors.index.json'));
    assert.deepEqual([...ck.tensors.keys()].sort(), ['a', 'b', 'c']);
    assert.deepEqual(ck.tensors.get('b')!.toHost(), i32([1], [3]));
    assert.deepEqual(ck.tensors.get('c')!.toHost(), f32([1, 1], [4]));
    assert.deepEqual(ck.metadata, { format: 'pt', part: '2' });
  });

  it('names a missing shard and a tensor missing from its shard', () => {
    const dir = shardedFolder();
    const index = join(dir, 'model.safetensors.index.json');
    const map = (weight_map: Record<string, string>) => writeFileSync(index, JSON.stringify({ weight_map }));
    map({
      a: 'model-00001-of-00002.safetensors',
      d: 'model-00003-of-00003.safetensors',
      e: 'model-00003-of-00003.safetensors',
    });
    rejects(
      () => readCheckpoint(dir),
      /model\.safetensors\.index\.json: weight_map puts 'd' and 1 more in shard 'model-00003-of-00003\.safetensors', which is missing from /,
    );
    map({ a: 'model-00001-of-00002.safetensors', zz: 'model-00001-of-00002.safetensors' });
    rejects(
      () => readCheckpoint(dir),
      /model-00001-of-00002\.safetensors: tensor 'zz' is missing; model\.safetensors\.index\.json says this shard holds it/,
    );
    map({ a: 3 as unknown as string });
    rejects(
      () => readCheckpoint(dir),
      /index\.json: weight_map must be an object mapping tensor names to shard file names, got \{"a":3\}/,
    );
    writeFileSync(index, '{"weight_map": ');
    rejects(() => readCheckpoint(dir), /index\.json: invalid JSON/);
  });

  it('explains how to convert a PyTorch-only folder', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'pytorch_model.bin'), 'x');
    rejects(
      () => readCheckpoint(dir),
      /found pytorch_model\.bin but no model\.safetensors; xbar reads safetensors only\. Convert the folder once with:\n {2}python -c ".*from_pretrained\(d\)\.save_pretrained\(d, safe_serialization=True\)"/,
    );
    const pt = tempDir();
    writeFileSync(join(pt, 'weights.pt'), 'x');
    rejects(
      () => readCheckpoint(pt),
      /found weights\.pt but no model\.safetensors; xbar reads safetensors only/,
    );
  });

  it('names the folder and what it looked for when there is no checkpoint', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'training_args.bin'), 'x');
    rejects(
      () => readCheckpoint(dir),
      /xbar-st-.*: no checkpoint found: looked for model\.safetensors and model\.safetensors\.index\.json/,
    );
    rejects(() => readCheckpoint(join(dir, 'absent')), /absent: cannot read the model folder: ENOENT/);
  });
});

describe('safetensors errors', () => {
  const entry = (dtype: unknown, shape: unknown, data_offsets: unknown) => ({ dtype, shape, data_offsets });

  it('rejects a file too short for the header length, or truncated', () => {
    rejects(() => parse(new Uint8Array(5)), /^model\.safetensors: 5 bytes is too short for safetensors/);
    const bytes = rawFile({ x: entry('F32', [1], [0, 4]) }, 4);
    rejects(
      () => parse(bytes.subarray(0, 20)),
      /^model\.safetensors: truncated: the header length field says \d+ bytes, only 12 follow it/,
    );
    const file = join(tempDir(), 'cut.safetensors');
    writeFileSync(file, bytes.subarray(0, 20));
    rejects(() => readSafetensors(file), /cut\.safetensors: truncated/);
    rejects(() => readSafetensors(`${file}.absent`), /absent: cannot read: ENOENT/);
    // JSON weights given where safetensors are read
    const json = new TextEncoder().encode('{"weight": [[1, 2], [3, 4]]}');
    rejects(() => parse(json), /truncated: .*; it reads as JSON text, not safetensors$/);
  });

  it('rejects a header that is not UTF-8, not JSON, or not an object', () => {
    rejects(() => parse(rawFile('{"x": ')), /model\.safetensors: the header is not valid JSON: /);
    rejects(
      () => parse(rawFile('[1, 2]')),
      /model\.safetensors: the header must be a JSON object, got \[1,2\]/,
    );
    const bad = rawFile('{"x":1}');
    bad[9] = 0xff;
    rejects(() => parse(bad), /model\.safetensors: the header is not valid UTF-8/);
  });

  it('rejects __metadata__ that is not a map of strings', () => {
    rejects(
      () => parse(rawFile({ __metadata__: { epoch: 3 } })),
      /__metadata__ 'epoch' is 3, must be a string/,
    );
    rejects(
      () => parse(rawFile({ __metadata__: 'pt' })),
      /__metadata__ must be an object of strings, got "pt"/,
    );
  });

  it('rejects an unknown dtype, listing the ones xbar reads', () => {
    rejects(
      () => parse(rawFile({ x: entry('F8_E4M3', [1], [0, 1]) }, 1)),
      /tensor 'x': dtype "F8_E4M3" is not supported; xbar reads F32, F16, BF16, F64, I64, I32, I8, U8, BOOL/,
    );
    rejects(
      () => parse(rawFile({ x: 5 })),
      /tensor 'x': the entry must be an object \{dtype, shape, data_offsets\}, got 5/,
    );
  });

  it('rejects a shape that is not an array of non-negative integers', () => {
    for (const shape of [[2, -1], [1.5], '3', [null], undefined]) {
      rejects(
        () => parse(rawFile({ x: entry('F32', shape, [0, 0]) })),
        /model\.safetensors: tensor 'x': shape must be an array of integers ≥ 0, got /,
      );
    }
  });

  it('rejects data_offsets that are not [begin, end] within the data', () => {
    for (const offsets of [[0], [0, 4, 8], [4, 0], [-4, 0], [0, 4.5], [0, 12], '0,4', [0, '4']]) {
      rejects(
        () => parse(rawFile({ x: entry('F32', [1], offsets) }, 8)),
        /tensor 'x': data_offsets must be \[begin, end\], integers with 0 ≤ begin ≤ end ≤ 8 \(the data size\), got /,
      );
    }
  });

  it('rejects a byte size that does not match the shape and dtype', () => {
    const name = 'encoder.layer.0.attention.self.query.weight';
    rejects(
      () => parse(rawFile({ [name]: entry('F32', [384, 384], [0, 589820]) }, 589820)),
      /^model\.safetensors: tensor 'encoder\.layer\.0\.attention\.self\.query\.weight': shape \[384, 384\] needs 589824 bytes of F32, data_offsets give 589820$/,
    );
    rejects(
      () => parse(rawFile({ x: entry('BF16', [3], [0, 4]) }, 4)),
      /tensor 'x': shape \[3\] needs 6 bytes of BF16, data_offsets give 4/,
    );
  });

  it('rejects overlapping tensors', () => {
    const header = { a: entry('F32', [4], [0, 16]), b: entry('F32', [4], [8, 24]) };
    rejects(
      () => parse(rawFile(header, 24)),
      /tensors 'a' \(bytes \[0, 16\)\) and 'b' \(bytes \[8, 24\)\) overlap/,
    );
    const same = { a: entry('F32', [2], [0, 8]), b: entry('F32', [2], [0, 8]) };
    rejects(() => parse(rawFile(same, 8)), /tensors 'a' .* and 'b' .* overlap/);
  });

  it('rejects holes: bytes between tensors or after the last one', () => {
    const gap = { a: entry('F32', [1], [0, 4]), b: entry('F32', [1], [8, 12]) };
    rejects(
      () => parse(rawFile(gap, 12)),
      /data bytes \[4, 8\) before tensor 'b' belong to no tensor; the format allows no holes/,
    );
    const tail = { a: entry('F32', [1], [0, 4]) };
    rejects(
      () => parse(rawFile(tail, 6)),
      /data bytes \[4, 6\) after tensor 'a' belong to no tensor; the format allows no holes/,
    );
    rejects(
      () => parse(rawFile({}, 3)),
      /data bytes \[0, 3\) and the header lists no tensors belong to no tensor/,
    );
    assert.equal(parse(rawFile({ e: entry('F32', [0], [0, 0]) })).tensors.size, 1);
  });

  it('rejects tensors it cannot write, naming the tensor', () => {
    rejects(
      () => encodeSafetensors({ __metadata__: f32([1], [1]) }),
      /encodeSafetensors: tensor '__metadata__': this name is reserved/,
    );
    const short = { dtype: 'float32', shape: [2, 2], data: new Float32Array(3) } as HostArray;
    rejects(() => encodeSafetensors({ w: short }), /tensor 'w': shape \[2, 2\] needs 4 elements, data has 3/);
    const mixed = { dtype: 'int32', shape: [1], data: new Float32Array(1) } as HostArray;
    rejects(
      () => encodeSafetensors({ w: mixed }),
      /tensor 'w': dtype int32 needs a Int32Array, got Float32Array/,
    );
    rejects(
      () => encodeSafetensors({}, undefined, 'F64' as 'F32'),
      /float tensors cannot be written as "F64"; allowed: F32, F16, BF16/,
    );
    rejects(
      () => encodeSafetensors({}, { n: 1 as unknown as string }),
      /__metadata__ 'n' is 1, must be a string/,
    );
    const path = join(tempDir(), 'bad.safetensors');
    rejects(() => writeSafetensors(path, { w: short }), /bad\.safetensors: tensor 'w'/);
    assert.ok(!existsSync(path));
  });
});

const hex = (n: number) => `0x${n.toString(16).padStart(4, '0')}`;
