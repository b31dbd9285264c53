/**
 * The cost of one inference (batch 1) of a transformer on crossbars: every stage of every
 * encoder, plus the patch embedding and heads when the spec maps them, with energy, delay and
 * area per component. As in TReX-Sim: stages run one after another, tokens go through a layer
 * one at a time, all PEs of a layer work in parallel while the crossbars of a PE take turns,
 * and every layer owns its crossbars (weights stay put).
 * Legend: t tokens, d hidden, h heads, e = d/h head size, f ffn.
 */
import { checkOverrides, type ResolvedSpec } from '../analog/resolve.js';
import { type Crossbar, type HardwareSpec, sliceCount } from '../analog/spec.js';
import type { ExtraLayer } from '../models/family.js';
import { type EncoderProduct, layerName } from '../models/layer-names.js';
import { InputError } from '../util/errors.js';
import {
  type Architecture,
  type ArchitectureInput,
  crossbarCost,
  type DigitalComponents,
} from './components.js';
import {
  architectureFor,
  checkBeta,
  crossbarCount,
  kvSlices,
  type LibraryOverrides,
  libraryEntry,
  type MappedCrossbar,
  type MappedKind,
  mapCrossbar,
} from './mapping.js';
import type { ModelShape } from './shapes.js';

export const COMPONENTS = [
  'array',
  'write',
  'adc',
  'dac',
  'shiftAdd',
  'buffer',
  'softmax',
  'layerNorm',
  'activation',
  'digitalMac',
  'peripheral',
] as const;
export type Component = (typeof COMPONENTS)[number];

export const STAGES = [
  'patchEmbedding',
  'norm1',
  'qkv',
  'kvWrite',
  'scores',
  'softmax',
  'mix',
  'tbNorm',
  'tbLinear',
  'tbActivation',
  'projection',
  'norm2',
  'ffnIn',
  'activation',
  'ffnOut',
  'classifier',
] as const;
export type Stage = (typeof STAGES)[number];

export type Amounts = Partial<Record<Component, number>>;

/** What one stage (or a part of it) does and costs, by component. */
export interface Part {
  macs: number;
  crossbars: number;
  pes: number;
  tiles: number;
  energyPJ: Amounts;
  delayNs: Amounts;
  areaMm2: Amounts;
}

export interface StageCost extends Part {
  /** Encoder index; null for the patch embedding and the heads. */
  layer: number | null;
  stage: Stage;
}

export interface CostTotals {
  energyMJ: number;
  delayMs: number;
  areaMm2: number;
  /** energy·delay·area, mJ·ms·mm² */
  edap: number;
  /** one MAC = one operation */
  topsPerW: number;
  topsPerMm2: number;
  /** MACs of the costed stages. */
  macs: number;
  /** MACs of the patch embedding and heads when the spec leaves them off the accelerator. */
  uncostedMacs: number;
  crossbars: number;
  pes: number;
  tiles: number;
}

export interface CostReport {
  model: ModelShape;
  hardware: {
    name: string;
    technology: string;
    attention: string;
    weightSlices: number;
    kvSlices: number | null;
  };
  architecture: Architecture;
  /** Encoders that reuse the previous attention (TReX). */
  reuse: number[];
  /** Encoders whose static weights are shared with an earlier encoder. */
  sharedWeights: number[];
  tokensPerLayer: number[];
  transformationBlocks: boolean;
  beta: number;
  stages: StageCost[];
  totals: CostTotals;
  /** Assumptions the run had to make (e.g. an ideal ADC costed at the reference bits). */
  notes: string[];
}

export interface CostOptions {
  /**
   * Reuse encoders: a count N (the last N; encoders are identical), their indices (≥ 1), or a
   * map with one flag per encoder.
   */
  reuse?: number | readonly number[] | readonly boolean[];
  /** Cost each reuse encoder's transformation block (LayerNorm → d×d linear → GELU); default true. */
  transformationBlocks?: boolean;
  /**
   * Weight sharing: encoders whose static weights sit in an earlier encoder's crossbars (they
   * read those crossbars, so energy and delay stay, their own static crossbar area goes).
   */
  sharedWeights?: readonly number[];
  /** Tokens each encoder sees (token pruning); default the shape's tokens for all. */
  tokensPerLayer?: readonly number[];
  /** ClipFormer Stage II clip β ∈ (0, 1]: K/V need ⌊log2(1/β)⌋ fewer bits; default 1. */
  beta?: number;
  /** Cost-only architecture fields over the technology's defaults. */
  architecture?: ArchitectureInput;
  /** Component numbers over the library's, per technology. */
  library?: LibraryOverrides;
}

interface Ctx {
  spec: HardwareSpec;
  hw: ResolvedSpec;
  /** A crossbar as the cost model sees it, mapped once per crossbar. */
  mapped: (x: Crossbar) => MappedCrossbar;
  /** The static layers costed, by name. */
  layers: Set<string>;
  shape: ModelShape;
  arch: Architecture;
  digital: DigitalComponents;
  attention: MappedCrossbar | null;
  kvSlices: number;
  notes: Set<string>;
}

const empty = (): Part => ({
  macs: 0,
  crossbars: 0,
  pes: 0,
  tiles: 0,
  energyPJ: {},
  delayNs: {},
  areaMm2: {},
});

export const total = (a: Amounts): number => Object.values(a).reduce((s, v) => s + v, 0);

function addInto(into: Amounts, a: Amounts): void {
  for (const [k, v] of Object.entries(a) as [Component, number][]) into[k] = (into[k] ?? 0) + v;
}

/** Layers of one stage run side by side: costs add, the delay is the slowest layer's. */
function parallel(parts: Part[]): Part {
  const out = empty();
  let slowest = -1;
  for (const p of parts) {
    out.macs += p.macs;
    out.crossbars += p.crossbars;
    out.pes += p.pes;
    out.tiles += p.tiles;
    addInto(out.energyPJ, p.energyPJ);
    addInto(out.areaMm2, p.areaMm2);
    if (total(p.delayNs) > slowest) {
      slowest = total(p.delayNs);
      out.delayNs = { ...p.delayNs };
    }
  }
  return out;
}

/** A digital unit of `lanes` elements per cycle over `elements`, owning `units` units of area. */
function unitPart(
  u: { energyPJPerElement: number; lanes: number; cycleNs: number; areaMm2: number },
  c: Component,
  elements: number,
  units = 1,
): Part {
  return {
    ...empty(),
    energyPJ: { [c]: elements * u.energyPJPerElement },
    delayNs: { [c]: Math.ceil(elements / u.lanes) * u.cycleNs },
    areaMm2: { [c]: units * u.areaMm2 },
  };
}

/**
 * `matrices` matrices of `perMatrix` crossbars each, read by `tokens` input vectors:
 * E = t·N_X·E_R,X, D = t·min(N_X,PE, N_X)·D_R,X (PEs in parallel), A = N_X·A_X.
 */
function crossbarRead(
  ctx: Ctx,
  m: MappedCrossbar,
  perMatrix: number,
  matrices: number,
  tokens: number,
  macs: number,
): Part {
  const c = crossbarCost(m.tech.crossbar, m.config);
  const n = perMatrix * matrices;
  const serial = Math.min(ctx.arch.crossbarsPerPe, perMatrix);
  const pesPer = Math.ceil(perMatrix / ctx.arch.crossbarsPerPe);
  const pes = matrices * pesPer;
  const tiles = matrices * Math.ceil(pesPer / ctx.arch.pesPerTile);
  return {
    macs,
    crossbars: n,
    pes,
    tiles,
    energyPJ: {
      array: tokens * n * c.read.arrayPJ,
      dac: tokens * n * c.read.dacPJ,
      adc: tokens * n * c.read.adcPJ,
      shiftAdd: tokens * n * c.read.shiftAddPJ,
    },
    delayNs: { array: tokens * serial * c.readDelay.arrayNs, adc: tokens * serial * c.readDelay.adcNs },
    areaMm2: {
      array: n * c.area.arrayMm2,
      dac: n * c.area.dacMm2,
      adc: n * c.area.adcMm2,
      shiftAdd: n * c.area.shiftAddMm2,
      peripheral: pes * ctx.digital.peAreaMm2 + tiles * ctx.digital.tileAreaMm2,
    },
  };
}

/** MACs on the digital MAC unit (one unit of area when `owned`). */
const digitalMatmul = (ctx: Ctx, macs: number, owned = true): Part => ({
  ...unitPart(ctx.digital.mac, 'digitalMac', macs, owned ? 1 : 0),
  macs,
});

/** A static matrix in:×out read by `tokens` vectors, on crossbars if the spec maps its kind. */
function staticLayer(ctx: Ctx, name: string, kind: MappedKind, inp: number, out: number, tokens: number) {
  const macs = tokens * inp * out;
  ctx.layers.add(name);
  if (!ctx.spec.mapped[kind]) return digitalMatmul(ctx, macs);
  const x = ctx.hw.crossbar(name);
  const m = ctx.mapped(x);
  const n = crossbarCount(inp, out, m.config.rows, m.config.cols, sliceCount(x.cells));
  return crossbarRead(ctx, m, n, 1, tokens, macs);
}

/** QKᵀ and S·V with K and V written per input: per head Kᵀ is e×t and V is t×e. */
function attentionParts(ctx: Ctx): { kvWrite: Part; scores: Part; mix: Part } {
  const { tokens: t, hidden: d, heads: h } = ctx.shape;
  const e = d / h;
  const macs = t * t * d;
  const m = ctx.attention;
  if (!m) return { kvWrite: empty(), scores: digitalMatmul(ctx, macs), mix: digitalMatmul(ctx, macs, false) };
  const { rows, cols } = m.config;
  const nk = crossbarCount(e, t, rows, cols, ctx.kvSlices);
  const nv = crossbarCount(t, e, rows, cols, ctx.kvSlices);
  const c = crossbarCost(m.tech.crossbar, m.config);
  const fills = [...peFills(nk, ctx.arch.crossbarsPerPe), ...peFills(nv, ctx.arch.crossbarsPerPe)];
  const serialWrites = writeTime(Array(h).fill(fills).flat(), ctx.arch.concurrentWritePes);
  return {
    kvWrite: {
      ...empty(),
      energyPJ: { write: h * (nk + nv) * c.writePJ },
      delayNs: { write: serialWrites * c.writeNs },
    },
    scores: crossbarRead(ctx, m, nk, h, t, macs),
    mix: crossbarRead(ctx, m, nv, h, t, macs),
  };
}

/** Crossbars in each PE holding an n-crossbar matrix: full PEs, then the remainder. */
const peFills = (n: number, cpp: number): number[] =>
  Array.from({ length: Math.ceil(n / cpp) }, (_, i) => Math.min(cpp, n - i * cpp));

/**
 * Crossbar writes on the critical path: PEs are written `concurrent` at a time (fullest first),
 * the crossbars of a PE one after another; a round lasts as long as its fullest PE.
 */
function writeTime(fills: number[], concurrent: number): number {
  const sorted = [...fills].sort((a, b) => b - a);
  let rounds = 0;
  for (let i = 0; i < sorted.length; i += concurrent) rounds += sorted[i]!;
  return rounds;
}

/** Softmax LUT units (one per head, heads in parallel) and the t×t score buffers of each head. */
function softmaxPart(ctx: Ctx): Part {
  const { tokens: t, heads: h } = ctx.shape;
  const bits = ctx.attention?.config.inputBits ?? 8;
  const { softmax: s, scoreBuffer: b } = ctx.digital;
  const scores = h * t * t;
  return {
    ...empty(),
    energyPJ: { softmax: scores * s.energyPJPerElement, buffer: 2 * scores * bits * b.energyPJPerBit },
    delayNs: { softmax: t * t * s.delayNsPerElement },
    areaMm2: { softmax: h * s.areaMm2, buffer: scores * bits * b.areaUm2PerBit * 1e-6 },
  };
}

function reuseList(reuse: CostOptions['reuse'], layers: number): number[] {
  if (reuse === undefined) return [];
  if (typeof reuse === 'number') {
    if (!Number.isInteger(reuse) || reuse < 0 || reuse > layers - 1) {
      throw new InputError('reuse', [
        `${reuse} is not allowed, use a whole number 0..${layers - 1} (encoder 0 has no attention to reuse)`,
      ]);
    }
    return Array.from({ length: reuse }, (_, i) => layers - reuse + i);
  }
  if (reuse.length === 0) return [];
  if (reuse.every((r) => typeof r === 'boolean')) {
    if (reuse.length !== layers || reuse[0]) {
      throw new InputError('reuse', [
        `a map of ${reuse.length} flags is not allowed, use ${layers} flags (one per encoder) with encoder 0 false`,
      ]);
    }
    return reuse.flatMap((r, i) => (r ? [i] : []));
  }
  const list = reuse as readonly number[];
  const bad = list.filter((i) => !Number.isInteger(i) || i < 1 || i > layers - 1);
  if (bad.length || new Set(list).size !== list.length) {
    throw new InputError('reuse', [
      `[${list.join(', ')}] is not allowed, use distinct encoder indices 1..${layers - 1} ` +
        '(encoder 0 has no attention to reuse)',
    ]);
  }
  return [...list].sort((a, b) => a - b);
}

/** A part whose crossbars live elsewhere: its energy and delay, no area or crossbars. */
const withoutArea = (p: Part): Part => ({ ...p, crossbars: 0, pes: 0, tiles: 0, areaMm2: {} });

function tokensList(list: readonly number[] | undefined, shape: ModelShape): number[] {
  if (list === undefined) return Array(shape.layers).fill(shape.tokens);
  if (list.length !== shape.layers || list.some((t) => !Number.isInteger(t) || t < 1 || t > shape.tokens)) {
    throw new InputError('tokensPerLayer', [
      `[${list.join(', ')}] is not allowed, use ${shape.layers} whole numbers 1..${shape.tokens} (tokens of each encoder)`,
    ]);
  }
  return [...list];
}

function sharedList(list: readonly number[] | undefined, layers: number, reuse: readonly number[]): number[] {
  if (list === undefined) return [];
  const bad = list.filter((i) => !Number.isInteger(i) || i < 1 || i > layers - 1 || reuse.includes(i));
  if (bad.length || new Set(list).size !== list.length) {
    throw new InputError('sharedWeights', [
      `[${list.join(', ')}] is not allowed, use distinct encoder indices 1..${layers - 1} that do not reuse attention`,
    ]);
  }
  return [...list].sort((a, b) => a - b);
}

/** Energy, delay and area of one inference of `shape` on `hw` (whose overrides must match its layers). */
export function cost(shape: ModelShape, hw: ResolvedSpec, o: CostOptions = {}): CostReport {
  const spec = hw.spec;
  const overrides = o.library ?? {};
  const base = libraryEntry(spec.technology, overrides);
  const arch = architectureFor(base, o.architecture);
  const beta = o.beta ?? 1;
  checkBeta(beta);
  const attnX = hw.attention;
  const notes = new Set<string>();
  const mappedOnce = new Map<Crossbar, MappedCrossbar>();
  const ctx: Ctx = {
    spec,
    hw,
    mapped: (x) => {
      const m = mappedOnce.get(x) ?? mapCrossbar(x, arch, overrides, notes);
      mappedOnce.set(x, m);
      return m;
    },
    layers: new Set(),
    shape,
    arch,
    digital: base.digital,
    attention: attnX ? mapCrossbar(attnX, arch, overrides, notes) : null,
    kvSlices: attnX ? kvSlices(attnX.cells, beta) : 0,
    notes,
  };
  if (beta !== 1 && !attnX) notes.add('beta has no effect: attention is digital');
  const reuse = reuseList(o.reuse, shape.layers);
  const tb = o.transformationBlocks ?? true;
  const { hidden: d, ffn: f } = shape;

  const stages: StageCost[] = [];
  const push = (layer: number | null, stage: Stage, p: Part) => stages.push({ layer, stage, ...p });
  let uncostedMacs = 0;
  const extra = (kind: 'patchEmbedding' | 'classifier', l: ExtraLayer) => {
    ctx.layers.add(l.name);
    if (spec.mapped[kind]) push(null, kind, staticLayer(ctx, l.name, kind, l.in, l.out, l.tokens));
    else uncostedMacs += l.tokens * l.in * l.out;
  };

  if (shape.patchEmbedding) extra('patchEmbedding', shape.patchEmbedding);
  const tokens = tokensList(o.tokensPerLayer, shape);
  const shared = sharedList(o.sharedWeights, shape.layers, reuse);
  for (let i = 0; i < shape.layers; i++) {
    const p = (product: EncoderProduct) => layerName(i, product);
    const t = tokens[i]!;
    const lc: Ctx = t === shape.tokens ? ctx : { ...ctx, shape: { ...shape, tokens: t } };
    const norm = () => unitPart(ctx.digital.layerNorm, 'layerNorm', t * d);
    // a sharing encoder reads its owner's crossbars: no static crossbar area of its own
    const stat = (name: string, kind: MappedKind, inp: number, out: number) => {
      const part = staticLayer(lc, name, kind, inp, out, t);
      return shared.includes(i) && ctx.spec.mapped[kind] ? withoutArea(part) : part;
    };
    if (reuse.includes(i)) {
      if (tb) {
        push(i, 'tbNorm', norm());
        push(i, 'tbLinear', staticLayer(lc, p('transformation'), 'projection', d, d, t));
        push(i, 'tbActivation', unitPart(ctx.digital.activation, 'activation', t * d));
      }
    } else {
      if (shape.preNorm) push(i, 'norm1', norm());
      push(i, 'qkv', parallel((['query', 'key', 'value'] as const).map((n) => stat(p(n), 'qkv', d, d))));
      const a = attentionParts(lc);
      if (ctx.attention) push(i, 'kvWrite', a.kvWrite);
      push(i, 'scores', a.scores);
      push(i, 'softmax', softmaxPart(lc));
      push(i, 'mix', a.mix);
    }
    push(i, 'projection', stat(p('output'), 'projection', d, d));
    push(i, shape.preNorm ? 'norm2' : 'norm1', norm()); // before the MLP, or after attention's residual
    push(i, 'ffnIn', stat(p('ffnIn'), 'ffn', d, f));
    push(i, 'activation', unitPart(ctx.digital.activation, 'activation', t * f));
    push(i, 'ffnOut', stat(p('ffnOut'), 'ffn', f, d));
    if (!shape.preNorm) push(i, 'norm2', norm());
  }
  for (const c of shape.classifier) extra('classifier', c);
  if (!hw.layers) checkOverrides(spec, [...ctx.layers]);

  return {
    model: shape,
    hardware: {
      name: spec.name,
      technology: spec.technology,
      attention: attnX ? attnX.technology : 'digital',
      weightSlices: sliceCount(spec.cells),
      kvSlices: attnX ? ctx.kvSlices : null,
    },
    architecture: arch,
    reuse,
    sharedWeights: shared,
    tokensPerLayer: tokens,
    transformationBlocks: tb,
    beta,
    stages,
    totals: totals(stages, uncostedMacs),
    notes: [...notes],
  };
}

function totals(stages: StageCost[], uncostedMacs: number): CostTotals {
  const sum = (f: (s: StageCost) => number) => stages.reduce((to, s) => to + f(s), 0);
  const e = sum((s) => total(s.energyPJ));
  const dl = sum((s) => total(s.delayNs));
  const a = sum((s) => total(s.areaMm2));
  const macs = sum((s) => s.macs);
  const energyMJ = e * 1e-9;
  const delayMs = dl * 1e-6;
  return {
    energyMJ,
    delayMs,
    areaMm2: a,
    edap: energyMJ * delayMs * a,
    topsPerW: macs / e,
    topsPerMm2: macs / (dl * 1e3) / a,
    macs,
    uncostedMacs,
    crossbars: sum((s) => s.crossbars),
    pes: sum((s) => s.pes),
    tiles: sum((s) => s.tiles),
  };
}
