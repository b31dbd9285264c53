/** Timing helpers, argument parsing and the MatMul baseline shared by the benchmarks. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { hostArray } from '../src/graph/ndarray.js';
import { input, param } from '../src/graph/tensor.js';
import { compile, type Provider } from '../src/runtime/session.js';
import { Rng } from '../src/util/math.js';

/**
 * A benchmark's flags: `--help` prints the usage lines of its header comment (the lines that
 * start with `node dist/bench/`), and an unknown or malformed flag says so with them, exit 2,
 * instead of a stack trace.
 */
export function benchArgs<O extends NonNullable<ParseArgsConfig['options']>>(
  moduleUrl: string,
  options: O,
): ReturnType<typeof parseArgs<{ options: O }>>['values'] {
  const usage = () => {
    const source = fileURLToPath(moduleUrl).replace(/\/dist\/bench\/([\w-]+)\.js$/, '/bench/$1.ts');
    let lines: string[] = [];
    try {
      lines = readFileSync(source, 'utf8')
        .split('\n')
        .filter((l) => /^\s*\*\s+node dist\/bench\//.test(l))
        .map((l) => l.replace(/^\s*\*\s+/, '  '));
    } catch {
      // no sources next to the build: the message alone
    }
    return lines.length ? `usage:\n${lines.join('\n')}` : '';
  };
  if (process.argv.includes('--help')) {
    console.log(usage());
    process.exit(0);
  }
  try {
    return parseArgs({ options }).values;
  } catch (e) {
    console.error(`${(e as Error).message}\n${usage()}`);
    process.exit(2);
  }
}

/** Runs `f` `warmup` times untimed, then `reps` times; returns seconds per run. */
export async function timeIt(f: () => Promise<unknown>, reps: number, warmup = 1): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await f();
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await f();
    out.push((performance.now() - t) / 1e3);
  }
  return out;
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export const fmtRow = (...cells: string[]): string =>
  cells.map((c, i) => c.padEnd([24, 14, 12, 0][i] ?? 0)).join(' ');

/**
 * The baseline every benchmark divides by: one n³ MatMul whose right operand is baked, so the
 * runtime pre-packs it as it does a model's weights (its best case). Median of 10 runs.
 */
export async function matmulBaseline(
  provider: Provider,
  n = 2048,
): Promise<{ seconds: number; gflops: number }> {
  const rng = new Rng(99);
  const randn = () => hostArray('float32', [n, n], rng.fillNormal(new Float32Array(n * n)));
  const mm = await compile(
    { c: input('a', [n, n]).matmul(param('b', randn())) },
    { provider, bakeParams: true },
  );
  const feeds = { a: randn() };
  const seconds = median(await timeIt(() => mm.run(feeds), 10, 2));
  return { seconds, gflops: (2 * n ** 3) / seconds / 1e9 };
}
