/**
 * The fused bit-serial × bit-sliced crossbar product (native/crossbar_products.cc) in WGSL: per
 * input plane and weight slice the tile's product, its read noise σ·sqrt(Σx²G²)·ξ and output
 * noise (drawn here from the generator of philox.ts, keyed as the native kernel keys them), the
 * ADC's round-and-clip, the recombination with `coef`, the digital gain per column block and the
 * sum over row tiles; with a dynamic DAC range the codes are made here, and an operand written
 * per input (K, V) has its cells written here from its unit values and write noise.
 *
 * One thread per (batch, vector, 4 columns: one generator block), 64 per workgroup: WV vectors ×
 * WQ column quads. Per row tile, the workgroup lists each vector's on-rows (nonzero codes) in
 * workgroup memory, positive ones first, each in row order (a row's place counted from bit masks
 * of the rows before it): the order in which the native kernel adds them, so the sums before
 * the ADC are the CPU's bit for bit, and rows whose code is zero cost nothing. The vector's threads walk the list together (one row at a time, their
 * columns side by side: coalesced loads), every plane's sums in registers.
 */
import type { KernelSpec } from '../../graph/gpu-kernel.js';
import type { WrittenCellsArgs } from '../native.js';
import { adcGainsOf, conversion, dynamicCode, noiseKeys, productsHead, storeFn } from './crossbar-parts.js';
import { crossbarKernelTiled, tiledFits } from './crossbar-tiled.js';
import { f32Literal, linearGrid } from './philox.js';

/** The programming-noise laws of analog/write-noise.ts WRITE_KINDS, by name. */
export type WriteLaw = 'none' | 'relative' | 'writeSqrt' | 'additive' | 'pcm';

/**
 * An operand whose cells are written per input: runtime/native.ts WrittenCellsArgs without its
 * arrays, its law by name rather than by code.
 */
export type WrittenCells = Omit<WrittenCellsArgs, 'unit' | 'writeKind' | 'writeNoise' | 'writeSquares'> & {
  law: WriteLaw;
  /** pcm: the polynomial of the programming noise's std in G/G_MAX. */
  pcmFit: { c0: number; c1: number; c2: number };
};

/**
 * Programmed cells that are small integers k: each weight is k·`unit` and each square
 * `squares`[0] + `squares`[1]·|k| + `squares`[2]·k² (to float32 rounding), |k| ≤ 15, in the
 * units of the operand's arrays (before `weightScale`, `squareScale`). Noise-free bit-slice
 * cells are (analog/program.ts cellCodes).
 */
export interface CellCodes {
  unit: number;
  squares: readonly [number, number, number];
}

/**
 * What fixes a crossbar-products kernel (runtime/native.ts CrossbarProductsArgs without its
 * arrays). Its inputs, in order: the codes [B, R, N, rows] (or with `dacLevels` > 0 the DAC's
 * inputs, quantised here with a dynamic range); the operand: weights [J, Bw, R, rows, C] and,
 * with `squares`, their squares, or when `written`, its unit values [Bw, R, rows, C] and, unless
 * its law is 'none', the N(0, 1) write noise of the G+ and G− devices [J, Bw, R, rows, C] each;
 * with `adcGains`, the ADC gains [R, C] (a calibrated ADC range per column); last the gain
 * [B, R, N, ⌈C/gainBlock⌉] (or with `dacLevels`, its per-column part [gainBatches, R,
 * ⌈C/gainBlock⌉], × each vector's range). The output: [B, N, C] summed over row
 * tiles (`sumTiles`), else [B, R, N, C].
 */
export interface CrossbarKernelArgs {
  B: number;
  Bw: number;
  R: number;
  N: number;
  rows: number;
  C: number;
  J: number;
  planes: number;
  levels: number;
  weightScale: number;
  squareScale: number;
  dacLevels: number;
  squares: boolean;
  written: WrittenCells | null;
  noiseSeeds: Uint32Array | null;
  samples: number;
  samplesAlongB: boolean;
  outSigma: number;
  coef: Float32Array;
  gainBlock: number;
  gainBatches: number;
  sumTiles: boolean;
  /** Whether each value is multiplied by its (row tile, column)'s ADC gain before the ADC (default: no). */
  adcGains?: boolean;
  /** The operand's cells as integer codes, where they are (the tiled kernel may then take integer dot products). */
  cellCodes?: CellCodes | null | undefined;
  /** Whether the device's WGSL has `packed_4x8_integer_dot_product` (dot4I8Packed). */
  dot4?: boolean;
  /**
   * 'list': crossbar.ts's kernel even where the tiled one (crossbar-tiled.ts) takes the products;
   * 'float': the tiled kernel's float32 products even where it could take integer ones.
   */
  layout?: 'list' | 'float';
}

/** Threads per workgroup. */
const GROUP = 64;
/** Planes whose sums one pass over a vector's rows keeps in registers. */
const PLANE_GROUP = 8;
/** Workgroup memory for the row lists, in 32-bit words (two per row and vector), within WebGPU's 16 KiB default. */
const LIST_WORDS = 3584;

const pow2Above = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** g written with noise xi, as native/crossbar_products.cc writeDevice: the same float32 operations in the same order. */
function writeDevice(w: WrittenCells): string {
  const noise = f32Literal(w.writeNoiseScale);
  switch (w.law) {
    case 'none':
      return 'return g;';
    case 'relative':
      return `return max(g * (xi * ${noise} + 1.0f), vec4<f32>(0.0f));`;
    case 'writeSqrt':
      return `return max(max(g + sqrt(max(g - ${f32Literal(w.gMin)}, vec4<f32>(0.0f)) * ${f32Literal(w.dG)}) * xi * ${noise}, vec4<f32>(${f32Literal(w.gMin)})), vec4<f32>(0.0f));`;
    case 'additive':
      return `return max(g + xi * ${noise}, vec4<f32>(0.0f));`;
    case 'pcm': {
      const { c0, c1, c2 } = w.pcmFit;
      return `let gh = g / ${f32Literal(w.gMax)};
  return max(g + max((gh * ${f32Literal(c2)} + ${f32Literal(c1)}) * gh + ${f32Literal(c0)}, vec4<f32>(0.0f)) * ${noise} * xi, vec4<f32>(0.0f));`;
    }
  }
}

/** The crossbar products of `a` as one dispatch (see CrossbarKernelArgs for its inputs and output). */
export function crossbarKernel(a: CrossbarKernelArgs): KernelSpec {
  if (a.layout !== 'list' && tiledFits(a)) return crossbarKernelTiled(a);
  const { B, Bw, R, N, rows, C, J, planes, written } = a;
  if (Bw !== 1 && Bw !== B)
    throw new RangeError(`crossbar kernel: the operand's batch Bw = ${Bw} must be 1 or B = ${B}`);
  if (planes < 1 || planes > 31)
    throw new RangeError(`crossbar kernel: planes = ${planes}; 1..31 bit-serial planes`);
  if (a.coef.length !== planes * J)
    throw new RangeError(`crossbar kernel: coef has ${a.coef.length} values, not planes × J = ${planes * J}`);
  if (a.noiseSeeds && a.noiseSeeds.length !== planes)
    throw new RangeError(`crossbar kernel: ${a.noiseSeeds.length} noise seeds for ${planes} planes`);
  if (2 * rows > LIST_WORDS)
    throw new RangeError(`crossbar kernel: tiles of ${rows} rows exceed the ${LIST_WORDS / 2} it lists`);
  const dynamic = a.dacLevels > 0;
  const noisy = a.noiseSeeds !== null;
  // sums of squares only where read noise is drawn (a bound array is read either way: 'auto' layouts keep it)
  const squares = noisy && a.squares;
  const quads = Math.ceil(C / 4);
  // vectors per workgroup: as many as their row lists fit, columns filling the rest
  // up to 8 planes on tiles of up to 256 rows: each listed row's signed plane bits as floats
  // (two vec4, read by all the vector's threads at once), so that the sums are multiply-adds
  // alone; else its code, whose bits each thread extracts (integer work that bounds the loop)
  const bitFloats = planes <= 8 && rows <= 256;
  const wordsPerRow = bitFloats ? 9 : 2;
  const maxVectors = 2 ** Math.floor(Math.log2(LIST_WORDS / (wordsPerRow * rows)));
  const WQ = Math.max(Math.min(GROUP, pow2Above(quads)), GROUP / maxVectors);
  const WV = GROUP / WQ;
  const vectorGroups = Math.ceil(N / WV);
  const quadGroups = Math.ceil(quads / WQ);
  const { grid, index } = linearGrid(vectorGroups * quadGroups * B);
  const blocks = Math.ceil(C / a.gainBlock);
  const aligned = C % 4 === 0;
  const words = Math.ceil(rows / 32);

  // bindings, in the host closure's order
  const bindings: string[] = [];
  const bind = (name: string, type: string) =>
    bindings.push(`@group(0) @binding(${bindings.length}) var<storage, read> ${name}: array<${type}>;`);
  bind('x', 'f32');
  const wType = aligned ? 'vec4<f32>' : 'f32';
  if (written) {
    bind('unit', wType);
    if (written.law !== 'none') {
      bind('xiP', wType);
      bind('xiN', wType);
    }
  } else {
    bind('weights', wType);
    if (a.squares) bind('sq', wType);
  }
  if (a.adcGains) bind('adcGain', 'f32');
  bind('gain', 'f32');
  const inputs = bindings.length;
  bindings.push(`@group(0) @binding(${inputs}) var<storage, read_write> out: array<f32>;`);

  // a quad of columns of a [.., C] array at row offset `at` (columns past C read as 0)
  const quad = (array: string, at: string) =>
    aligned
      ? `${array}[(${at}) / 4u + cq]`
      : `vec4<f32>(${[0, 1, 2, 3].map((l) => `select(0.0f, ${array}[min(${at} + c0 + ${l}u, ${array === 'unit' ? Bw * R * rows * C : J * Bw * R * rows * C}u - 1u)], c0 + ${l}u < ${C}u)`).join(', ')})`;

  // the cells of row `row`, slice j: effective weight and square, in ADC steps
  let cells: string;
  if (written) {
    const w = written;
    const analog = w.cellLevels === 0;
    const powers = Array.from({ length: J + 1 }, (_, j) => f32Literal(w.cellBase ** -j));
    const noise = w.law !== 'none';
    cells = `
var<private> POWERS: array<f32, ${J + 1}> = array<f32, ${J + 1}>(${powers.join(', ')});
fn writeDevice(g: vec4<f32>, xi: vec4<f32>) -> vec4<f32> {
  ${writeDevice(w)}
}
// native/crossbar_products.cc writeRow: the pair's (G+ − G−)/ΔG and (G+² + G−²)/ΔG², scaled
fn cell(b: u32, r: u32, row: u32, j: u32, cq: u32, c0: u32) -> array<vec4<f32>, 2> {
  let at = ((${Bw === 1 ? '0u' : 'b'} * ${R}u + r) * ${rows}u + row) * ${C}u;
  let x = ${quad('unit', 'at')};
  ${
    analog
      ? 'let signedCell = x;'
      : `let sg = select(select(vec4<f32>(0.0f), vec4<f32>(-1.0f), x < vec4<f32>(0.0f)), vec4<f32>(1.0f), x > vec4<f32>(0.0f));
  let mag = round(abs(x) * ${f32Literal(w.cellLevels)});
  let digit = floor(mag * POWERS[j]) - floor(mag * POWERS[j + 1u]) * ${f32Literal(w.cellBase)};
  let signedCell = digit / ${f32Literal(w.cellBase - 1)} * sg;`
  }
  let tp = max(signedCell, vec4<f32>(0.0f)) * ${f32Literal(w.dG)} + ${f32Literal(w.gMin)};
  let tn = max(-signedCell, vec4<f32>(0.0f)) * ${f32Literal(w.dG)} + ${f32Literal(w.gMin)};
  let sliceAt = j * ${Bw * R * rows * C}u + at;
  let gp = writeDevice(tp, ${noise ? quad('xiP', 'sliceAt') : 'vec4<f32>(0.0f)'});
  let gn = writeDevice(tn, ${noise ? quad('xiN', 'sliceAt') : 'vec4<f32>(0.0f)'});
  let live = vec4<f32>(${[0, 1, 2, 3].map((l) => `select(0.0f, 1.0f, c0 + ${l}u < ${C}u)`).join(', ')});
  let eff = (gp - gn) / ${f32Literal(w.dG)} * ${f32Literal(a.weightScale)};
  let sq = (gp * gp + gn * gn) / ${f32Literal(w.dGSquared)} * ${f32Literal(a.squareScale)};
  return array<vec4<f32>, 2>(select(vec4<f32>(0.0f), eff, live > vec4<f32>(0.0f)), select(vec4<f32>(0.0f), sq, live > vec4<f32>(0.0f)));
}`;
  } else {
    const scaled = (v: string, s: number) => (Math.fround(s) === 1 ? v : `${v} * ${f32Literal(s)}`);
    cells = `
fn cell(b: u32, r: u32, row: u32, j: u32, cq: u32, c0: u32) -> array<vec4<f32>, 2> {
  let at = (((j * ${Bw}u + ${Bw === 1 ? '0u' : 'b'}) * ${R}u + r) * ${rows}u + row) * ${C}u;
  return array<vec4<f32>, 2>(${scaled(quad('weights', 'at'), a.weightScale)}, ${a.squares ? scaled(quad('sq', 'at'), a.squareScale) : 'vec4<f32>(0.0f)'});
}`;
  }

  const keys = noiseKeys(a, 'n');

  // passes over the vector's rows for groups of PG planes (k0 + i, i < PG) of slice j: their sums
  // in registers (the loop body unrolled over i), then each plane's noise, ADC and recombination
  // in a loop (the generator's code once)
  const groups = Math.ceil(planes / PLANE_GROUP);
  const PG = Math.ceil(planes / groups);
  const lanes = Array.from({ length: PG }, (_, i) => i);
  const vec4s = (name: string) => `array<vec4<f32>, ${PG}>(${lanes.map((i) => `${name}${i}`).join(', ')})`;
  const convert = conversion(a, squares ? 'vs[i]' : null, 'sampleIndex', 'q0');
  // row t's plane i: ±1 or 0 (a product with it is exact, so the sums are the native kernel's)
  const rowSums = bitFloats
    ? `let e = listRow[base + t];
          let w = cell(b, r, e & 0x7fffffffu, j, cq, c0);
          let bits = array<vec4<f32>, 2>(listBits[2u * (base + t)], listBits[2u * (base + t) + 1u]);
          ${lanes
            .map((i) => {
              const bit = `bits[${i >> 2}].${'xyzw'[i & 3]}`;
              return `y${i} += ${bit} * w[0];${squares ? ` v${i} += abs(${bit}) * w[1];` : ''}`;
            })
            .join('\n          ')}`
    : `let e = listRow[base + t];
          let m = listCode[base + t] >> k0;
          let w = cell(b, r, e & 0x7fffffffu, j, cq, c0);
          let sw = select(w[0], -w[0], e >= 0x80000000u);
          ${lanes
            .map(
              (i) =>
                `let b${i} = f32((m >> ${i}u) & 1u); y${i} += b${i} * sw;${squares ? ` v${i} += b${i} * w[1];` : ''}`,
            )
            .join('\n          ')}`;
  const pass = `
      for (var k0 = 0u; k0 < ${planes}u; k0 += ${PG}u) {
        ${lanes.map((i) => `var y${i} = vec4<f32>(0.0f);${squares ? ` var v${i} = vec4<f32>(0.0f);` : ''}`).join('\n        ')}
        for (var t = 0u; t < count; t++) {
          ${rowSums}
        }
        var ys = ${vec4s('y')};
        ${squares ? `var vs = ${vec4s('v')};` : ''}
        for (var i = 0u; i < min(${PG}u, ${planes}u - k0); i++) {
          let k = k0 + i;
          var val = ys[i];
          ${convert}
          total += COEF[k * ${J}u + j] * val;
        }
      }`;

  // the gain of (b, r, n)'s column c
  const gainOf = (c: string) =>
    dynamic
      ? `gain[(${a.gainBatches === 1 ? '0u' : 'b'} * ${R}u + r) * ${blocks}u + ${c} / ${a.gainBlock}u] * range`
      : `gain[((b * ${R}u + r) * ${N}u + n) * ${blocks}u + ${c} / ${a.gainBlock}u]`;

  const code = /* wgsl */ `
${bindings.join('\n')}
${productsHead(a)}
${cells}

// per vector of the workgroup: its on-rows (positive codes first, each in row order, the sign in bit 31)
var<workgroup> listRow: array<u32, ${WV * rows}>;
${
  bitFloats
    ? `// and their planes' bits × sign (planes 0..3, 4..7)
var<workgroup> listBits: array<vec4<f32>, ${2 * WV * rows}>;`
    : `// and their codes
var<workgroup> listCode: array<u32, ${WV * rows}>;`
}
// per vector and sign, bit i: row i's code is nonzero
var<workgroup> listMask: array<atomic<u32>, ${2 * WV * words}>;
${dynamic ? `var<workgroup> listRange: array<atomic<u32>, ${WV}>;` : ''}

@compute @workgroup_size(${GROUP})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let wgIndex = ${index};
  let vg = wgIndex % ${vectorGroups}u;
  let qg = (wgIndex / ${vectorGroups}u) % ${quadGroups}u;
  let b = wgIndex / ${vectorGroups * quadGroups}u;
  let v = lane / ${WQ}u;
  let n = vg * ${WV}u + v;
  let cq = qg * ${WQ}u + lane % ${WQ}u;
  let c0 = cq * 4u;
  let live = n < ${N}u && cq < ${quads}u;
  let base = v * ${rows}u;
  var acc = vec4<f32>(0.0f);
  for (var r = 0u; r < ${R}u; r++) {
    // the on-rows of the workgroup's vectors (b, r, vg·WV + u), all threads on their rows: the
    // range of each (a dynamic one), the rows with a nonzero code as bits by sign, and each
    // such row's place in its list from the bits before it
    workgroupBarrier();
    for (var e = lane; e < ${2 * WV * words}u; e += ${GROUP}u) { atomicStore(&listMask[e], 0u); }
    ${dynamic ? `if (lane < ${WV}u) { atomicStore(&listRange[lane], 0u); }` : ''}
    workgroupBarrier();
    ${
      dynamic
        ? `for (var e = lane; e < ${WV * rows}u; e += ${GROUP}u) {
      let u = e / ${rows}u;
      if (vg * ${WV}u + u < ${N}u) {
        // max |x| as the order of its bits (non-negative floats order as their bits)
        atomicMax(&listRange[u], bitcast<u32>(abs(x[((b * ${R}u + r) * ${N}u + vg * ${WV}u) * ${rows}u + e])));
      }
    }
    workgroupBarrier();`
        : ''
    }
    for (var phase = 0u; phase < 2u; phase++) {
      for (var e = lane; e < ${WV * rows}u; e += ${GROUP}u) {
        let u = e / ${rows}u;
        let i = e % ${rows}u;
        if (vg * ${WV}u + u >= ${N}u) { continue; }
        let q = x[((b * ${R}u + r) * ${N}u + vg * ${WV}u) * ${rows}u + e];
        ${dynamic ? `let m = ${dynamicCode(a, 'atomicLoad(&listRange[u])')};` : 'let m = u32(abs(q));'}
        if (m == 0u) { continue; }
        let negative = select(0u, 1u, q < 0.0f);
        let masks = (u * 2u + negative) * ${words}u;
        if (phase == 0u) {
          atomicOr(&listMask[masks + i / 32u], 1u << (i % 32u));
        } else {
          var place = countOneBits(atomicLoad(&listMask[masks + i / 32u]) & ((1u << (i % 32u)) - 1u));
          for (var w = 0u; w < i / 32u; w++) { place += countOneBits(atomicLoad(&listMask[masks + w])); }
          if (negative == 1u) {
            for (var w = 0u; w < ${words}u; w++) { place += countOneBits(atomicLoad(&listMask[u * ${2 * words}u + w])); }
          }
          listRow[u * ${rows}u + place] = i | (negative << 31u);
          ${
            bitFloats
              ? `let sgn = select(1.0f, -1.0f, negative == 1u);
          for (var h = 0u; h < 2u; h++) {
            let bits = vec4<u32>(m >> (4u * h), m >> (4u * h + 1u), m >> (4u * h + 2u), m >> (4u * h + 3u)) & vec4<u32>(1u);
            listBits[2u * (u * ${rows}u + place) + h] = vec4<f32>(bits) * sgn;
          }`
              : `listCode[u * ${rows}u + place] = m;`
          }
        }
      }
      workgroupBarrier();
    }
    var count = 0u;
    for (var w = 0u; w < ${2 * words}u; w++) { count += countOneBits(atomicLoad(&listMask[v * ${2 * words}u + w])); }
    count = select(0u, count, live);
    ${dynamic ? `let range = max(bitcast<f32>(atomicLoad(&listRange[v])), ${f32Literal(1e-30)});` : ''}
    ${noisy ? `let sampleIndex = ${keys.sample};\n    let q0 = ${keys.row};` : ''}
    ${adcGainsOf(a)}
    var sum = vec4<f32>(0.0f);
    for (var j = 0u; j < ${J}u; j++) {
      var total = vec4<f32>(0.0f);
      ${pass}
      sum += total;
    }
    let g = vec4<f32>(${[0, 1, 2, 3].map((l) => gainOf(`min(c0 + ${l}u, ${C - 1}u)`)).join(', ')});
    ${a.sumTiles ? 'acc = select(acc + sum * g, sum * g, r == 0u);' : `if (live) { store((b * ${R}u + r) * ${N}u + n, c0, sum * g); }`}
  }
  ${a.sumTiles ? `if (live) { store(b * ${N}u + n, c0, acc); }` : ''}
}
${storeFn(C)}`;
  return { code, inputs, grid, run: noisy };
}
