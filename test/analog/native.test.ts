/**
 * The native fused crossbar kernel (native/crossbar_products.cc) against the ONNX graph it
 * replaces, for every prebuilt target this CPU runs (XBAR_KERNEL picks each) and the
 * WebAssembly build (XBAR_KERNEL=wasm), and its arm64 build (through the kernel harness under
 * qemu-aarch64) against the x64 kernel. The kernel draws the graph's noise itself (the same
 * generator, keyed by the same seed, sample and place), so both give the same outputs, up to
 * sums that land on an ADC rounding edge in one summation order and not the other.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { arch, platform, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AnalogModel } from '../../src/analog/analog-model.js';
import { type ConductanceTransform, dynamicProduct } from '../../src/analog/dynamic.js';
import { loadSpec, PRESET_NAMES } from '../../src/analog/presets.js';
import { NATIVE_CONSTANTS, WRITE_KINDS, type WriteKind } from '../../src/analog/write-noise.js';
import { type HostArray, hostArray } from '../../src/graph/ndarray.js';
import { input, param, type Tensor } from '../../src/graph/tensor.js';
import { clipformerTransform, parseClipFormer } from '../../src/methods/clipformer.js';
import {
  type CrossbarProductsArgs,
  nativeKernels,
  nativeTargets,
  useNativeKernels,
} from '../../src/runtime/native.js';
import { compile } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/math.js';
import { ROOT } from '../helpers/models.js';

const wasOn = useNativeKernels(true);
const targets = nativeTargets();
const forced = process.env['XBAR_KERNEL'];
after(() => {
  if (forced === undefined) delete process.env['XBAR_KERNEL'];
  else process.env['XBAR_KERNEL'] = forced;
  useNativeKernels(wasOn);
});

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
  /** A calibrated ADC range's values per (row tile, column). */
  adcRanges?: Float32Array,
): Case {
  const spec = loadSpec(preset, sets);
  const rng = new Rng(17);
  const w = hostArray('float32', [inDim, outDim], rng.fillNormal(new Float32Array(inDim * outDim), 0, 0.05));
  const x = hostArray('float32', [n, tokens, inDim], rng.fillNormal(new Float32Array(n * tokens * inDim)));
  return {
    build: () => {
      const analog = new AnalogModel(spec, 5);
      if (adcRanges) analog.setAdcRanges(new Map([['layer.0.ffnIn', adcRanges]]));
      return analog.linear('layer.0.ffnIn', input('x', [n, tokens, inDim]), param('w', w));
    },
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

for (const target of [...(targets.length > 0 ? targets : [undefined]), 'wasm'])
  describe(target === 'wasm'
    ? 'the WebAssembly crossbar kernel'
    : `the native crossbar kernel, ${target ?? 'no target'}`, {
    skip: target ? false : 'no native kernel runs on this CPU',
  }, () => {
    before(() => {
      process.env['XBAR_KERNEL'] = target;
      useNativeKernels(true);
    });

    it('is the build for this target', () => {
      useNativeKernels(true);
      assert.ok(nativeKernels(), `the ${target} kernel loads`);
    });

    it('every bit-serial preset’s static layers: the graph’s outputs', async () => {
      const bitSerial = PRESET_NAMES.filter((p) => {
        const dac = loadSpec(p, []).crossbar('layer.0.ffnIn').dac;
        return dac.kind === 'uniform' && dac.mode === 'bitSerial';
      });
      assert.ok(bitSerial.length >= 4, `bit-serial presets: ${bitSerial.join(', ')}`);
      for (const preset of bitSerial) assertSame(await compare(staticCase(preset, [], 100, 40, 13)));
    });
    it('bit-serial inputs × 2-bit slices with read noise and a 6-bit ADC (rram-clipformer): the graph’s outputs', async () => {
      // 100 inputs: a full and a zero-padded row tile; 40 columns: two 16-column chunks and a tail
      assertSame(await compare(staticCase('rram-clipformer', [], 100, 40, 37)));
      // 3 samples of 13 tokens: the kernel keys the noise by sample along N
      assertSame(await compare(staticCase('rram-clipformer', [], 100, 40, 3, 13)));
    });

    it('cells programmed without and with noise give the graph’s outputs under strong read noise', async () => {
      // without programming noise the cells hold one of 7 levels; strong read noise makes every
      // variance term matter at the ADC
      for (const program of ['{kind: none}', '{kind: relative, sigma: 0.02}'])
        assertSame(
          await compare(
            staticCase('rram-clipformer', ['readNoise.sigma=0.4', `program=${program}`], 100, 40, 37),
          ),
        );
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

    it('a calibrated ADC range per row tile and column (many conversions saturating): the graph’s outputs', async () => {
      // 2 row tiles × 40 columns, ranges 0.2…3.2 normalised units against a full scale of 64
      const rng = new Rng(4);
      const ranges = Float32Array.from({ length: 2 * 40 }, () => 0.2 + 3 * rng.uniform());
      assertSame(
        await compare(staticCase('rram-clipformer', ['adc.range.kind=calibrated'], 100, 40, 13, 1, ranges)),
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

    /**
     * x·w with w [b, h, rows, cols] written per input on rram-clipformer's attention crossbars
     * with `sets`: the kernel writes the cells itself (the same write noise the graph reads).
     */
    const writtenCase = (
      sets: string[],
      rows: number,
      cols: number,
      transform?: ConductanceTransform,
      adcRanges?: Float32Array,
    ): Case => {
      const xbar = loadSpec('rram-clipformer', sets).attention!;
      const [b, h, n] = [2, 3, 11];
      const rng = new Rng(3);
      const x = hostArray('float32', [b, h, n, rows], rng.fillNormal(new Float32Array(b * h * n * rows)));
      const w = hostArray(
        'float32',
        [b, h, rows, cols],
        rng.fillNormal(new Float32Array(b * h * rows * cols)),
      );
      return {
        build: () =>
          dynamicProduct(input('x', [b, h, n, rows]), input('w', [b, h, rows, cols]), xbar, 99, transform, {
            ranges: adcRanges,
          }),
        feeds: { x, w },
      };
    };

    it('K written per input (one weight set per batch and head) with read noise, no write noise: the graph’s outputs', async () => {
      assertSame(await compare(writtenCase(['attention.device.program.kind=none'], 64, 40)));
    });

    it('K and V written per input with each kind of write noise: the graph’s outputs, from the same noise', async () => {
      // writeSqrt (rram-clipformer's) on K-like (64 rows) and V-like (3 row tiles, padded) operands,
      // per value (the graph writes the values, the kernel their cells) and per cell (the kernel
      // writes each cell with its noise)
      for (const per of ['value', 'cell']) {
        assertSame(await compare(writtenCase([`attention.device.program.per=${per}`], 64, 100)));
        assertSame(await compare(writtenCase([`attention.device.program.per=${per}`], 150, 64)));
      }
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

    it('V written per input with a calibrated ADC range per row tile and column (3 row tiles, 128 padded columns): the graph’s outputs', async () => {
      const rng = new Rng(8);
      const ranges = Float32Array.from({ length: 3 * 128 }, () => 0.2 + 3 * rng.uniform());
      assertSame(await compare(writtenCase(['adc.range.kind=calibrated'], 150, 100, undefined, ranges)));
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

    it('gives the same outputs on 1 and 2 threads', () => {
      useNativeKernels(true);
      const k = nativeKernels()!;
      // 3 row tiles × 5 column chunks × 37 vectors: work items for both threads
      const [R, N, rows, C, J, planes] = [3, 37, 64, 80, 4, 7];
      const rng = new Rng(9);
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
        codes: Float32Array.from({ length: R * N * rows }, () => Math.floor(rng.uniform() * 255) - 127),
        weights: rng.fillNormal(new Float32Array(J * R * rows * C), 0, 0.3),
        weightScale: 1,
        squares: Float32Array.from({ length: J * R * rows * C }, () => rng.uniform() * 0.1),
        squareScale: 0.01,
        noiseSeeds: Uint32Array.from({ length: planes }, (_, p) => p + 1),
        outSigma: 0.5,
        coef: Float32Array.from({ length: planes * J }, (_, i) => 2 ** -i),
        sumTiles: true,
      };
      const one = k.crossbarProducts({ ...args, threads: 1 });
      assert.ok(one.some((v) => v !== 0));
      assert.deepEqual(k.crossbarProducts({ ...args, threads: 2 }), one);
    });

    it('the arm64 build under qemu-aarch64, and the x64 harness, give this kernel’s outputs bit for bit', {
      skip: qemuMissing(),
    }, async () => {
      // the kernel's calls in a static layer (dynamic DAC range, gain, row tiles summed) and a
      // written operand with write noise, each checked against the graph as it runs
      const calls: { args: CrossbarProductsArgs; out: Float32Array }[] = [];
      useNativeKernels(true);
      const k = nativeKernels()!;
      const products = k.crossbarProducts;
      k.crossbarProducts = (args) => {
        const out = products(args);
        calls.push({ args, out: out.slice() });
        return out;
      };
      try {
        assertSame(await compare(staticCase('rram-clipformer', ['program={kind: none}'], 100, 40, 13)));
        assertSame(await compare(writtenCase(['attention.device.program={kind: pcm, scale: 1}'], 150, 40)));
      } finally {
        k.crossbarProducts = products;
      }
      assert.equal(calls.length, 2);
      const dir = mkdtempSync(join(tmpdir(), 'xbar-harness-'));
      try {
        for (const [i, call] of calls.entries()) {
          const file = join(dir, `args-${i}`);
          writeFileSync(file, harnessArgs(call.args));
          const runs: [string, string[]][] = [['qemu-aarch64', [harness('linux-arm64')]]];
          if (`${platform()}-${arch()}` === 'linux-x64') runs.push([harness('linux-x64'), []]);
          for (const [command, first] of runs) {
            const out = join(dir, `out-${i}`);
            const r = spawnSync(command, [...first, file, out], { encoding: 'utf8' });
            assert.equal(r.status, 0, `${command} ${first.join(' ')}: ${r.stderr}`);
            const got = new Float32Array(new Uint8Array(readFileSync(out)).buffer);
            assert.deepEqual(got, call.out, `${command} ${first.join(' ')}: call ${i}`);
          }
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

/** The committed kernel harness (native/harness.cc, built static by scripts/build-native.mjs) for a platform. */
const harness = (dir: string) => join(ROOT, 'prebuilds', 'harness', dir, 'xbar_kernel_harness');

/** Why the arm64 check cannot run here (no qemu-aarch64), or false. */
function qemuMissing(): string | false {
  const r = spawnSync('qemu-aarch64', ['--version']);
  return r.error || r.status !== 0 ? 'qemu-aarch64 is not installed (Debian: qemu-user)' : false;
}

/** One kernel call's arguments in the harness's file format ("XBK1", then named fields). */
function harnessArgs(args: CrossbarProductsArgs): Uint8Array {
  const parts: Uint8Array[] = [new TextEncoder().encode('XBK1')];
  const u32 = (v: number) => new Uint8Array(Uint32Array.of(v).buffer);
  const floats = (a: Float32Array) => [u32(a.length), new Uint8Array(a.buffer, a.byteOffset, a.byteLength)];
  for (const [name, v] of Object.entries(args)) {
    if (v === null || v === undefined || name === 'out') continue;
    const key = new TextEncoder().encode(name);
    parts.push(u32(key.length), key);
    if (typeof v === 'number' || typeof v === 'boolean')
      parts.push(u32(0), new Uint8Array(Float64Array.of(Number(v)).buffer));
    else if (v instanceof Float32Array) parts.push(u32(1), ...floats(v));
    else if (v instanceof Uint32Array)
      parts.push(u32(3), u32(v.length), new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    else if (Array.isArray(v))
      parts.push(u32(2), u32(v.length), ...v.flatMap((a: Float32Array) => floats(a)));
    else throw new TypeError(`harness arguments: ${name} is neither a number nor float or u32 arrays`);
  }
  return Buffer.concat(parts);
}
