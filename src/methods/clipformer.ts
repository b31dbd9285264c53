/**
 * ClipFormer (Bhattacharjee, Moitra, Panda; TCAD 2024): a two-stage transform of the K and V
 * conductances written into crossbars at run time, after mapping and before write noise.
 *   Stage I:  G ← max(G − α·G_MIN, G_MIN), α ≥ 1   (small |K|, |V| go to G_MIN, where the
 *             write noise γσ_W·sqrt((G − G_MIN)(G_MAX − G_MIN)) vanishes)
 *   Stage II: G ← min(G, β·G_MAX), 0 < β ≤ 1       (clips the largest values; β = 1 skips it)
 * Both act on each device of the differential pair; the device at G_MIN is a fixed point of
 * both stages, so the pair keeps its sign. See docs/methods.md §1 and docs/experiments.md.
 */
import { z } from 'zod';
import type { ConductanceTransform } from '../analog/dynamic.js';
import type { Crossbar } from '../analog/spec.js';
import type { Tensor } from '../graph/tensor.js';
import { encoderProduct } from '../models/layer-names.js';
import { InputError } from '../util/errors.js';
import { intIn, numIn, parseWith } from '../util/validate.js';

export const ClipFormerConfig = z
  .object({
    alpha: numIn(1, 1e6)
      .default(2)
      .describe('stage I: subtract α·G_MIN, floor at G_MIN (α ≥ 1; with G_MIN = 0 it is the identity)'),
    beta: numIn(0, 1, true)
      .default(1)
      .describe('stage II: ceiling β·G_MAX (0 < β ≤ 1; β = 1 is the identity)'),
    layers: z
      .union([
        z.literal('all'),
        z.array(intIn(0, 100000)).min(1, { error: 'list at least one layer, or use "all"' }),
      ])
      .default('all')
      .describe("encoder layers whose K and V are transformed: 'all' or a list of indices"),
  })
  .strict();
export type ClipFormerConfig = z.output<typeof ClipFormerConfig>;

/** A validated config from a plain object; errors name `where` (a file or flag). */
export function parseClipFormer(value: unknown, where = 'clipformer'): ClipFormerConfig {
  return parseWith(ClipFormerConfig, value, where);
}

/** Parses the `--clipformer α,β` flag ('2,0.25'; a single number sets α with β = 1). */
export function parseClipFormerFlag(text: string, flag = '--clipformer'): ClipFormerConfig {
  const parts = text.split(',').map((s) => s.trim());
  const nums = parts.map(Number);
  if (parts.length > 2 || nums.some((n) => !Number.isFinite(n)))
    throw new InputError(flag, [`'${text}' is not allowed, use α,β e.g. 2,0.25 (α ≥ 1, 0 < β ≤ 1)`]);
  return parseClipFormer({ alpha: nums[0], beta: nums[1] ?? 1 }, flag);
}

/** Checks that the transform keeps a conductance window on this crossbar (β·G_MAX > G_MIN). */
export function checkWindow(c: ClipFormerConfig, xbar: Crossbar, where = 'clipformer'): void {
  const { gMinUS, gMaxUS } = xbar.mapping;
  if (c.beta * gMaxUS <= gMinUS)
    throw new InputError(where, [
      `beta: ${c.beta}·G_MAX = ${c.beta * gMaxUS} µS is not above G_MIN = ${gMinUS} µS; use β > ${gMinUS / gMaxUS}`,
    ]);
}

/** Stage I then stage II on device conductances g (µS). */
export function clipformerTransform(c: ClipFormerConfig): ConductanceTransform {
  return (g: Tensor, xbar: Crossbar): Tensor => {
    const { gMinUS, gMaxUS } = xbar.mapping;
    // α = 1 still shifts by G_MIN (values below 2·G_MIN go to G_MIN), as the paper writes it
    let out = g.sub(c.alpha * gMinUS).maximum(gMinUS);
    if (c.beta < 1) out = out.minimum(c.beta * gMaxUS);
    return out;
  };
}

/** The per-product transform for AnalogModel/monteCarlo: ClipFormer on the chosen layers only. */
export function kvTransformFor(
  c: ClipFormerConfig | readonly (ClipFormerConfig | null)[],
): (name: string) => ConductanceTransform | undefined {
  if (Array.isArray(c)) {
    // one config (or null = off) per encoder layer, e.g. from a per-layer search
    const per = (c as readonly (ClipFormerConfig | null)[]).map((x) =>
      x ? clipformerTransform(x) : undefined,
    );
    return (name) => {
      const i = encoderProduct(name)?.encoder;
      return i === undefined ? undefined : per[i];
    };
  }
  const one = c as ClipFormerConfig;
  const t = clipformerTransform(one);
  return (name) => {
    if (one.layers === 'all') return t;
    const i = encoderProduct(name)?.encoder;
    return i !== undefined && one.layers.includes(i) ? t : undefined;
  };
}

/**
 * The β the cost model should use for K/V bit slices: the config's β when it applies to every
 * layer (a slice saved in some layers only is not modelled per layer), else 1.
 */
export function costBeta(c: ClipFormerConfig): number {
  return c.layers === 'all' ? c.beta : 1;
}
