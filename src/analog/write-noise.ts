/**
 * Programming (write) noise, each kind in one record: its native kernel code, the constant that
 * scales its noise, and the conductance a device written to g µS with a N(0, 1) draw ξ takes, on
 * one device (float64: static weights) and on tensors (float32: K/V writes, which the native
 * kernel computes in the same order). The two forms keep the order of operations their numbers
 * were made with; test/analog/write-noise.test.ts holds them equal.
 */
import type { Tensor } from '../graph/tensor.js';
import type { Rng } from '../util/math.js';
import { PCM_PROG_FIT } from './devices/pcm.js';
import type { Crossbar } from './spec.js';

type Programming = Crossbar['program'];
export type WriteKind = Programming['kind'];
type Mapping = Crossbar['mapping'];

interface WriteKindDef<P> {
  /** The number the native kernel knows the kind by. */
  code: number;
  /** The constant its noise is scaled by (the native kernel's `writeNoiseScale`). */
  scale(p: P, m: Mapping): number;
  /** g written on one device, with ξ drawn from `rng` (one draw; none for 'none'). */
  device(p: P, m: Mapping): (g: number, rng: Rng) => number;
  /** g written with draws ξ, element-wise. */
  tensor(p: P, m: Mapping): (g: Tensor, xi: Tensor) => Tensor;
}

const pcmScale = (p: { scale: number }, m: Mapping) => (m.gMaxUS / PCM_PROG_FIT.gMaxRefUS) * p.scale;

/** The kinds; 'none' writes g and draws nothing. */
export const WRITE_KINDS: { [K in WriteKind]: WriteKindDef<Extract<Programming, { kind: K }>> } = {
  none: {
    code: 0,
    scale: () => 0,
    device: () => (g) => g,
    tensor: () => (g) => g,
  },
  /** G·(1 + σξ) */
  relative: {
    code: 1,
    scale: (p) => p.sigma,
    device: (p) => (g, rng) => Math.max(0, g * (1 + p.sigma * rng.normal())),
    tensor: (p) => (g, xi) => g.mul(xi.mul(p.sigma).add(1)).maximum(0),
  },
  /**
   * G + γσ·sqrt((G − G_MIN)(G_MAX − G_MIN))·ξ (ClipFormer), floored at G_MIN: the law's noise
   * vanishes there, and no device goes below it. The std is detached (√ at G_MIN has no derivative).
   */
  writeSqrt: {
    code: 2,
    scale: (p) => p.gamma * p.sigma,
    device:
      (p, { gMinUS, gMaxUS }) =>
      (g, rng) =>
        Math.max(
          gMinUS,
          g + p.gamma * p.sigma * Math.sqrt(Math.max(g - gMinUS, 0) * (gMaxUS - gMinUS)) * rng.normal(),
        ),
    tensor:
      (p, { gMinUS, gMaxUS }) =>
      (g, xi) => {
        const spread = g
          .sub(gMinUS)
          .maximum(0)
          .mul(gMaxUS - gMinUS)
          .sqrt()
          .detach();
        return g.add(spread.mul(xi).mul(p.gamma * p.sigma)).maximum(gMinUS);
      },
  },
  /** G + σ·G_MAX·ξ */
  additive: {
    code: 3,
    scale: (p, m) => p.sigma * m.gMaxUS,
    device: (p, m) => (g, rng) => Math.max(0, g + p.sigma * m.gMaxUS * rng.normal()),
    tensor: (p, m) => (g, xi) => g.add(xi.mul(p.sigma * m.gMaxUS)).maximum(0),
  },
  /** G + σ_prog(G/G_MAX)·ξ, σ_prog = c0 + c1·ĝ + c2·ĝ² at G_MAX = 25 µS, scaled (aihwkit's PCM fit) */
  pcm: {
    code: 4,
    scale: pcmScale,
    device: (p, m) => {
      const f = PCM_PROG_FIT;
      const ratio = m.gMaxUS / f.gMaxRefUS;
      return (g, rng) => {
        const gh = g / m.gMaxUS;
        return Math.max(
          0,
          g + Math.max(f.c0 + f.c1 * gh + f.c2 * gh * gh, 0) * ratio * p.scale * rng.normal(),
        );
      };
    },
    tensor: (p, m) => (g, xi) => {
      const f = PCM_PROG_FIT;
      const gh = g.div(m.gMaxUS);
      const std = gh.mul(f.c2).add(f.c1).mul(gh).add(f.c0).maximum(0).mul(pcmScale(p, m)).detach();
      return g.add(std.mul(xi)).maximum(0);
    },
  },
};

/** The record of a crossbar's kind, typed for its parameters (TypeScript cannot relate the two through `kind`). */
export const writeKindOf = (x: Crossbar) => WRITE_KINDS[x.program.kind] as WriteKindDef<Programming>;

/** The writeSqrt law applied once per written value (`per: 'value'`) rather than per bit-slice cell. */
export const writesPerValue = (x: Crossbar): boolean =>
  x.program.kind === 'writeSqrt' && x.program.per === 'value';

/**
 * One written value under `per: 'value'`: the device that holds it sits at G = G_MIN + f·ΔG, f ∈
 * [0, 1] its fraction of the range, and is written by the law (floored at G_MIN) and capped at
 * G_MAX, as its bit slices hold no more; → the fraction it then holds, which its cells are
 * written to without noise of their own. On one device (float64) and on tensors (float32).
 */
export const VALUE_WRITE = {
  device: (x: Crossbar) => {
    const law = writeKindOf(x).device(x.program, x.mapping);
    const { gMinUS: gMin, gMaxUS: gMax } = x.mapping;
    return (f: number, rng: Rng) =>
      (Math.min(law(gMin + f * (gMax - gMin), rng), gMax) - gMin) / (gMax - gMin);
  },
  tensor: (x: Crossbar) => {
    const law = writeKindOf(x).tensor(x.program, x.mapping);
    const { gMinUS: gMin, gMaxUS: gMax } = x.mapping;
    return (f: Tensor, xi: Tensor) =>
      law(f.mul(gMax - gMin).add(gMin), xi)
        .minimum(gMax)
        .sub(gMin)
        .div(gMax - gMin);
  },
};

/**
 * What the native kernel is compiled with from this module: scripts/build-native.mjs writes it
 * into a header, and the kernel reports it back (`constants`), so that a kernel built from
 * other codes is never used.
 */
export const NATIVE_CONSTANTS = {
  writeKinds: Object.fromEntries(Object.entries(WRITE_KINDS).map(([k, d]) => [k, d.code])) as Record<
    WriteKind,
    number
  >,
  pcmProgFit: { c0: PCM_PROG_FIT.c0, c1: PCM_PROG_FIT.c1, c2: PCM_PROG_FIT.c2 },
};
