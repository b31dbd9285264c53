/**
 * A hardware spec resolved once into crossbars, which the simulator, training and the cost model
 * read: each layer's (the base fields with every override whose glob matches it) and K/V's.
 */
import type { Model } from '../models/index.js';
import { InputError } from '../util/errors.js';
import { parseWith } from '../util/validate.js';
import { Crossbar, type HardwareSpec } from './spec.js';

export type Json = Record<string, unknown>;
export const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Deep merge of `over` onto `base`. Arrays are replaced; an object whose `kind` differs from
 * the base's replaces it whole (its fields belong to another variant).
 */
export function mergeSpec(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    const sameKind = !isObject(v) || !('kind' in v) || !isObject(b) || b['kind'] === v['kind'];
    out[k] = isObject(v) && isObject(b) && sameKind ? mergeSpec(b, v) : v;
  }
  return out;
}

/** A layer-name glob: '*' matches any run of characters (dots included). */
export const globRegExp = (pattern: string) =>
  new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );

/** A spec resolved into crossbars. */
export interface ResolvedSpec {
  readonly spec: HardwareSpec;
  /** The static layers it was resolved for, every override matching one of them; null: not known. */
  readonly layers: readonly string[] | null;
  /** The crossbars K and V are written into, or null when attention is digital. */
  readonly attention: Crossbar | null;
  /** The static crossbar of layer `name`: the base fields with every matching override applied. */
  crossbar(name: string): Crossbar;
}

/**
 * Resolves `spec`: the attention crossbar and each override over the base are validated now (so
 * a run never fails half-way), a layer's crossbar at its first use, once per set of overrides
 * that match. Given the model's static `layers` (or the model), an override whose glob matches
 * none of them is an error naming it and the layers.
 */
export function resolveSpec(
  spec: HardwareSpec,
  layers?: Model | readonly string[],
  where = spec.name,
): ResolvedSpec {
  const { overrides } = spec;
  const base: Json = Object.fromEntries(
    Object.keys(Crossbar.shape).map((k) => [k, spec[k as keyof Crossbar]]),
  );
  const attention =
    spec.attention.kind === 'digital'
      ? null
      : parseWith(Crossbar, mergeSpec(base, spec.attention.device), `${where}: attention.device`);
  for (const [i, o] of overrides.entries())
    parseWith(Crossbar, mergeSpec(base, o.set), `${where}: overrides[${i}].set`);
  const globs = overrides.map((o) => globRegExp(o.layers));
  const byOverrides = new Map<string, Crossbar>();
  const crossbar = (name: string): Crossbar => {
    const matching = overrides.filter((_, i) => globs[i]!.test(name));
    const key = matching.map((o) => overrides.indexOf(o)).join();
    let x = byOverrides.get(key);
    if (!x) {
      x = parseWith(
        Crossbar,
        matching.reduce((f, o) => mergeSpec(f, o.set), base),
        `${where}: crossbar of ${name}`,
      );
      byOverrides.set(key, x);
    }
    return x;
  };
  const names =
    !layers || !('linearLayers' in layers) ? (layers ?? null) : layers.linearLayers().map((l) => l.name);
  if (names) checkOverrides(spec, names, where);
  return { spec, layers: names, attention, crossbar };
}

/** Throws unless every override of `spec` matches one of `layers` (the static layers of a model). */
export function checkOverrides(spec: HardwareSpec, layers: readonly string[], where = spec.name): void {
  const unmatched = spec.overrides.flatMap((o, i) =>
    layers.some((l) => globRegExp(o.layers).test(l))
      ? []
      : [`overrides[${i}].layers: '${o.layers}' matches no layer; the layers are ${layers.join(', ')}`],
  );
  if (unmatched.length) throw new InputError(where, unmatched);
}
