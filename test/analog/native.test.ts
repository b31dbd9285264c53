/**
 * The native fused crossbar kernel (native/crossbar_products.cc) against the ONNX graph it
 * replaces. The kernel draws the graph's noise itself (the same generator, keyed by the same
 * seed, sample and place), so both give the same outputs, up to sums that land on an ADC
 * rounding edge in one summation order and not the other.
 * Skipped when the kernels are not built (`npm run build:native`; CI builds them).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { AnalogModel } from '../../src/analog/analog-model.js';
import { type ConductanceTransform, dynamicProduct } from '../../src/analog/dynamic.js';
import { loadSpec } from '../../src/analog/presets.js';
import { NATIVE_CONSTANTS, WRITE_KINDS, type WriteKind } from '../../src/analog/write-noise.js';
import { type HostArray, hostArray } from '../../src/graph/ndarray.js';
import { input, param, type Tensor } from '../../src/graph/tensor.js';
import { clipformerTransform, parseClipFormer } from '../../src/methods/clipformer.js';
import { nativeKernels, useNativeKernels } from '../../src/runtime/native.js';
import { compile } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/math.js';

const wasOn = useNativeKernels(true);
const built = nativeKernels() !== null;
after(() => useNativeKernels(wasOn));

interface Case {
  /** Builds the product; called once with the kernel on, once with it off. */
  build: () => Tensor;
  feeds: Record<string, HostArray>;
}

/** The batch's first sample in the data set: not 0, so that the sample keys are tested. */
const FIRST_SAMPLE = 5;

/**
 * Runs a case both ways, the kernel and the ONNX graph, each drawing its own noise. → fraction
 * of outputs that differ by more than 1e-4 relative, largest difference, and the outputs' scale.
 */
async function compare(c: Case): Promise<{ differ: number; maxDiff: number; scale: number; n: number }> {
  useNativeKernels(true);
  const fused = await compile({ y: c.build() }, { cache: false });
  const yFused = (await fused.run(c.feeds, FIRST_SAMPLE)).y!.data as Float32Array;
  useNativeKernels(false);
  const plain = await compile({ y: c.build() }, { cache: false });
  const yPlain = (await plain.run(c.feeds, FIRST_SAMPLE)).y!.data as Float32Array;
  let differ = 0;
  let maxDiff = 0;
  let scale = 0;
  for (let k = 0; k < yPlain.length; k++) {
    const d = Math.abs(yFused[k]! - yPlain[k]!);
    scale = Math.max(scale, Math.abs(yPlain[k]!));
    if (d > 1e-4 * Math.abs(yPlain[k]!) + 1e-6) differ++;
    maxDiff = Math.max(maxDiff, d);
  }
  return { differ: differ / yPlain.length, maxDiff, scale, n: yPlain.length };
}

/** x·W of a static layer `name` on a preset with `sets` overrides, x [samples, tokens, inDim]. */
function staticCase(
  preset: string,
  sets: string[],
  inDim: number,
  outDim: number,
  n: number,
  tokens = 1,
): Case {
  const spec = loadSpec(preset, sets);
  const rng = new Rng(17);
  const w = hostArray('float32', [inDim, outDim], rng.fillNormal(new Float32Array(inDim * outDim), 0, 0.05));
  const x = hostArray('float32', [n, tokens, inDim], rng.fillNormal(new Float32Array(n * tokens * inDim)));
  return {
    build: () =>
      new AnalogModel(spec, 5).linear('layer.0.ffnIn', input('x', [n, tokens, inDim]), param('w', w)),
    feeds: { x },
  };
}

/**
 * Rare rounding-edge flips at most (1e-4 of the outputs, or 2 in a small case, where one flip is
 * already more), each worth a few ADC codes of the output scale; outputs not all zero. A wrong
 * cell, noise sample or scale shows as percents (checked by mutating the kernel).
 */
function assertSame(r: Awaited<ReturnType<typeof compare>>): void {
  assert.ok(r.scale > 0, 'the outputs are not all zero');
  assert.ok(
    r.differ * r.n <= Math.max(2, 1e-4 * r.n),
    `${(r.differ * 100).toFixed(3)} % of ${r.n} outputs differ`,
  );
  assert.ok(r.maxDiff <= 0.05 * r.scale, `largest difference ${r.maxDiff} at scale ${r.scale}`);
}

describe('the native crossbar kernel', { skip: built ? false : 'native kernels not built' }, () => {
  it('bit-serial inputs × 2-bit slices with read noise and a 6-bit ADC (rram-clipformer): the graph’s outputs', async () => {
    // 100 inputs: a full and a zero-padded row tile; 40 columns: two 16-column chunks and a tail
    // 3 samples of 13 tokens: the kernel keys the noise by sample along N
    assertSame(await compare(staticCase('rram-clipformer', [], 100, 40, 37)));
    assertSame(await compare(staticCase('rram-clipformer', [], 100, 40, 3, 13)));
  });

  it('levelled tiles counted, and the same tiles summed row by row, give the graph’s outputs', async () => {
    // cells without programming noise hold one of 7 levels: the kernel counts on-rows per level.
    // Strong read noise makes every variance term matter at the ADC; with programming noise the
    // cells are not levelled and the kernel sums their rows
    for (const program of ['{kind: none}', '{kind: relative, sigma: 0.02}'])
      assertSame(
        await compare(
          staticCase('rram-clipformer', ['readNoise.sigma=0.4', `program=${program}`], 100, 40, 37),
        ),
      );
  });

  it('keeps a layer’s levelled form between runs, and not past a reprogramming', async () => {
    // levelled cells (no programming noise) with a calibrated conductance range, so that new
    // column scales reprogram the layer; every graph compiled fresh draws the same noise
    useNativeKernels(true);
    const sets = [
      'program={kind: none}',
      'readNoise.sigma=0.4',
      'mapping.conductanceRange={kind: calibrated}',
    ];
    const spec = loadSpec('rram-clipformer', sets);
    const [inDim, outDim, n] = [100, 40, 9];
    const rng = new Rng(21);
    const w = param(
      'w',
      hostArray('float32', [inDim, outDim], rng.fillNormal(new Float32Array(inDim * outDim), 0, 0.05)),
    );
    const x = hostArray('float32', [n, inDim], rng.fillNormal(new Float32Array(n * inDim)));
    const eta = (v: number) => new Map([['layer.0.ffnIn', new Float32Array(2 * outDim).fill(v)]]);
    const run = async (m: AnalogModel) => {
      const g = await compile({ y: m.linear('layer.0.ffnIn', input('x', [n, inDim]), w) }, { cache: false });
      return Array.from((await g.run({ x })).y!.data as Float32Array);
    };
    const model = new AnalogModel(spec, 5);
    model.setColumnScales(eta(1));
    const first = await run(model); // finds the levelled form
    assert.deepEqual(await run(model), first, 'the kept form gives the numbers of a fresh one');
    model.setColumnScales(eta(0.5)); // reprograms: devices at half their range
    const fresh = new AnalogModel(spec, 5);
    fresh.setColumnScales(eta(0.5));
    const expected = await run(fresh);
    assert.notDeepEqual(expected, first);
    assert.deepEqual(await run(model), expected, 'after reprogramming, the new cells’ form');
  });

  it('analog cells with output noise on 512-row tiles (eight 64-bit row masks): the graph’s outputs', async () => {
    const sets = [
      'cells.kind=analog',
      'readNoise.kind=none',
      'outputNoise.kind=gaussian',
      'outputNoise.sigma=0.04',
      'tile.rows=512',
      'tile.cols=512',
      'adc.bits=9',
      'adc.range.kind=fixed',
      'adc.range.max=6',
    ];
    const r = await compare(staticCase('rram-clipformer', sets, 700, 100, 9));
    assertSame(r);
  });

  it('a scale per column (gain per column) and 130 outputs over three column tiles: the graph’s outputs', async () => {
    assertSame(await compare(staticCase('rram-clipformer', ['mapping.scale=column'], 200, 130, 13)));
  });

  it('a scale per tile on whole 64-column tiles (one gain per 16-column vector): the graph’s outputs', async () => {
    // 128 outputs: two column tiles of 64, as in DeiT-S's layers; the kernel multiplies 16 columns
    // by one gain at a time, and builds that gain from its own DAC range
    assertSame(await compare(staticCase('rram-clipformer', [], 100, 128, 13)));
  });

  it('a fixed DAC range (codes and gain from the graph, inputs beyond it clipped): the graph’s outputs', async () => {
    assertSame(
      await compare(staticCase('rram-clipformer', ['dac.range={kind: fixed, max: 1.5}'], 100, 128, 13)),
    );
  });

  it('1-bit SRAM cells (8 slices), no noise: the graph’s outputs', async () => {
    const r = await compare(staticCase('sram-trex', [], 64, 70, 21));
    assertSame(r);
  });

  it('names the argument, the size it needs and the type on bad input', () => {
    useNativeKernels(true); // the comparisons above leave them off
    const k = nativeKernels()!;
    const dims = { B: 1, Bw: 1, R: 1, N: 2, rows: 4, C: 3, J: 1, planes: 2, levels: 7, threads: 1 };
    const ok = {
      ...dims,
      codes: new Float32Array(8),
      weights: new Float32Array(12),
      weightScale: 1,
      squares: null,
      squareScale: 0,
      coef: new Float32Array(2),
    };
    assert.equal(k.crossbarProducts(ok).length, 6);
    assert.throws(
      () => k.crossbarProducts({ ...ok, codes: new Float32Array(7) }),
      /'codes' must be a Float32Array of 8 values/,
    );
    assert.throws(
      () => k.crossbarProducts({ ...ok, noiseSeeds: new Uint32Array(1) }),
      /'noiseSeeds' must be a Uint32Array of one seed per plane, or null/,
    );
    assert.throws(
      () => k.crossbarProducts({ ...ok, noiseSeeds: new Uint32Array(2), samples: 3 }),
      /'samples' must divide B \(samplesAlongB\) or N/,
    );
    assert.throws(
      () => k.crossbarProducts({ ...ok, out: new Float32Array(5) }),
      /'out' must be a Float32Array of 6 values/,
    );
  });

  it('fills a levelled cache for static cells, reads it at the next call, and rebuilds it for other dims', () => {
    useNativeKernels(true);
    const k = nativeKernels()!;
    const [R, N, rows, C, J, planes] = [2, 5, 64, 32, 4, 3];
    const rng = new Rng(8);
    const digits = Int8Array.from({ length: J * R * rows * C }, () => Math.floor(rng.uniform() * 7) - 3);
    const args = {
      B: 1,
      Bw: 1,
      R,
      N,
      rows,
      C,
      J,
      planes,
      levels: 31,
      threads: 2,
      codes: Float32Array.from({ length: R * N * rows }, () => Math.floor(rng.uniform() * 15) - 7),
      weights: Float32Array.from(digits, (d) => d / 3),
      weightScale: 1,
      squares: Float32Array.from(digits, (d) => (0.01 + Math.abs(d) / 3) ** 2),
      squareScale: 0.01,
      noiseSeeds: Uint32Array.from({ length: planes }, (_, p) => p + 1),
      coef: Float32Array.from({ length: planes * J }, (_, i) => 2 ** -i),
    };
    const cache: { handle?: unknown } = {};
    const first = k.crossbarProducts({ ...args, levelledCache: cache });
    assert.equal(typeof cache.handle, 'object', 'the kernel left its levelled form');
    const handle = cache.handle;
    assert.deepEqual(k.crossbarProducts({ ...args, levelledCache: cache }), first);
    assert.equal(cache.handle, handle, 'the same form was read, not rebuilt');
    // the form is what is read: cells changed in place (which xbar never does) keep their old
    // levelled form, while a fresh cache sees the new cells
    const weights = args.weights.map((w) => -w);
    assert.deepEqual(k.crossbarProducts({ ...args, weights, levelledCache: cache }), first);
    assert.notDeepEqual(k.crossbarProducts({ ...args, weights, levelledCache: {} }), first);
    // another square scale does not match the kept form: rebuilt
    k.crossbarProducts({ ...args, squareScale: 0.02, levelledCache: cache });
    assert.notEqual(cache.handle, handle);
  });

  /**
   * x·w with w [b, h, rows, cols] written per input on rram-clipformer's attention crossbars
   * with `sets`: the kernel writes the cells itself (the same write noise the graph reads).
   */
  const writtenCase = (
    sets: string[],
    rows: number,
    cols: number,
    transform?: ConductanceTransform,
  ): Case => {
    const xbar = loadSpec('rram-clipformer', sets).attention!;
    const [b, h, n] = [2, 3, 11];
    const rng = new Rng(3);
    const x = hostArray('float32', [b, h, n, rows], rng.fillNormal(new Float32Array(b * h * n * rows)));
    const w = hostArray('float32', [b, h, rows, cols], rng.fillNormal(new Float32Array(b * h * rows * cols)));
    return {
      build: () =>
        dynamicProduct(input('x', [b, h, n, rows]), input('w', [b, h, rows, cols]), xbar, 99, transform),
      feeds: { x, w },
    };
  };

  it('K written per input (one weight set per batch and head) with read noise, no write noise: the graph’s outputs', async () => {
    assertSame(await compare(writtenCase(['attention.device.program.kind=none'], 64, 40)));
  });

  it('K and V written per input with each kind of write noise: the graph’s outputs, from the same noise', async () => {
    // writeSqrt (rram-clipformer's) on K-like (64 rows) and V-like (3 row tiles, padded) operands
    assertSame(await compare(writtenCase([], 64, 100)));
    assertSame(await compare(writtenCase([], 150, 64)));
    // every kind the kernel knows (a kind it computed with another's formula differs by percents)
    const programs = {
      none: '{kind: none}',
      relative: '{kind: relative, sigma: 0.2}',
      writeSqrt: '{kind: writeSqrt, gamma: 2, sigma: 0.15}',
      additive: '{kind: additive, sigma: 0.03}',
      pcm: '{kind: pcm, scale: 1}',
    } satisfies Record<WriteKind, string>;
    assert.deepEqual(Object.keys(programs).sort(), Object.keys(WRITE_KINDS).sort());
    for (const program of Object.values(programs))
      assertSame(await compare(writtenCase([`attention.device.program=${program}`], 64, 40)));
  });

  it('was compiled with the write-noise codes and pcm fit of src/analog/write-noise.ts', () => {
    useNativeKernels(true);
    assert.equal(nativeKernels()!.constants, JSON.stringify(NATIVE_CONSTANTS));
    const k = nativeKernels()!;
    const dims = { B: 1, Bw: 1, R: 1, N: 2, rows: 4, C: 3, J: 1, planes: 2, levels: 7, threads: 1 };
    const written = {
      ...dims,
      codes: new Float32Array(8),
      unit: new Float32Array(12),
      writeNoise: null,
      writeNoiseScale: 0,
      cellLevels: 0,
      cellBase: 1,
      gMin: 0,
      gMax: 1,
      dG: 1,
      dGSquared: 1,
      writeSquares: false,
      weightScale: 1,
      squareScale: 0,
      coef: new Float32Array(2),
    };
    assert.equal(k.crossbarProducts({ ...written, writeKind: WRITE_KINDS.none.code }).length, 6);
    const unknown = Math.max(...Object.values(WRITE_KINDS).map((d) => d.code)) + 1;
    assert.throws(
      () => k.crossbarProducts({ ...written, writeKind: unknown }),
      new RegExp(
        `writeKind must be one of ${Object.entries(WRITE_KINDS)
          .map(([n, d]) => `${d.code} ${n}`)
          .join(', ')}`,
      ),
    );
  });

  it('written analog cells, and ClipFormer’s transform before the write: the graph’s outputs', async () => {
    assertSame(await compare(writtenCase(['attention.device.cells.kind=analog'], 64, 40)));
    const clip = clipformerTransform(parseClipFormer({ alpha: 2, beta: 0.5 }));
    assertSame(await compare(writtenCase([], 64, 40, clip)));
  });
});
