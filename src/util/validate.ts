/**
 * Schema validation with messages a person can act on: each problem names the file, the
 * field path, the value received and what is allowed; unknown keys get a "did you mean".
 */
import type { z } from 'zod';

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`${file}:\n${problems.map((p) => `  ✖ ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Parses `value` with `schema`, or throws a ConfigError listing every problem. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, file: string): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const problems = r.error.issues.map((issue) => {
    const path = issue.path.map(String).join('.') || '(root)';
    if (issue.code === 'unrecognized_keys') {
      const known = knownKeys(schema, issue.path);
      return issue.keys
        .map((k) => {
          const near = closest(k, known);
          return `${path === '(root)' ? '' : `${path}.`}${k}: unknown field${near ? ` (did you mean '${near}'?)` : ''}`;
        })
        .join('\n  ✖ ');
    }
    const received = valueAt(value, issue.path);
    const shown = received === undefined ? 'nothing' : JSON.stringify(received);
    return `${path}: ${issue.message.replace(/^Invalid input: /, '')}, received ${shown}`;
  });
  throw new ConfigError(file, problems);
}

function valueAt(v: unknown, path: readonly PropertyKey[]): unknown {
  return path.reduce<unknown>(
    (o, k) => (o && typeof o === 'object' ? (o as Record<PropertyKey, unknown>)[k] : undefined),
    v,
  );
}

/** The keys the schema allows at `path` (best effort through objects). */
function knownKeys(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let s: unknown = schema;
  for (const k of path) {
    const shape = (s as { shape?: Record<string, unknown> }).shape;
    s = shape?.[String(k)];
    // unwrap optional/default wrappers
    while (s && (s as { unwrap?: () => unknown }).unwrap && !(s as { shape?: unknown }).shape) {
      s = (s as { unwrap: () => unknown }).unwrap();
    }
  }
  const shape = (s as { shape?: Record<string, unknown> } | undefined)?.shape;
  return shape ? Object.keys(shape) : [];
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
