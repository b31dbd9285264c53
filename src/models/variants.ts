/**
 * Structural variants of an encoder stack, kept in config.json as extra HF-style fields (a
 * plain transformers loader ignores them; xbar reads, validates and writes them back):
 *
 * - `trex_reuse: {"3": 2}` — TReX attention reuse: encoder 3 drops its attention block and
 *   feeds TB(attention output of encoder 2) to its projection, TB = LayerNorm → d×d linear →
 *   GELU, stored as `<root>.encoder.layer.3.attention.transformation.{layernorm,dense}.*`.
 * - `xbar_share_weights: {"1": 0}` — weight sharing (baseline): encoder 1 uses encoder 0's
 *   weights; its own tensors are not stored.
 * - `xbar_token_keep: {"1": 0.5}` — token pruning (baseline): after encoder 1, keep the class
 *   token and the top half of the other tokens by the class token's attention (mean over heads).
 *
 * Keys and encoder indices count from 0, as in HF tensor names.
 */

import { InputError } from '../util/errors.js';

export interface Variants {
  /** Reuse encoder → the earlier encoder whose attention output it takes. */
  reuse?: Readonly<Record<number, number>>;
  /** Sharing encoder → the earlier encoder whose weights it uses. */
  shareWeights?: Readonly<Record<number, number>>;
  /** Encoder → fraction of its non-class tokens kept after it, in (0, 1]. */
  tokenKeep?: Readonly<Record<number, number>>;
}

const VARIANT_FIELDS = {
  reuse: 'trex_reuse',
  shareWeights: 'xbar_share_weights',
  tokenKeep: 'xbar_token_keep',
} as const satisfies Record<keyof Variants, string>;

const entries = (r: Readonly<Record<number, number>> | undefined): [number, number][] =>
  Object.entries(r ?? {}).map(([k, v]) => [Number(k), v]);

/**
 * Reads and checks the variant fields of a config.json object for a stack of `layers`
 * encoders; every problem names the field, the key and the value.
 */
export function parseVariants(json: Record<string, unknown>, layers: number, file: string): Variants {
  const problems: string[] = [];
  const out: Variants = {};
  for (const [key, field] of Object.entries(VARIANT_FIELDS) as [keyof Variants, string][]) {
    const raw = json[field];
    if (raw === undefined || raw === null) continue;
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      problems.push(`${field}: ${JSON.stringify(raw)} is not allowed, use an object such as {"3": 2}`);
      continue;
    }
    const map: Record<number, number> = {};
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
      const i = /^\d+$/.test(k) ? Number(k) : Number.NaN;
      const where = `${field}."${k}"`;
      if (key === 'tokenKeep') {
        if (!(i >= 0 && i <= layers - 2)) {
          problems.push(
            `${where}: key is not allowed, use an encoder index 0..${layers - 2} (tokens pruned after it)`,
          );
        } else if (typeof v !== 'number' || !(v > 0 && v <= 1)) {
          problems.push(`${where}: ${JSON.stringify(v)} is not allowed, use a fraction in (0, 1]`);
        } else map[i] = v;
        continue;
      }
      if (!(i >= 1 && i <= layers - 1)) {
        problems.push(
          `${where}: key is not allowed, use an encoder index 1..${layers - 1} (encoder 0 has no earlier encoder)`,
        );
      } else if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= i) {
        problems.push(
          `${where}: ${JSON.stringify(v)} is not allowed, use an earlier encoder's index 0..${i - 1}`,
        );
      } else map[i] = v;
    }
    if (Object.keys(map).length) out[key] = map;
  }
  const reused = new Set(entries(out.reuse).map(([k]) => k));
  for (const [k] of entries(out.shareWeights)) {
    if (reused.has(k))
      problems.push(
        `${VARIANT_FIELDS.shareWeights}."${k}": encoder ${k} also reuses attention; use one or the other`,
      );
  }
  if (out.reuse && out.tokenKeep) {
    problems.push(
      `${VARIANT_FIELDS.tokenKeep}: token pruning with ${VARIANT_FIELDS.reuse} is not supported (reused attention outputs would have other token counts)`,
    );
  }
  if (problems.length) throw new InputError(file, problems);
  return out;
}

/** The variant fields in config.json form (only those in use). */
export function variantsToHf(v: Variants): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const [key, field] of Object.entries(VARIANT_FIELDS) as [keyof Variants, string][]) {
    const list = entries(v[key]);
    if (list.length)
      out[field] = Object.fromEntries(list.sort((a, b) => a[0] - b[0]).map(([k, x]) => [String(k), x]));
  }
  return out;
}

/** The encoder whose weights encoder `i` uses (itself unless it shares; chains resolve). */
function weightOwner(v: Variants, i: number): number {
  let j = i;
  while (v.shareWeights?.[j] !== undefined) j = v.shareWeights[j]!;
  return j;
}

export const reuseEncoders = (v: Variants): number[] =>
  entries(v.reuse)
    .map(([k]) => k)
    .sort((a, b) => a - b);

/** Tokens each encoder sees when `tokens` enter the stack and pruning keeps a fraction after some. */
export function tokensPerEncoder(v: Variants, layers: number, tokens: number): number[] {
  const out: number[] = [];
  let t = tokens;
  for (let i = 0; i < layers; i++) {
    out.push(t);
    const keep = v.tokenKeep?.[i];
    if (keep !== undefined) t = keptTokens(t, keep);
  }
  return out;
}

/** The class token plus ⌈keep·(t − 1)⌉ others (at least one). */
export const keptTokens = (t: number, keep: number): number =>
  1 + Math.max(1, Math.ceil(keep * (t - 1) - 1e-9));

/** The weights of each encoder: sharing encoders get their owner's (the same tensors). */
export function stackWeights<W>(layers: number, v: Variants, build: (i: number) => W): W[] {
  const own: W[] = [];
  for (let i = 0; i < layers; i++) own.push(weightOwner(v, i) === i ? build(i) : own[weightOwner(v, i)]!);
  return own;
}
