/**
 * The command-line flags, each parsed and validated here once, with the same message wherever
 * it is used: the flag, the value and what is allowed ("--seed -1: expected a whole number ≥ 0").
 * Numbers must be finite. Flags several commands take are defined once in `FLAGS` (`flag`); a
 * command's own flags say what their values may be (`opt`).
 */
import { type Command, Option } from 'commander';
import { type DataSpec, parseDataSpec } from '../eval/data.js';
import type { Provider } from '../runtime/session.js';
import { gpuDevice } from '../runtime/webgpu/device.js';
import { RETRIES } from '../sweep/pool.js';
import { type Duration, parseDuration } from '../util/duration.js';
import { InputError } from '../util/errors.js';

const fail = (flag: string, value: string, allowed: string): never => {
  throw new InputError(`${flag} ${value}: ${allowed}`);
};

/** A whole number ≥ `min`. */
export const wholeNumber =
  (flag: string, min = 1) =>
  (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isSafeInteger(n) || n < min)
      fail(flag, v, `expected a whole number ≥ ${min}`);
    return n;
  };

/** Bounds of a number: `gt`/`lt` exclusive, `min`/`max` inclusive. */
export interface Range {
  gt?: number;
  min?: number;
  lt?: number;
  max?: number;
}

function rangeText(r: Range): string {
  const lo = r.gt ?? r.min;
  const hi = r.lt ?? r.max;
  if (lo !== undefined && hi !== undefined)
    return `a number in ${r.gt === undefined ? '[' : '('}${lo}, ${hi}${r.lt === undefined ? ']' : ')'}`;
  if (lo !== undefined) return `a number ${r.gt === undefined ? '≥' : '>'} ${lo}`;
  if (hi !== undefined) return `a number ${r.lt === undefined ? '≤' : '<'} ${hi}`;
  return 'a finite number';
}

/** A finite number within `r`. */
export const finiteNumber =
  (flag: string, r: Range = {}) =>
  (v: string): number => {
    const n = Number(v);
    const inRange =
      (r.gt === undefined || n > r.gt) &&
      (r.min === undefined || n >= r.min) &&
      (r.lt === undefined || n < r.lt) &&
      (r.max === undefined || n <= r.max);
    if (v.trim() === '' || !Number.isFinite(n) || !inRange) fail(flag, v, `expected ${rangeText(r)}`);
    return n;
  };

/** Comma-separated finite numbers within `r`. */
export const numberList =
  (flag: string, r: Range = {}) =>
  (v: string): number[] => {
    const one = finiteNumber(flag, r);
    try {
      return v.split(',').map((x) => one(x.trim()));
    } catch {
      return fail(flag, v, `expected ${rangeText(r).replace('a number', 'numbers')}, comma-separated`);
    }
  };

export const oneOf =
  <T extends string>(flag: string, allowed: readonly T[]) =>
  (v: string): T => {
    if (!(allowed as readonly string[]).includes(v))
      fail(flag, v, `use ${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)}`);
    return v as T;
  };

/** A repeatable flag's values, in order. */
export const collect = (v: string, previous: string[]): string[] => [...previous, v];

/** `--time`: the text as given (for display) and seconds. */
export type { Duration };

/** `--data` and other data flags: KIND:PATH as given, and parsed. */
export interface DataFlag extends DataSpec {
  text: string;
}

type Parser = (value: string, previous: never) => unknown;

/**
 * What a flag's value may be: a number n for whole numbers ≥ n, a `Range` for finite numbers,
 * a list for choices, a parser; none: any text.
 */
type Kind = number | Range | readonly string[] | Parser;

const parserOf = (flag: string, kind: Kind | undefined): Parser | undefined =>
  kind === undefined || typeof kind === 'function'
    ? kind
    : typeof kind === 'number'
      ? wholeNumber(flag, kind)
      : Array.isArray(kind)
        ? oneOf(flag, kind as readonly string[])
        : finiteNumber(flag, kind as Range);

/** A command's own flag; `value` is its default, given as on the command line (it is parsed alike). */
export function opt(syntax: string, help: string, kind?: Kind, value?: string | number): Option {
  const name = syntax.split(/[ ,]/)[0]!;
  const parse = parserOf(name, kind);
  const option = new Option(syntax, help);
  if (parse) option.argParser(parse as (v: string, p: unknown) => unknown);
  if (value !== undefined)
    option.default(
      parse ? (parse as (v: string, p: unknown) => unknown)(String(value), undefined) : value,
      String(value),
    );
  return option;
}

/** KIND:PATH. */
export const dataFlag = (v: string): DataFlag => ({ ...parseDataSpec(v), text: v });

/** '3600', '10s', '1h', '1d', '1y': the time since programming. */
export const duration = (v: string): Duration => parseDuration(v, '--time');

/** The flags several commands take: syntax, help, what the value may be. */
const FLAGS = {
  model: ['--model <dir>', 'Hugging Face model folder (config.json + model.safetensors)'],
  data: [
    '--data <spec>',
    'KIND:PATH, e.g. fashion-mnist:/usr/share/datasets/fashion-mnist, glue-sst2:DIR, imagefolder:DIR',
    dataFlag,
  ],
  split: ['--split <split>', 'test | dev | train', ['test', 'dev', 'train']],
  hw: ['--hw <spec>', 'a hardware preset (xbar hw list) or a YAML/JSON spec file'],
  time: ['--time <t>', 'time since programming (drift), e.g. 1s, 1h, 1d, 1y', duration],
  repeats: ['--repeats <n>', 'Monte Carlo instances (programmings of the weights)', 1],
  seed: ['--seed <n>', 'base seed: instance i uses seed + i', 0],
  batch: ['--batch <n>', 'batch size', 1],
  limit: ['--limit <n>', 'use the first n examples', 1],
  maxLength: ['--max-length <n>', 'token limit for text', 1],
  epochs: ['--epochs <n>', 'epochs', 1],
  lr: ['--lr <x>', 'peak learning rate', { gt: 0 }],
  out: ['--out <dir>', 'output folder (one run at a time: it is locked while in use)'],
  output: ['--output <file>', 'write JSON here (default: standard output)'],
  json: ['--json', 'print JSON instead of a table'],
  provider: [
    '--provider <where>',
    'where the forwards run: cpu, webgpu (a GPU through WebGPU) or auto (the GPU when one is found, else the CPU)',
    ['cpu', 'webgpu', 'auto'],
  ],
  gpu: [
    '--gpu <adapter>',
    'which GPU runs them (with --provider webgpu or auto): its index, or part of its name',
  ],
} as const satisfies Record<string, readonly [string, string, Kind?]>;

/**
 * One of the common flags: `help` replaces the usual text, `value` is the default (parsed as
 * a value on the command line is), `required` makes it mandatory.
 */
export function flag(
  name: keyof typeof FLAGS | 'set',
  o: { help?: string; value?: string | number; required?: boolean } = {},
): Option {
  if (name === 'set')
    return new Option(
      '--set <field=value>',
      o.help ?? 'override a hardware field, e.g. adc.bits=6 (repeatable)',
    )
      .argParser(collect)
      .default([]);
  const [syntax, help, kind] = FLAGS[name] as readonly [string, string, Kind?];
  const option = opt(syntax, o.help ?? help, kind, o.value);
  return o.required ? option.makeOptionMandatory() : option;
}

export function withOptions(command: Command, ...options: Option[]): Command {
  for (const o of options) command.addOption(o);
  return command;
}

/**
 * Where `--provider` and `--gpu` say the forwards run: `auto` is the GPU when an adapter is found
 * (the one `--gpu` names), else the CPU.
 */
export async function providerOf(o: {
  provider?: 'cpu' | 'webgpu' | 'auto';
  gpu?: string;
}): Promise<Provider> {
  const where = o.provider ?? 'cpu';
  if (o.gpu !== undefined && where === 'cpu')
    throw new InputError(`--gpu ${o.gpu}: choose a GPU with --provider webgpu or auto`);
  if (where === 'cpu') return 'cpu';
  const gpu = o.gpu === undefined ? {} : { gpu: /^\d+$/.test(o.gpu) ? Number(o.gpu) : o.gpu };
  try {
    await gpuDevice(gpu);
    return 'webgpu';
  } catch (e) {
    if (where === 'auto' && o.gpu === undefined) {
      console.error(`xbar: --provider auto: no GPU, so the CPU runs the forwards (${(e as Error).message})`);
      return 'cpu';
    }
    throw new InputError(
      `--provider ${where}${o.gpu === undefined ? '' : ` --gpu ${o.gpu}`}: ${(e as Error).message}`,
    );
  }
}

/** The `--set`s of a command with `--time` as the spec field it sets. */
export const hardwareSets = (o: { set: string[]; time?: Duration }): string[] =>
  o.time === undefined ? o.set : [...o.set, `timeS=${o.time.seconds}`];

/** How a sweep's points run: the flags of `xbar sweep` and of every `xbar experiment`. */
export interface RunFlags {
  workers: number;
  retries: number;
  queue?: string;
  quiet?: boolean;
}

/**
 * The flags of RunFlags. `unit` says what one point is where it is not an evaluation alone;
 * `queueNote` what workers on a queue need besides the queue.
 */
export function runFlags(o: { unit?: string; queueNote?: string } = {}): Option[] {
  return [
    opt(
      '--workers <n>',
      `worker processes, each running one point${o.unit ? ` (${o.unit})` : ''} at a time`,
      1,
      1,
    ),
    opt('--retries <n>', 'more attempts for a point that fails', 0, RETRIES),
    opt(
      '--queue <url>',
      `put the points on the queue of this Redis server (redis://HOST:PORT) for \`xbar worker --queue URL\` processes on any machines, and store their results as they come${o.queueNote ? `; ${o.queueNote}` : ''}`,
    ),
    opt('--quiet', 'no progress bar'),
  ];
}

/** What RunFlags ask of a run; --workers with --queue is refused (the queue's own workers run the points). */
export function runOptionsOf(
  o: RunFlags,
  command: Command,
): { workers: number; retries: number; queue?: string; quiet?: true } {
  if (o.queue && command.getOptionValueSource('workers') === 'cli')
    throw new InputError(
      `--workers ${o.workers}: with --queue the points run on \`xbar worker --queue ${o.queue}\` processes; start those instead`,
    );
  return {
    workers: o.workers,
    retries: o.retries,
    ...(o.queue ? { queue: o.queue } : {}),
    ...(o.quiet ? { quiet: true as const } : {}),
  };
}
