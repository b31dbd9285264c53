/**
 * The crossbar products of programmed (static) weights, tiled like a matrix product: each thread
 * holds TV vectors × 4 columns, every plane's sums in registers, so that each weight it loads
 * serves TV vectors × all planes (the row-list kernel of crossbar.ts loads it once per vector).
 * It walks every row of a tile in row order, zero codes included (their products are exact zeros);
 * the native kernel adds the rows of positive codes first, then the negative ones, so the sums
 * before the ADC may differ from it in the last bits, within the agreement rule. Noise keys, ADC,
 * recombination, gains and the dynamic DAC range are crossbar.ts's.
 *
 * It takes what crossbar.ts's bit-float path takes (planes ≤ 8, tiles ≤ 256 rows) with an operand
 * programmed once (Bw = 1, not written per input): the static layers, where nearly all of a
 * bit-serial model's work is.
 *
 * Where the cells are small integers (`cellCodes`: noise-free bit slices) and the device's WGSL
 * has packed_4x8_integer_dot_product, the sums are integer dot products (dot4I8Packed) over 4
 * rows at a time: the workgroup holds each vector's plane bits (0, ±1) as 8-bit lanes of one u32
 * per 4 rows and plane, a dispatch before (packCodes) packs the cells' codes likewise, 4 rows
 * per u32, into a buffer of 3/4 the weights' bytes that the kernel reads in the weights' place,
 * and the sums are exact integers, converted to float32 once per conversion (the sums of squares
 * from Σ|bit|, Σ|bit|·|k| and Σ|bit|·k²).
 */
import type { KernelSpec } from '../../graph/gpu-kernel.js';
import type { CrossbarKernelArgs } from './crossbar.js';
import { adcGainsOf, conversion, dynamicCode, noiseKeys, productsHead, storeFn } from './crossbar-parts.js';
import { f32Literal, linearGrid } from './philox.js';

/** Threads per workgroup. */
const GROUP = 64;
/** Workgroup memory for the tile's input bits (per vector, float32: two vec4 per row; integer: a vec4 per 4 rows and 4 planes). */
const BITS_BYTES = 12_288;

/** Whether the tiled kernel takes these products. */
export const tiledFits = (a: CrossbarKernelArgs): boolean =>
  a.written === null && a.Bw === 1 && a.planes <= 8 && a.rows <= 256 && 32 * a.rows <= BITS_BYTES;

/** Whether the tiled kernel, where it takes the products (tiledFits), sums them as integer dot products. */
export const packedFits = (a: CrossbarKernelArgs): boolean =>
  !!a.cellCodes && a.dot4 === true && a.layout !== 'float';

/** Column quads per workgroup: a power of two in [lo, 64] that pads the columns least (the larger on ties). */
function quadsPerGroup(quads: number, lo: number): number {
  let best = 64;
  for (let q = 64; q >= lo; q /= 2) if (Math.ceil(quads / q) * q < Math.ceil(quads / best) * best) best = q;
  return best;
}

/** The products of `a` (tiledFits) as one dispatch: crossbar.ts's inputs and output. */
export function crossbarKernelTiled(a: CrossbarKernelArgs): KernelSpec {
  if (!tiledFits(a))
    throw new RangeError('crossbar kernel (tiled): takes programmed operands, ≤ 8 planes, ≤ 256 rows');
  const { B, R, N, rows, C, J, planes } = a;
  const dynamic = a.dacLevels > 0;
  const noisy = a.noiseSeeds !== null;
  const squares = noisy && a.squares;
  const quads = Math.ceil(C / 4);
  const codes = packedFits(a) ? a.cellCodes! : null;
  // per vector, row quad and 4 planes: one vec4 of bit lanes
  const rowQuads = Math.ceil(rows / 4);
  const planeWords = Math.ceil(planes / 4);
  const bitsPerVector = codes ? 16 * rowQuads * planeWords : 32 * rows;
  // vectors the workgroup's bits hold, TV per thread
  const maxVectors = 2 ** Math.floor(Math.log2(BITS_BYTES / bitsPerVector));
  const TV = Math.min(2, maxVectors);
  const WQ = quadsPerGroup(quads, (GROUP * TV) / maxVectors);
  const TT = GROUP / WQ;
  const WV = TT * TV;
  const vectorGroups = Math.ceil(N / WV);
  const quadGroups = Math.ceil(quads / WQ);
  const { grid, index } = linearGrid(vectorGroups * quadGroups * B);
  const blocks = Math.ceil(C / a.gainBlock);
  const aligned = C % 4 === 0;

  const bindings = [
    '@group(0) @binding(0) var<storage, read> x: array<f32>;',
    codes
      ? '@group(0) @binding(1) var<storage, read> codes: array<vec4<u32>>;'
      : `@group(0) @binding(1) var<storage, read> weights: array<${aligned ? 'vec4<f32>' : 'f32'}>;`,
  ];
  if (a.squares)
    bindings.push(`@group(0) @binding(2) var<storage, read> sq: array<${aligned ? 'vec4<f32>' : 'f32'}>;`);
  if (a.adcGains)
    bindings.push(`@group(0) @binding(${bindings.length}) var<storage, read> adcGain: array<f32>;`);
  bindings.push(`@group(0) @binding(${bindings.length}) var<storage, read> gain: array<f32>;`);
  const inputs = bindings.length;
  bindings.push(`@group(0) @binding(${inputs}) var<storage, read_write> out: array<f32>;`);

  const total = J * R * rows * C;
  const quad = (array: string, at: string) =>
    aligned
      ? `${array}[(${at}) / 4u + cq]`
      : `vec4<f32>(${[0, 1, 2, 3].map((l) => `select(0.0f, ${array}[min(${at} + c0 + ${l}u, ${total - 1}u)], c0 + ${l}u < ${C}u)`).join(', ')})`;
  const scaled = (v: string, s: number) => (Math.fround(s) === 1 ? v : `${v} * ${f32Literal(s)}`);

  const vs = Array.from({ length: TV }, (_, v) => v);
  const ps = Array.from({ length: planes }, (_, p) => p);
  const gainOf = (v: number, c: string) =>
    dynamic
      ? `gain[(${a.gainBatches === 1 ? '0u' : 'b'} * ${R}u + r) * ${blocks}u + ${c} / ${a.gainBlock}u] * range${v}`
      : `gain[((b * ${R}u + r) * ${N}u + min(n${v}, ${N - 1}u)) * ${blocks}u + ${c} / ${a.gainBlock}u]`;

  // float32: the sums of one row: each vector's plane bits (± or 0) times the row's cells
  const rowSums = vs
    .map((v) => {
      const at = `2u * ((t * ${TV}u + ${v}u) * ${rows}u + i)`;
      const lanes = ps.map((p) => {
        const bit = `b${v}_${p >> 2}.${'xyzw'[p & 3]}`;
        return `y${v}_${p} += ${bit} * w;${squares ? ` s${v}_${p} += abs(${bit}) * w2;` : ''}`;
      });
      return `let b${v}_0 = bits[${at}];${planes > 4 ? ` let b${v}_1 = bits[${at} + 1u];` : ''}\n          ${lanes.join('\n          ')}`;
    })
    .join('\n          ');
  // integer: the sums of one row quad, its codes packed per column (k, and for squares |k| and k²)
  const lanes4 = [0, 1, 2, 3];
  const dots = (fn: string, bits: string, packed: string) =>
    `vec4<${fn === 'dot4I8Packed' ? 'i32' : 'u32'}>(${lanes4.map((c) => `${fn}(${bits}, ${packed}.${'xyzw'[c]})`).join(', ')})`;
  // the codes of the row quad's rows at the thread's 4 columns: k, and for squares |k| and k² (packCodes)
  const kinds = squares ? 3 : 1;
  const quadSums = codes
    ? `let at = (((j * ${R}u + r) * ${rowQuads}u + iq) * ${quads}u + min(cq, ${quads - 1}u)) * ${kinds}u;
        let kw = codes[at];
        ${squares ? 'let ka = codes[at + 1u];\n        let kq = codes[at + 2u];' : ''}
        ${vs
          .map((v) => {
            const words = Array.from(
              { length: planeWords },
              (_, h) =>
                `let b${v}_${h} = bits[((t * ${TV}u + ${v}u) * ${rowQuads}u + iq) * ${planeWords}u + ${h}u];`,
            );
            const lanes = ps.map((p) => {
              const bit = `b${v}_${p >> 2}.${'xyzw'[p & 3]}`;
              return squares
                ? `y${v}_${p} += ${dots('dot4I8Packed', bit, 'kw')}; { let ab = ${bit} & 0x01010101u; s${v}_${p} += ${dots('dot4U8Packed', 'ab', 'ka')} + (${dots('dot4U8Packed', 'ab', 'kq')} << vec4<u32>(12u)); }`
                : `y${v}_${p} += ${dots('dot4I8Packed', bit, 'kw')};`;
            });
            return `${words.join(' ')}\n        ${lanes.join('\n        ')}`;
          })
          .join('\n        ')}`
    : '';
  // Σ|bit|·sq from the count of on bits n and s = Σ|bit|·|k| + 2^12·Σ|bit|·k² (|k| ≤ 15, rows ≤ 256: no carry)
  const squareSum = (n: string, sums: string) => {
    const [c0, c1, c2] = codes!.squares.map((c) => f32Literal(c * a.squareScale));
    return `vec4<f32>(f32(${n}) * ${c0}) + vec4<f32>(${sums} & vec4<u32>(0xfffu)) * ${c1} + vec4<f32>(${sums} >> vec4<u32>(12u)) * ${c2}`;
  };

  // each vector's planes after the rows: noise, ADC, recombination
  const finish = vs
    .map(
      (v) => `{
          var ys = array<vec4<f32>, ${planes}>(${ps.map((p) => (codes ? `vec4<f32>(y${v}_${p}) * ${f32Literal(codes.unit * a.weightScale)}` : `y${v}_${p}`)).join(', ')});
          ${squares ? `var ss = array<vec4<f32>, ${planes}>(${ps.map((p) => (codes ? squareSum(`on${v}_${p}`, `s${v}_${p}`) : `s${v}_${p}`)).join(', ')});` : ''}
          for (var k = 0u; k < ${planes}u; k++) {
            var val = ys[k];
            ${conversion(a, squares ? 'ss[k]' : null, `sample${v}`, `q${v}`)}
            total${v} += COEF[k * ${J}u + j] * val;
          }
        }`,
    )
    .join('\n        ');

  // each vector's count of on bits per plane in the row tile (Σ|bit|, for the sums of squares)
  const onBits = `${vs.flatMap((v) => ps.map((p) => `var on${v}_${p} = 0u;`)).join(' ')}
    for (var iq = 0u; iq < ${rowQuads}u; iq++) {
      ${vs
        .map((v) => {
          const word = (h: number) =>
            `bits[((t * ${TV}u + ${v}u) * ${rowQuads}u + iq) * ${planeWords}u + ${h}u]`;
          const words = Array.from(
            { length: planeWords },
            (_, h) => `let b${v}_${h} = ${word(h)} & vec4<u32>(0x01010101u);`,
          );
          return `${words.join(' ')}\n      ${ps.map((p) => `on${v}_${p} += countOneBits(b${v}_${p >> 2}.${'xyzw'[p & 3]});`).join(' ')}`;
        })
        .join('\n      ')}
    }`;
  // the workgroup's bits from its vectors' inputs (their codes, or with a dynamic range their DAC's)
  const codeOf = (e: string) => `let q = x[((b * ${R}u + r) * ${N}u + vg * ${WV}u) * ${rows}u + ${e}];
        ${dynamic ? `m = ${dynamicCode(a, 'atomicLoad(&ranges[u])')};` : 'm = u32(abs(q));'}`;
  const fillFloat = `for (var e = lane; e < ${WV * rows}u; e += ${GROUP}u) {
      let u = e / ${rows}u;
      var m = 0u;
      var sgn = 1.0f;
      if (vg * ${WV}u + u < ${N}u) {
        ${codeOf('e')}
        sgn = select(1.0f, -1.0f, q < 0.0f);
      }
      for (var h = 0u; h < 2u; h++) {
        let bitsOf = vec4<u32>(m >> (4u * h), m >> (4u * h + 1u), m >> (4u * h + 2u), m >> (4u * h + 3u)) & vec4<u32>(1u);
        bits[2u * e + h] = vec4<f32>(bitsOf) * sgn;
      }
    }`;
  const fillPacked = `for (var e = lane; e < ${WV * rowQuads}u; e += ${GROUP}u) {
      let u = e / ${rowQuads}u;
      let iq = e % ${rowQuads}u;
      var ms = vec4<u32>(0u);
      var sgns = vec4<i32>(0);
      for (var l = 0u; l < 4u; l++) {
        var m = 0u;
        if (vg * ${WV}u + u < ${N}u && 4u * iq + l < ${rows}u) {
          ${codeOf(`u * ${rows}u + 4u * iq + l`)}
          ms[l] = m;
          sgns[l] = select(1, -1, q < 0.0f);
        }
      }
      for (var h = 0u; h < ${planeWords}u; h++) {
        var word = vec4<u32>(0u);
        for (var p = 0u; p < 4u; p++) {
          word[p] = pack4xI8(vec4<i32>((ms >> vec4<u32>(4u * h + p)) & vec4<u32>(1u)) * sgns);
        }
        bits[e * ${planeWords}u + h] = word;
      }
    }`;

  const code = /* wgsl */ `
${bindings.join('\n')}
${productsHead(a)}

${
  codes
    ? `// the workgroup's vectors' plane bits × sign, by (vector, row quad, planes 0..3, 4..7): a lane per row
var<workgroup> bits: array<vec4<u32>, ${WV * rowQuads * planeWords}>;`
    : `// the workgroup's vectors' plane bits × sign, by (vector, row): planes 0..3, 4..7
var<workgroup> bits: array<vec4<f32>, ${2 * WV * rows}>;`
}
${dynamic ? `var<workgroup> ranges: array<atomic<u32>, ${WV}>;` : ''}

@compute @workgroup_size(${GROUP})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let wgIndex = ${index};
  let vg = wgIndex % ${vectorGroups}u;
  let qg = (wgIndex / ${vectorGroups}u) % ${quadGroups}u;
  let b = wgIndex / ${vectorGroups * quadGroups}u;
  // thread t holds vectors t·TV + v of the workgroup's WV
  let t = lane / ${WQ}u;
  let cq = qg * ${WQ}u + lane % ${WQ}u;
  let c0 = cq * 4u;
  ${a.squares && (!squares || codes) ? '_ = sq[0]; // bound either way (an auto layout keeps only what the code reads)' : ''}
  ${vs.map((v) => `let n${v} = vg * ${WV}u + t * ${TV}u + ${v}u;`).join('\n  ')}
  ${vs.map((v) => `var acc${v} = vec4<f32>(0.0f);`).join('\n  ')}
  for (var r = 0u; r < ${R}u; r++) {
    workgroupBarrier();
    ${
      dynamic
        ? `if (lane < ${WV}u) { atomicStore(&ranges[lane], 0u); }
    workgroupBarrier();
    for (var e = lane; e < ${WV * rows}u; e += ${GROUP}u) {
      if (vg * ${WV}u + e / ${rows}u < ${N}u) {
        // max |x| as the order of its bits (non-negative floats order as their bits)
        atomicMax(&ranges[e / ${rows}u], bitcast<u32>(abs(x[((b * ${R}u + r) * ${N}u + vg * ${WV}u) * ${rows}u + e])));
      }
    }
    workgroupBarrier();`
        : ''
    }
    ${codes ? fillPacked : fillFloat}
    workgroupBarrier();
    ${dynamic ? vs.map((v) => `let range${v} = max(bitcast<f32>(atomicLoad(&ranges[t * ${TV}u + ${v}u])), ${f32Literal(1e-30)});`).join('\n    ') : ''}
    ${
      noisy
        ? vs
            .map((v) => {
              const keys = noiseKeys(a, `n${v}`);
              return `let sample${v} = ${keys.sample};\n    let q${v} = ${keys.row};`;
            })
            .join('\n    ')
        : ''
    }
    ${adcGainsOf(a)}
    ${codes && squares ? onBits : ''}
    ${vs.map((v) => `var sum${v} = vec4<f32>(0.0f);`).join('\n    ')}
    for (var j = 0u; j < ${J}u; j++) {
      ${vs.map((v) => `var total${v} = vec4<f32>(0.0f);`).join('\n      ')}
      ${vs.flatMap((v) => ps.map((p) => (codes ? `var y${v}_${p} = vec4<i32>(0);${squares ? ` var s${v}_${p} = vec4<u32>(0u);` : ''}` : `var y${v}_${p} = vec4<f32>(0.0f);${squares ? ` var s${v}_${p} = vec4<f32>(0.0f);` : ''}`))).join('\n      ')}
      ${
        codes
          ? `for (var iq = 0u; iq < ${rowQuads}u; iq++) {
        ${quadSums}
      }`
          : `let cells = ((j * ${R}u + r) * ${rows}u) * ${C}u;
      for (var i = 0u; i < ${rows}u; i++) {
        let w = ${scaled(quad('weights', `cells + i * ${C}u`), a.weightScale)};
        ${squares ? `let w2 = ${scaled(quad('sq', `cells + i * ${C}u`), a.squareScale)};` : ''}
        ${rowSums}
      }`
      }
      ${finish}
      ${vs.map((v) => `sum${v} += total${v};`).join('\n      ')}
    }
    ${vs
      .map(
        (v) =>
          `let g${v} = vec4<f32>(${[0, 1, 2, 3].map((l) => gainOf(v, `min(c0 + ${l}u, ${C - 1}u)`)).join(', ')});
    ${a.sumTiles ? `acc${v} = select(acc${v} + sum${v} * g${v}, sum${v} * g${v}, r == 0u);` : `if (n${v} < ${N}u && cq < ${quads}u) { store((b * ${R}u + r) * ${N}u + n${v}, c0, sum${v} * g${v}); }`}`,
      )
      .join('\n    ')}
  }
  ${a.sumTiles ? vs.map((v) => `if (n${v} < ${N}u && cq < ${quads}u) { store(b * ${N}u + n${v}, c0, acc${v}); }`).join('\n  ') : ''}
}
${storeFn(C)}`;
  return {
    code,
    inputs,
    grid,
    run: noisy,
    ...(codes
      ? { before: { input: 1, spec: packCodes(a, kinds), words: J * R * rowQuads * quads * 4 * kinds } }
      : {}),
  };
}

/**
 * The integer codes of the tiled kernel's cells (`cellCodes`), from the weights [J, R, rows, C]:
 * per (slice, row tile, row quad, column quad), `kinds` vec4 of 4 columns' packed 8-bit lanes,
 * one per row of the quad: k, then |k| and k² (for the sums of squares). Rows and columns past
 * the tile's are 0. One thread per vec4 triple.
 */
function packCodes(a: CrossbarKernelArgs, kinds: number): KernelSpec {
  const { R, rows, C, J } = a;
  const rowQuads = Math.ceil(rows / 4);
  const quads = Math.ceil(C / 4);
  const total = J * R * rowQuads * quads;
  const { grid, index } = linearGrid(Math.ceil(total / GROUP));
  const lanes = [0, 1, 2, 3];
  const column = (c: number) => `vec4<i32>(${lanes.map((l) => `k[${l}].${'xyzw'[c]}`).join(', ')})`;
  const packed = (f: (c: number) => string) => `vec4<u32>(${lanes.map(f).join(', ')})`;
  const code = /* wgsl */ `
@group(0) @binding(0) var<storage, read> weights: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<u32>>;

@compute @workgroup_size(${GROUP})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let e = ${index} * ${GROUP}u + lane;
  if (e >= ${total}u) { return; }
  let cq = e % ${quads}u;
  let iq = (e / ${quads}u) % ${rowQuads}u;
  let tile = e / ${quads * rowQuads}u;
  // k[l]: row 4·iq + l's codes at the quad's columns
  var k: array<vec4<i32>, 4>;
  for (var l = 0u; l < 4u; l++) {
    let row = 4u * iq + l;
    for (var c = 0u; c < 4u; c++) {
      let col = 4u * cq + c;
      if (row < ${rows}u && col < ${C}u) {
        k[l][c] = i32(round(weights[(tile * ${rows}u + row) * ${C}u + col] * ${f32Literal(1 / a.cellCodes!.unit)}));
      }
    }
  }
  out[e * ${kinds}u] = ${packed((c) => `pack4xI8(${column(c)})`)};
  ${
    kinds === 3
      ? `out[e * 3u + 1u] = ${packed((c) => `pack4xU8(vec4<u32>(abs(${column(c)})))`)};
  out[e * 3u + 2u] = ${packed((c) => `pack4xU8(vec4<u32>(${column(c)} * ${column(c)}))`)};`
      : ''
  }
}`;
  return { code, inputs: 1, grid };
}
