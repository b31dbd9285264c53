/**
 * Schema validation with messages a person can act on: each problem names the file, the
 * field path, the value received and what is allowed; unknown keys get a "did you mean".
 */
import { z } from 'zod';
import { InputError, type Problem, shown } from './errors.js';

/** A whole number in [lo, hi] whose error reads "use lo..hi". */
export const intIn = (lo: number, hi: number) => {
  const error = `use a whole number ${lo}..${hi}`;
  return z.number({ error }).int({ error }).min(lo, { error }).max(hi, { error });
};

/** A number in [lo, hi] (or (lo, hi] with `openLow`) whose error says the range. */
export const numIn = (lo: number, hi: number, openLow = false) => {
  const error = `use a number in ${openLow ? '(' : '['}${lo}, ${hi}]`;
  const base = z.number({ error });
  return (openLow ? base.gt(lo, { error }) : base.min(lo, { error })).max(hi, { error });
};

/** A number ≥ 0 (or > 0) whose error says so and what it measures. */
export const nonNeg = (what: string) =>
  z.number({ error: `use a number ≥ 0 (${what})` }).min(0, { error: `use a number ≥ 0 (${what})` });
export const positive = (what: string) =>
  z.number({ error: `use a number > 0 (${what})` }).gt(0, { error: `use a number > 0 (${what})` });

/** Parses `value` with `schema`, or throws an InputError listing every problem. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, file: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const problems = r.error.issues.map((issue): Problem => {
    const path = issue.path.map(String).join('.') || '(root)';
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(schema, issue.path, value);
      return issue.keys
        .map((k) => {
          const near = closest(k, known);
          return `${path === '(root)' ? '' : `${path}.`}${k}: unknown field${near ? ` (did you mean '${near}'?)` : ''}`;
        })
        .join('\n  ✖ ');
    }
    const received = valueAt(value, issue.path);
    if (issue.code === 'invalid_union' && 'discriminator' in issue) {
      const options = (issue as { options?: unknown[] }).options ?? [];
      return `${path}: ${shown(received)} is not allowed, use one of ${options.map((o) => `'${String(o)}'`).join(', ')}`;
    }
    if (received === undefined) return `${path}: missing, ${issue.message.replace(/^Invalid input: /, '')}`;
    if (issue.message.startsWith('use ')) return { field: path, value: received, allowed: issue.message };
    return `${path}: ${issue.message.replace(/^Invalid input: /, '')}, received ${shown(received)}`;
  });
  throw new InputError(file, problems);
}

function valueAt(v: unknown, path: readonly PropertyKey[]): unknown {
  return path.reduce<unknown>(
    (o, k) => (o && typeof o === 'object' ? (o as Record<PropertyKey, unknown>)[k] : undefined),
    v,
  );
}

/** The keys the schema allows at `path` (through objects, defaults and discriminated unions). */
function knownKeys(schema: z.ZodType, path: readonly PropertyKey[], value: unknown): string[] {
  type Node = {
    shape?: Record<string, unknown>;
    unwrap?: () => unknown;
    options?: unknown[];
    def?: { innerType?: unknown };
  };
  const resolve = (s: unknown, v: unknown): Node | undefined => {
    let n = s as Node | undefined;
    for (let i = 0; i < 8 && n && !n.shape; i++) {
      if (n.options) {
        const kind = (v as { kind?: unknown } | undefined)?.kind;
        n = n.options.find(
          (o) => ((o as Node).shape?.['kind'] as { value?: unknown } | undefined)?.value === kind,
        ) as Node | undefined;
      } else n = (n.unwrap?.() ?? n.def?.innerType) as Node | undefined;
    }
    return n;
  };
  let node = resolve(schema, value);
  let v = value;
  for (const k of path) {
    v = (v as Record<PropertyKey, unknown> | undefined)?.[k];
    node = resolve(node?.shape?.[String(k)], v);
  }
  return node?.shape ? Object.keys(node.shape) : [];
}

/** The candidate within edit distance 3 (and under half the word) closest to `word`. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.min(3, Math.ceil(word.length / 2));
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d <= bestD) {
      best = c;
      bestD = d - 1e-9;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
