/**
 * The counter-based generator (src/util/philox.ts, native/philox.h): Philox's known answers,
 * the Gaussian's moments and independence (tolerances from the sample size), and the agreement
 * rule: the same bits in TypeScript and in the native kernels, on any number of threads.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type NativeKernels, nativeKernels } from '../../src/runtime/native.js';
import { wasmKernels } from '../../src/runtime/wasm.js';
import { boxMullerRadius, fillNoise, gaussianBlock, noiseLayout, philox4x32 } from '../../src/util/philox.js';

/** 5 standard errors: a correct generator fails one check in ~2 million runs. */
const Z = 5;

const hex = (a: Uint32Array) => [...a].map((x) => x.toString(16).padStart(8, '0')).join(' ');

/** N(0, 1) values of `columns` × `rows` elements of samples 0.., from seed. */
function draw(seed: number, rows: number, columns: number, firstSample = 0): Float32Array {
  const out = new Float32Array(rows * columns);
  fillNoise(out, noiseLayout([rows, columns], 0, rows), seed, 1, firstSample);
  return out;
}

function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sa = 0;
  let sb = 0;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  const n = a.length;
  for (let i = 0; i < n; i++) {
    sa += a[i]!;
    sb += b[i]!;
  }
  const ma = sa / n;
  const mb = sb / n;
  for (let i = 0; i < n; i++) {
    const x = a[i]! - ma;
    const y = b[i]! - mb;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  return sab / Math.sqrt(saa * sbb);
}

describe('Philox4x32-10', () => {
  it('gives the known answers of Salmon et al.’s reference implementation', () => {
    const out = new Uint32Array(4);
    philox4x32(0, 0, 0, 0, 0, 0, out);
    assert.equal(hex(out), '6627e8d5 e169c58d bc57ac4c 9b00dbd8');
    philox4x32(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, out);
    assert.equal(hex(out), 'd16cfe09 94fdcceb 5001e420 24126ea1');
  });
});

describe('the Gaussian transform', () => {
  it('gives the reference stream: 1.6 M values whose float32 bits hash as native/philox.h’s do', () => {
    // the same loop in C++ gives 2157e3d9 with GCC on x86-64 (AVX2 and AVX-512) and arm64
    // (under qemu), and with clang for WebAssembly SIMD
    const g = new Float32Array(16);
    const bits = new Uint32Array(g.buffer);
    let h = 0;
    for (let k = 0; k < 100000; k++) {
      for (let b = 0; b < 4; b++) gaussianBlock(k * 4 + b, k * 7, k % 13, 0, 12345 + (k % 3), 0, g, 4 * b);
      for (let e = 0; e < 16; e++) h = (Math.imul(h, 31) + bits[e]!) >>> 0;
    }
    assert.equal(h.toString(16).padStart(8, '0'), '2157e3d9');
  });

  const n = 2 ** 20;
  const z = draw(7, 1024, n / 1024);

  it('has mean 0, variance 1, skew 0 and kurtosis 3 (tolerances from the sample size)', () => {
    let m1 = 0;
    for (const v of z) m1 += v;
    m1 /= n;
    let m2 = 0;
    let m3 = 0;
    let m4 = 0;
    for (const v of z) {
      const d = v - m1;
      m2 += d * d;
      m3 += d * d * d;
      m4 += d * d * d * d;
    }
    m2 /= n;
    const skew = m3 / n / m2 ** 1.5;
    const kurtosis = m4 / n / (m2 * m2);
    // standard errors of a normal sample's moments: 1/√n, √(2/n), √(6/n), √(24/n)
    assert.ok(Math.abs(m1) < Z / Math.sqrt(n), `mean ${m1}`);
    assert.ok(Math.abs(m2 - 1) < Z * Math.sqrt(2 / n), `variance ${m2}`);
    assert.ok(Math.abs(skew) < Z * Math.sqrt(6 / n), `skew ${skew}`);
    assert.ok(Math.abs(kurtosis - 3) < Z * Math.sqrt(24 / n), `kurtosis ${kurtosis}`);
  });

  it('puts the normal’s share of values beyond 1, 2 and 3 σ (binomial tolerances)', () => {
    for (const [k, p] of [
      [1, 0.31731050786],
      [2, 0.0455002638],
      [3, 0.0026997961],
    ] as const) {
      const count = z.reduce((c, v) => c + (Math.abs(v) > k ? 1 : 0), 0);
      assert.ok(Math.abs(count / n - p) < Z * Math.sqrt((p * (1 - p)) / n), `beyond ${k}σ: ${count / n}`);
    }
  });

  it('is uncorrelated between lanes, neighbouring counters, rows, samples and keys (|r| < 5/√n)', () => {
    const columns = 64;
    const rows = 4096;
    const a = draw(7, rows, columns);
    const m = rows * (columns - 4);
    const pairs = (shift: number) => {
      // element (row, c) against (row, c + shift), c < columns − 4
      const x = new Float32Array(m);
      const y = new Float32Array(m);
      let k = 0;
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < columns - 4; c++) {
          x[k] = a[r * columns + c]!;
          y[k++] = a[r * columns + c + shift]!;
        }
      return correlation(x, y);
    };
    const bound = Z / Math.sqrt(m);
    // 1: cos and sin of one radius and angle (lanes 0 and 1); 2: the other pair of words; 4: the
    // next counter
    for (const shift of [1, 2, 3, 4])
      assert.ok(Math.abs(pairs(shift)) < bound, `lanes ${shift} apart: ${pairs(shift)}`);
    const half = rows / 2;
    const rowsApart = correlation(a.subarray(0, half * columns), a.subarray(half * columns));
    assert.ok(Math.abs(rowsApart) < Z / Math.sqrt(half * columns), `rows: ${rowsApart}`);
    // sample s + 1 of a run from sample 1 is sample s + 1 of a run from 0; neighbouring samples
    // are uncorrelated
    const nextSample = draw(7, rows, columns, 1);
    assert.deepEqual(a.subarray(columns), nextSample.subarray(0, (rows - 1) * columns));
    const samples = correlation(a, nextSample);
    assert.ok(Math.abs(samples) < Z / Math.sqrt(a.length), `samples s and s + 1: ${samples}`);
    const otherKey = draw(8, rows, columns);
    const r = correlation(a, otherKey);
    assert.ok(Math.abs(r) < Z / Math.sqrt(a.length), `keys 7 and 8: ${r}`);
  });

  it('ends its tails at the radius of the smallest uniform, 2^−32: |z| ≤ 6.67', () => {
    assert.ok(boxMullerRadius(0xffffffff) === 0, 'u = 1: radius 0');
    const top = boxMullerRadius(0);
    assert.ok(Math.abs(top - Math.sqrt(64 * Math.LN2)) < 1e-5, `${top}`);
    assert.ok(z.reduce((m, v) => Math.max(m, Math.abs(v)), 0) <= top);
  });
});

describe('the agreement rule', () => {
  // every kernel that fills noise leaves: the native build this CPU runs, and the WebAssembly one
  const native = nativeKernels();
  const wasm = wasmKernels();
  const kernels: [string, NativeKernels | null][] = [
    ['native', native],
    ['WebAssembly', 'kernels' in wasm ? wasm.kernels : null],
  ];
  for (const [name, k] of kernels)
    it(`fills the same bits in TypeScript and in the ${name} kernels on 1, 2 and 3 threads`, {
      skip: k ? false : `no ${name} kernels here`,
    }, () => {
      // [2, 3 samples × 5, 4, 37 columns]: a tail of 5 columns after 2 vectors of 16
      const shape = [2, 15, 4, 37];
      const layout = noiseLayout(shape, 1, 3);
      const size = shape.reduce((a, b) => a * b);
      const want = new Float32Array(size);
      fillNoise(want, layout, 0xdeadbeef, 0.25, 1000);
      for (const threads of [1, 2, 3]) {
        const got = new Float32Array(size);
        k!.fillNoise({ out: got, ...layout, seed: 0xdeadbeef, std: 0.25, firstSample: 1000, threads });
        assert.deepEqual(new Uint32Array(got.buffer), new Uint32Array(want.buffer), `${threads} threads`);
      }
    });
});
