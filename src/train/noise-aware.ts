/**
 * Variation-aware training (ClipFormer's VAT, §1 of METHODS.md): the training forward pass sees
 * the hardware's noise, drawn fresh at every step inside the graph, so the weights learn to
 * tolerate it while gradients reach them.
 *
 * - Static layers the spec maps: each weight becomes w·(1 + σ·ε), ε ~ N(0, 1) per weight and
 *   step, with σ² the sum of the squares of the relative programming and read noise σ's (one
 *   draw per step stands for one programming read many times); additive programming noise adds
 *   σ·max|W|·ε. Output noise (σ in normalised output units) adds σ·max|W|·max|x|·√R·ε to each
 *   output, R the layer's input tiles: the inference model's per-tile noise scaled back to
 *   weight and input units (max|x| over the whole vector instead of per tile). Quantisers of
 *   static layers and drift are left out: the noise is what these recipes train against (the
 *   post-training paper's HWA: additive weight noise 0.06 and output noise 0.1).
 * - Attention with K and V on crossbars: K and V are written per input with the spec's write
 *   noise (γ as given) through the same `dynamicProduct` as inference, with its ADC as a
 *   straight-through quantiser. Two changes keep gradients alive, both stated in the docs: the
 *   DAC runs as PWM (same levels as bit-serial) and the cells as analog, because extracting bits
 *   with floor has a straight-through derivative of exactly zero (⌊v/2^i⌋ − 2⌊v/2^(i+1)⌋).
 */
import { layerKind } from '../analog/analog-model.js';
import { dynamicProduct } from '../analog/dynamic.js';
import { seedFor } from '../analog/mvm.js';
import { attentionCrossbar, crossbarFor } from '../analog/presets.js';
import type { Crossbar, HardwareSpec } from '../analog/spec.js';
import { randomNormal, type Tensor } from '../graph/tensor.js';
import { digital, type Matmuls } from '../models/encoder.js';
import { ConfigError } from '../util/validate.js';

/** The weight noise of a static crossbar as (relative σ, additive σ in units of max|W|). */
export function weightNoise(x: Crossbar, where: string): { relative: number; additive: number } {
  let rel2 = 0;
  let additive = 0;
  const p = x.program;
  if (p.kind === 'relative') rel2 += p.sigma ** 2;
  else if (p.kind === 'additive') additive = p.sigma;
  else if (p.kind !== 'none') {
    throw new ConfigError(where, [
      `program.kind: '${p.kind}' is not supported by noise-aware training; use 'relative', 'additive' or 'none' (e.g. --set program.kind=relative)`,
    ]);
  }
  const r = x.readNoise;
  if (r.kind === 'relative') rel2 += r.sigma ** 2;
  else if (r.kind !== 'none') {
    throw new ConfigError(where, [
      `readNoise.kind: '${(r as { kind: string }).kind}' is not supported by noise-aware training; use 'relative' or 'none'`,
    ]);
  }
  return { relative: Math.sqrt(rel2), additive };
}

/** W with fresh noise every run: w·(1 + σ_rel·ε) + σ_add·max|W|·ε′. */
export function noisyWeight(w: Tensor, noise: { relative: number; additive: number }, seed: number): Tensor {
  let y = w;
  if (noise.relative > 0) y = y.mul(randomNormal(w.shape, { seed }).mul(noise.relative).add(1));
  if (noise.additive > 0) {
    // the scale is the layer's range, not something to learn: no gradient through max|W|
    const scale = w.abs().max([-2, -1], true).detach();
    y = y.add(
      randomNormal(w.shape, { seed: seed ^ 0x5bd1e995 })
        .mul(scale)
        .mul(noise.additive),
    );
  }
  return y;
}

/** The K/V crossbar for training: PWM DAC and analog cells (see the module comment). */
function trainableAttention(x: Crossbar): Crossbar {
  return {
    ...x,
    cells: { kind: 'analog' },
    dac: x.dac.kind === 'uniform' ? { ...x.dac, mode: 'pwm' } : x.dac,
  };
}

/** Crossbar products with the spec's noise drawn in the graph, for training steps. */
export function noiseAwareMatmuls(spec: HardwareSpec, seed: number): Matmuls {
  const attention = attentionCrossbar(spec);
  const kv = attention ? trainableAttention(attention) : null;
  return {
    linear: (name, x, w, b) => {
      if (!spec.mapped[layerKind(name)]) return digital.linear(name, x, w, b);
      const xbar = crossbarFor(spec, name);
      const noise = weightNoise(xbar, `${spec.name}: ${name}`);
      let y = x.matmul(noisyWeight(w, noise, seedFor(seed, `vat:${name}`)));
      if (xbar.outputNoise.kind === 'gaussian' && xbar.outputNoise.sigma > 0) {
        const tiles = Math.ceil(w.shape[0]! / xbar.tile.rows);
        const scale = w.abs().max([0, 1], true).mul(x.abs().max(-1, true)).detach();
        const eps = randomNormal(y.shape, { seed: seedFor(seed, `vat-out:${name}`) });
        y = y.add(eps.mul(scale).mul(xbar.outputNoise.sigma * Math.sqrt(tiles)));
      }
      return b ? y.add(b) : y;
    },
    scores: (name, q, kT) => (kv ? dynamicProduct(q, kT, kv, seedFor(seed, `vat:${name}`)) : q.matmul(kT)),
    mix: (name, s, v) => (kv ? dynamicProduct(s, v, kv, seedFor(seed, `vat:${name}`)) : s.matmul(v)),
  };
}
