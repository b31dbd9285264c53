/**
 * randomNormal and randomUniform: a new draw at every run, from a hash of (seed, the run's
 * draw count, element). The distributions are right; the streams are not ONNX Runtime's.
 * The draw count is the second word of the per-run uniform (`Run` of graph/gpu-kernel.ts keeps
 * the same layout and calls it pad0).
 */
import type { KernelSpec } from '../../graph/gpu-kernel.js';
import { numel, type Shape } from '../../graph/shape.js';
import { bindings, literal, perElement } from './wgsl.js';

const HEAD = `${bindings([], 'f32')}
struct Draw { firstSample: u32, draw: u32, pad1: u32, pad2: u32 }
@group(1) @binding(0) var<uniform> run: Draw;
fn mix32(x: u32) -> u32 {
  let s = x * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}
// (0, 1), never 0: 24 random bits and a half
fn unit(key: u32, k: u32) -> f32 { return (f32(mix32(key ^ mix32(k)) >> 8u) + 0.5) / 16777216.0; }`;

export type RandomAttrs =
  | { kind: 'normal'; seed: number; mean: number; std: number }
  | { kind: 'uniform'; seed: number; low: number; high: number };

export function randomKernel(shape: Shape, a: RandomAttrs): KernelSpec {
  const value =
    a.kind === 'normal'
      ? `${literal(a.mean, 'float32')} + ${literal(a.std, 'float32')} * sqrt(-2.0 * log(unit(key, 2u * i))) * cos(6.283185307 * unit(key, 2u * i + 1u))`
      : `${literal(a.low, 'float32')} + ${literal(a.high - a.low, 'float32')} * unit(key, i)`;
  const body = `  let key = mix32(${Math.trunc(a.seed) >>> 0}u ^ mix32(run.draw));
  out[i] = ${value};`;
  return { ...perElement(numel(shape), HEAD, body), inputs: 0, run: true };
}
