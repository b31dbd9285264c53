/**
 * The command-line flags, each parsed and validated here once, with the same message wherever
 * it is used: the flag, the value and what is allowed ("--seed -1: expected a whole number ≥ 0").
 * Numbers must be finite. Flags common to several commands are defined in `FLAGS`; a command's
 * own flags use the parsers below.
 */
import { Option } from 'commander';
import { type DataSpec, parseDataSpec, type Split } from '../eval/data.js';
import { InputError } from '../eval/predict.js';
import { parseDuration } from '../util/validate.js';

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

interface Range {
  /** Exclusive lower bound. */
  gt?: number;
  /** Inclusive lower bound. */
  min?: number;
  /** Exclusive upper bound. */
  lt?: number;
  /** Inclusive upper bound. */
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

/** One of `allowed`. */
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
export interface Duration {
  text: string;
  seconds: number;
}

/** `--data`: KIND:PATH as given, and parsed. */
export interface DataFlag extends DataSpec {
  text: string;
}

export const dataFlag = (v: string): DataFlag => ({ ...parseDataSpec(v), text: v });

type Parser = (value: string, previous: never) => unknown;

/** The flags several commands take: syntax, help, parser (none: the string as given). */
const FLAGS = {
  model: ['--model <dir>', 'Hugging Face model folder (config.json + model.safetensors)'],
  data: [
    '--data <spec>',
    'KIND:PATH, e.g. fashion-mnist:/usr/share/datasets/fashion-mnist, glue-sst2:DIR, imagefolder:DIR',
    dataFlag,
  ],
  split: ['--split <split>', 'test | dev | train', oneOf<Split>('--split', ['test', 'dev', 'train'])],
  hw: ['--hw <spec>', 'a hardware preset (xbar hw list) or a YAML/JSON spec file'],
  set: ['--set <field=value>', 'override a hardware field, e.g. adc.bits=6 (repeatable)', collect],
  time: [
    '--time <t>',
    'time since programming (drift), e.g. 1s, 1h, 1d, 1y',
    (v: string): Duration => {
      let seconds = Number.NaN;
      try {
        seconds = parseDuration(v, '--time');
      } catch {}
      if (!Number.isFinite(seconds))
        fail('--time', v, 'expected a duration: a number with s, m, h, d, w or y, e.g. 1h, 1d, 1y');
      return { text: v, seconds };
    },
  ],
  repeats: ['--repeats <n>', 'Monte Carlo instances (programmings of the weights)', wholeNumber('--repeats')],
  seed: ['--seed <n>', 'base seed: instance i uses seed + i', wholeNumber('--seed', 0)],
  batch: ['--batch <n>', 'batch size', wholeNumber('--batch')],
  limit: ['--limit <n>', 'use the first n examples', wholeNumber('--limit')],
  maxLength: ['--max-length <n>', 'token limit for text', wholeNumber('--max-length')],
  epochs: ['--epochs <n>', 'epochs', wholeNumber('--epochs')],
  lr: ['--lr <x>', 'peak learning rate', finiteNumber('--lr', { gt: 0 })],
  out: ['--out <dir>', 'output folder (one run at a time: it is locked while in use)'],
  output: ['--output <file>', 'write JSON here (default: standard output)'],
  json: ['--json', 'print JSON instead of a table'],
} as const satisfies Record<string, readonly [string, string, Parser?]>;

export type FlagName = keyof typeof FLAGS;

/**
 * One of the common flags as a commander option: `help` replaces the usual text, `value` is the
 * default (given as on the command line: it goes through the same parser), `required` makes it
 * mandatory.
 */
export function flag(
  name: FlagName,
  o: { help?: string; value?: string | number; required?: boolean } = {},
): Option {
  const [syntax, help, parse] = FLAGS[name] as readonly [string, string, Parser?];
  const option = new Option(syntax, o.help ?? help);
  if (parse) option.argParser(parse as (v: string, p: unknown) => unknown);
  if (name === 'set') option.default([]);
  if (o.value !== undefined) {
    const text = String(o.value);
    option.default(parse ? (parse as (v: string, p: unknown) => unknown)(text, undefined) : text, text);
  }
  if (o.required) option.makeOptionMandatory();
  return option;
}

/** The `--set`s of a command with `--time` as the spec field it sets. */
export const hardwareSets = (o: { set: string[]; time?: Duration }): string[] =>
  o.time === undefined ? o.set : [...o.set, `timeS=${o.time.seconds}`];
