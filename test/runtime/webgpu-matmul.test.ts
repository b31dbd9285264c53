/**
 * The GPU matmul kernel against the float64 reference: transformer shapes (linear layers with a
 * weight shared over the batch, attention's batched products), broadcast batch dims, sizes the
 * tiles do not divide, M = 1, K = 1, every tile configuration, and a batch beyond one grid row.
 * Each output is within 1e-5 of the Cauchy–Schwarz bound |a_i|·|b_j| of its row and column
 * (fp32 accumulation over K ≤ 1536 errs by a few 1e-7 of it).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { matmulRef, ref } from '../../src/graph/ndarray.js';
import { broadcastShapes, numel, type Shape } from '../../src/graph/shape.js';
import { MATMUL_TILES, matmulKernel, matmulKernelWith, tileName } from '../../src/runtime/webgpu/matmul.js';
import { Rng } from '../../src/util/math.js';
import { gpuDevice, releaseGpu, runKernel } from '../helpers/webgpu.js';

const gpu = await gpuDevice();
const skip = 'skip' in gpu ? gpu.skip : false;
after(() => releaseGpu('skip' in gpu ? undefined : gpu.device));

const outShape = (a: Shape, b: Shape): number[] => [
  ...broadcastShapes('matmul', a.slice(0, -2), b.slice(0, -2)),
  a[a.length - 2]!,
  b[b.length - 1]!,
];

/** Runs the kernel (`tile`: a given configuration, else the chosen one) on random inputs and checks it. */
async function check(a: Shape, b: Shape, tile?: (typeof MATMUL_TILES)[number]['tile']): Promise<void> {
  if ('skip' in gpu) return;
  const rng = new Rng(numel(a) + numel(b));
  const x = rng.fillNormal(new Float32Array(numel(a)));
  const y = rng.fillNormal(new Float32Array(numel(b)));
  const out = outShape(a, b);
  const spec = tile ? matmulKernelWith(a, b, out, tile) : matmulKernel(a, b, out);
  const got = await runKernel(gpu.device, spec, [x, y], numel(out));
  // the reference, and each output's bound |a_i|·|b_j| from the squares' product
  const want = matmulRef(ref(a, x), ref(b, y), out).data;
  const sq = (v: number) => v * v;
  const bound = matmulRef(ref(a, x.map(sq)), ref(b, y.map(sq)), out).data;
  let worst = 0;
  let at = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i]! - want[i]!) / Math.sqrt(bound[i]!);
    if (!(e <= worst)) [worst, at] = [e, i];
  }
  assert.ok(
    worst <= 1e-5,
    `[${a}]×[${b}]: output ${at} is ${got[at]}, the reference ${want[at]} (${worst.toExponential(2)} of its bound)`,
  );
}

describe('the WebGPU matmul kernel', { skip }, () => {
  it('multiplies the linear layers of DeiT-S and BERT (weight shared over batch and tokens)', async () => {
    await check([2, 197, 384], [384, 1152]);
    await check([1, 128, 768], [768, 384]);
    await check([1, 197, 1536], [1536, 384]);
  });

  it("multiplies attention's batched products (scores and weighted values)", async () => {
    await check([2, 6, 197, 64], [2, 6, 64, 197]);
    await check([2, 6, 197, 197], [2, 6, 197, 64]);
    await check([1, 12, 128, 64], [1, 12, 64, 128]);
  });

  it('broadcasts batch dims of either side', async () => {
    await check([5, 7], [3, 7, 6]);
    await check([2, 1, 9, 8], [1, 3, 8, 10]);
    await check([3, 1, 4, 5], [2, 5, 6]);
    await check([2, 3, 4, 8], [3, 8, 12]);
    await check([1, 1, 16, 8], [1, 1, 8, 16]);
  });

  it('handles sizes the tiles do not divide, rows not a multiple of 4, M = 1 and K = 1', async () => {
    await check([37, 19], [19, 53]);
    await check([130, 77], [77, 129]);
    await check([1, 384], [384, 1152]);
    await check([1, 3], [3, 1]);
    await check([5, 1], [1, 7]);
    await check([4, 3, 1], [4, 1, 6]);
    await check([66, 4], [4, 10]);
  });

  it('is right with every tile configuration', async () => {
    for (const { tile } of MATMUL_TILES) {
      await check([67, 45], [45, 71], tile);
      await check([2, 128, 64], [2, 64, 256], tile);
      await check([3, 20, 33], [33, 8], tile);
    }
  });

  it('spreads more than 65,535 workgroups over two grid dims', async () => {
    const spec = matmulKernel([65537, 1, 2], [65537, 2, 3], [65537, 1, 3]);
    assert.ok(spec.grid[1] > 1 && spec.grid.every((g) => g <= 65535), `grid ${spec.grid}`);
    await check([65537, 1, 2], [65537, 2, 3]);
  });
});

describe('the WebGPU matmul source', () => {
  it('has no bounds checks and loads vec4 where the tiles divide the shape', () => {
    const spec = matmulKernelWith([256, 64], [64, 256], [256, 256], MATMUL_TILES[0]!.tile);
    assert.doesNotMatch(spec.code, /\b(gr|gk|gc|row|col\d)( \+ \du)? < [MNK]\b/);
    assert.match(spec.code, /var<storage, read> a: array<vec4<f32>>/);
    const odd = matmulKernelWith([250, 63], [63, 255], [250, 255], MATMUL_TILES[0]!.tile);
    assert.match(odd.code, /gr < M/);
    assert.match(odd.code, /var<storage, read> a: array<f32>/);
  });

  it('folds the batch into the rows for a weight shared by a contiguous input', () => {
    const spec = matmulKernel([64, 197, 384], [384, 1152], [64, 197, 1152]);
    assert.match(spec.code, /const M = 12608u;/);
    assert.ok(MATMUL_TILES.some(({ tile }) => spec.code.includes(`tile ${tileName(tile)}`)));
  });

  it('rejects shapes that do not multiply, naming them', () => {
    assert.throws(() => matmulKernel([2, 3], [4, 5], [2, 5]), /\[2, 3\] × \[4, 5\]/);
  });
});
