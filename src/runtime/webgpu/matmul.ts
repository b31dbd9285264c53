/**
 * The graph's `matmul` on the GPU: [..., M, K] × [..., K, N] → [..., M, N] in fp32, batch dims
 * broadcast as in NumPy. Each workgroup computes one tile of the output from tiles of A and B
 * staged in workgroup memory; each thread keeps a block of outputs in registers (register
 * tiling), so every value read from workgroup memory feeds several multiply-adds. The source is
 * generated per shape: loops are unrolled, vec4 loads and stores are used where a row's length
 * is a multiple of 4, and bounds checks appear only along a dimension the tile does not divide.
 * No subgroup or other optional feature is used, so it runs on every adapter (compatibility
 * mode included); it needs 256 invocations per workgroup (the core default).
 */
import type { KernelSpec } from '../../graph/gpu-kernel.js';
import { fmtShape, GraphError, numel, type Shape, strides } from '../../graph/shape.js';

/**
 * A tile configuration: the workgroup computes `m` × `n` outputs, stepping through K by `k`;
 * each of its (m/rm)·(n/rn) threads computes `rm` × `rn` of them (multiples of 4).
 */
export interface MatmulTile {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly rm: number;
  readonly rn: number;
}

export const tileName = (t: MatmulTile): string => `${t.m}x${t.n}x${t.k}/${t.rm}x${t.rn}`;

/**
 * The configurations `matmulKernel` chooses among, with the share of the largest one's rate
 * each is expected to reach on a full GPU (smaller tiles reuse each loaded value less).
 */
export const MATMUL_TILES: readonly { tile: MatmulTile; efficiency: number }[] = [
  { tile: { m: 128, n: 128, k: 8, rm: 8, rn: 8 }, efficiency: 1 },
  { tile: { m: 128, n: 64, k: 16, rm: 8, rn: 4 }, efficiency: 0.85 },
  { tile: { m: 64, n: 64, k: 16, rm: 4, rn: 4 }, efficiency: 0.7 },
  { tile: { m: 32, n: 32, k: 16, rm: 4, rn: 4 }, efficiency: 0.4 },
];

/** Workgroups below which a GPU is taken to be partly idle (a few per multiprocessor on large GPUs). */
const FULL_GPU_WORKGROUPS = 512;

/** The product's dimensions once batch dims are collapsed; a weight shared by all rows folds the batch into M. */
interface Problem {
  batch: number;
  m: number;
  n: number;
  k: number;
  /** Element offsets of A's and B's matrices for a batch index, as WGSL statements. */
  offsets: string;
}

/** The kernel for `matmul` on these shapes, with the tile configuration expected to be fastest. */
export function matmulKernel(aShape: Shape, bShape: Shape, outShape: Shape): KernelSpec {
  const p = problem(aShape, bShape, outShape);
  return matmulKernelWith(aShape, bShape, outShape, chooseTile(p));
}

/** The kernel for `matmul` on these shapes with a given tile configuration (benchmarks compare them). */
export function matmulKernelWith(
  aShape: Shape,
  bShape: Shape,
  outShape: Shape,
  tile: MatmulTile,
): KernelSpec {
  const p = problem(aShape, bShape, outShape);
  const tiles = Math.ceil(p.m / tile.m) * Math.ceil(p.n / tile.n) * p.batch;
  const gy = Math.ceil(tiles / 65535);
  const gx = Math.ceil(tiles / gy);
  return { code: source(p, tile, gx, gx * gy !== tiles), inputs: 2, grid: [gx, gy, 1] };
}

/** The tile with the least expected time: padded work over its efficiency, more where it leaves the GPU idle. */
function chooseTile(p: Problem): MatmulTile {
  let best = MATMUL_TILES[0]!.tile;
  let bestCost = Infinity;
  for (const { tile, efficiency } of MATMUL_TILES) {
    const tm = Math.ceil(p.m / tile.m);
    const tn = Math.ceil(p.n / tile.n);
    const workgroups = tm * tn * p.batch;
    const padded = tm * tile.m * tn * tile.n;
    const cost = (padded / efficiency) * Math.max(1, FULL_GPU_WORKGROUPS / workgroups);
    if (cost < bestCost) [best, bestCost] = [tile, cost];
  }
  return best;
}

function problem(aShape: Shape, bShape: Shape, outShape: Shape): Problem {
  const [ra, rb, r] = [aShape.length, bShape.length, outShape.length];
  const m = outShape[r - 2]!;
  const n = outShape[r - 1]!;
  const k = aShape[ra - 1]!;
  if (ra < 2 || rb < 2 || aShape[ra - 2] !== m || bShape[rb - 1] !== n || bShape[rb - 2] !== k) {
    throw new GraphError(
      'matmul',
      `shapes ${fmtShape(aShape)} × ${fmtShape(bShape)} → ${fmtShape(outShape)} do not multiply (need [..., M, K] × [..., K, N] → [..., M, N])`,
    );
  }
  const batchShape = outShape.slice(0, -2);
  const batch = numel(batchShape);
  const aBatch = numel(aShape.slice(0, -2));
  const bBatch = numel(bShape.slice(0, -2));
  // a weight shared by every matrix of a contiguous A: one [batch·M, K] × [K, N] product
  if (bBatch === 1 && aBatch === batch) return { batch: 1, m: batch * m, n, k, offsets: '' };
  return { batch, m, n, k, offsets: batchOffsets(batchShape, aShape, bShape, m * k, k * n) };
}

/**
 * WGSL computing `aOff` and `bOff` (element offsets of the batch's A and B) from `bi`, the
 * index into the output's batch dims: broadcast dims (size 1 or missing) step by 0. Runs of
 * dims along which both step contiguously are merged, so common cases take one division or none.
 */
function batchOffsets(batch: Shape, aShape: Shape, bShape: Shape, aMat: number, bMat: number): string {
  const stepsOf = (s: Shape, mat: number) => {
    const own = s.slice(0, -2);
    const st = strides(own);
    const pad = batch.length - own.length;
    return batch.map((_, i) => (i < pad || own[i - pad] === 1 ? 0 : st[i - pad]! * mat));
  };
  const sa = stepsOf(aShape, aMat);
  const sb = stepsOf(bShape, bMat);
  // merged dims, innermost first: [size, a step, b step]
  const dims: [number, number, number][] = [];
  for (let i = batch.length - 1; i >= 0; i--) {
    if (batch[i] === 1) continue;
    const last = dims[dims.length - 1];
    if (last && sa[i] === last[1] * last[0] && sb[i] === last[2] * last[0]) last[0] *= batch[i]!;
    else dims.push([batch[i]!, sa[i]!, sb[i]!]);
  }
  const lines = ['var r = bi;', 'var aOff = 0u;', 'var bOff = 0u;'];
  for (const [i, [size, a, b]] of dims.entries()) {
    const idx = i === dims.length - 1 ? 'r' : `(r % ${size}u)`;
    if (a) lines.push(`aOff += ${idx} * ${a}u;`);
    if (b) lines.push(`bOff += ${idx} * ${b}u;`);
    if (i < dims.length - 1) lines.push(`r = r / ${size}u;`);
  }
  return lines.join('\n  ');
}

/** The kernel's WGSL: tile loads, the unrolled multiply-adds over one K step, the stores. */
function source(p: Problem, t: MatmulTile, gx: number, overshoot: boolean): string {
  const { m, n, k } = p;
  const tx = t.n / t.rn;
  const ty = t.m / t.rm;
  const threads = tx * ty;
  const vecA = k % 4 === 0;
  const vecB = n % 4 === 0;
  const [mq, nq, kq] = [t.m / 4, t.n / 4, t.k / 4];
  const rowCheck = m % t.m !== 0;
  const colCheck = n % t.n !== 0;
  const kCheck = k % t.k !== 0;
  const tilesN = Math.ceil(n / t.n);
  const tilesM = Math.ceil(m / t.m);
  const cond = (...cs: (string | false)[]) => cs.filter(Boolean).join(' && ');

  // The next K step's tiles are read from storage into registers while this step's are
  // multiplied (prefetch), then stored to workgroup memory after the barrier. Each thread moves
  // the same chunks at every step, so their coordinates are computed once.
  // A tile: m rows × k, read as quads along K, stored transposed (K-major) as quads of rows.
  // B tile: k rows × n, quads along N.
  const setup: string[] = [];
  const fetch: string[] = [];
  const stage: string[] = [];
  const chunks = (
    name: string,
    count: number,
    perRow: number,
    load: (c: string) => string[],
    store: (c: string) => string[],
  ) => {
    for (let c = 0; c < Math.ceil(count / threads); c++) {
      const id = `${name}${c}`;
      const partial = (c + 1) * threads > count;
      setup.push(
        `let ${id}r = (tid + ${c * threads}u) / ${perRow}u;`,
        `let ${id}q = (tid + ${c * threads}u) % ${perRow}u;`,
        `var ${id} = vec4<f32>();`,
      );
      const guard = (lines: string[]) =>
        partial ? [`if (tid + ${c * threads}u < ${count}u) {`, ...lines, '}'] : lines;
      fetch.push(...guard(load(id)));
      stage.push(...guard(store(id)));
    }
  };
  /**
   * Reads into `reg` the 4 values of `buf` at `row + at`, along a row of `len` (vec4 where rows
   * are whole quads); `inRow`: whether `at` needs its check, `other`: the other axis's check.
   */
  const quad = (
    reg: string,
    buf: string,
    vec: boolean,
    row: string,
    at: string,
    len: string,
    inRow: boolean,
    other: string | false,
  ) => {
    if (vec) {
      const g = cond(other, inRow && `${at} < ${len}`);
      const load = `${reg} = ${buf}[(${row} + ${at}) / 4u];`;
      return [g ? `if (${g}) { ${load} }` : load];
    }
    return [0, 1, 2, 3].map(
      (e) =>
        `if (${cond(other, `${at} + ${e}u < ${len}`)}) { ${reg}[${e}] = ${buf}[${row} + ${at} + ${e}u]; }`,
    );
  };
  chunks(
    'pa',
    t.m * kq,
    kq,
    (c) => [
      `{ let gr = m0 + ${c}r; let gk = k0 + ${c}q * 4u; ${c} = vec4<f32>();`,
      ...quad(c, 'a', vecA, 'aOff + gr * K', 'gk', 'K', kCheck, rowCheck && 'gr < M'),
      '}',
    ],
    (c) =>
      [0, 1, 2, 3].map((e) => `As[${c}q * ${4 * mq}u + ${c}r / 4u + ${e * mq}u][${c}r % 4u] = ${c}[${e}];`),
  );
  chunks(
    'pb',
    t.k * nq,
    nq,
    (c) => [
      `{ let gk = k0 + ${c}r; let gc = n0 + ${c}q * 4u; ${c} = vec4<f32>();`,
      ...quad(c, 'b', vecB, 'bOff + gk * N', 'gc', 'N', colCheck, kCheck && 'gk < K'),
      '}',
    ],
    (c) => [`Bs[${c}r * ${nq}u + ${c}q] = ${c};`],
  );

  // thread (x, y) owns row quads y + i·ty and column quads x + j·tx: neighbouring threads read
  // neighbouring quads of workgroup memory, and write neighbouring quads of the output
  const RI = t.rm / 4;
  const CJ = t.rn / 4;
  const acc = (i: number, e: number, j: number) => `c${i}_${e}_${j}`;
  const decl: string[] = [];
  for (let i = 0; i < RI; i++)
    for (let e = 0; e < 4; e++) for (let j = 0; j < CJ; j++) decl.push(`var ${acc(i, e, j)} = vec4<f32>();`);
  const fmas: string[] = [];
  for (let kk = 0; kk < t.k; kk++) {
    for (let i = 0; i < RI; i++) fmas.push(`let a${i}_${kk} = As[${kk * mq}u + ly + ${i * ty}u];`);
    for (let j = 0; j < CJ; j++) fmas.push(`let b${j}_${kk} = Bs[${kk * nq}u + lx + ${j * tx}u];`);
    for (let i = 0; i < RI; i++)
      for (let e = 0; e < 4; e++)
        for (let j = 0; j < CJ; j++)
          fmas.push(`${acc(i, e, j)} = fma(vec4<f32>(a${i}_${kk}[${e}]), b${j}_${kk}, ${acc(i, e, j)});`);
  }
  const stores: string[] = [];
  for (let i = 0; i < RI; i++)
    for (let e = 0; e < 4; e++) {
      stores.push(`{ let row = m0 + (ly + ${i * ty}u) * 4u + ${e}u;`);
      if (rowCheck) stores.push('if (row < M) {');
      for (let j = 0; j < CJ; j++) {
        const col = `n0 + (lx + ${j * tx}u) * 4u`;
        if (vecB) {
          const store = `c[(cOff + row * N + col${j}) / 4u] = ${acc(i, e, j)};`;
          stores.push(`{ let col${j} = ${col}; ${colCheck ? `if (col${j} < N) { ${store} }` : store} }`);
        } else {
          stores.push(`{ let col${j} = ${col};`);
          for (let f = 0; f < 4; f++)
            stores.push(
              `if (col${j} + ${f}u < N) { c[cOff + row * N + col${j} + ${f}u] = ${acc(i, e, j)}[${f}]; }`,
            );
          stores.push('}');
        }
      }
      if (rowCheck) stores.push('}');
      stores.push('}');
    }

  const arr = (vec: boolean) => (vec ? 'array<vec4<f32>>' : 'array<f32>');
  return `// matmul ${p.batch}×[${m}, ${k}]×[${k}, ${n}], tile ${tileName(t)}
@group(0) @binding(0) var<storage, read> a: ${arr(vecA)};
@group(0) @binding(1) var<storage, read> b: ${arr(vecB)};
@group(0) @binding(2) var<storage, read_write> c: ${arr(vecB)};
const M = ${m}u;
const N = ${n}u;
const K = ${k}u;
var<workgroup> As: array<vec4<f32>, ${t.k * mq}>;
var<workgroup> Bs: array<vec4<f32>, ${t.k * nq}>;

@compute @workgroup_size(${tx}, ${ty}, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let tile = wg.x + wg.y * ${gx}u;
  ${overshoot ? `if (tile >= ${tilesN * tilesM * p.batch}u) { return; }` : ''}
  let n0 = (tile % ${tilesN}u) * ${t.n}u;
  let m0 = ((tile / ${tilesN}u) % ${tilesM}u) * ${t.m}u;
  let bi = tile / ${tilesN * tilesM}u;
  ${p.offsets || 'let aOff = 0u;\n  let bOff = 0u;'}
  let cOff = bi * M * N;
  let lx = lid.x;
  let ly = lid.y;
  let tid = ly * ${tx}u + lx;
  ${decl.join('\n  ')}
  ${setup.join('\n  ')}
  {
    let k0 = 0u;
    ${fetch.join('\n    ')}
  }
  for (var k0 = 0u; k0 < K; k0 += ${t.k}u) {
    ${stage.join('\n    ')}
    workgroupBarrier();
    ${
      k > t.k
        ? `if (k0 + ${t.k}u < K) {
      let k0 = k0 + ${t.k}u;
      ${fetch.join('\n      ')}
    }`
        : ''
    }
    ${fmas.join('\n    ')}
    workgroupBarrier();
  }
  ${stores.join('\n  ')}
}
`;
}
