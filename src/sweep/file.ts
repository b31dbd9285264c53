/**
 * The sweep file: YAML whose fields read like `xbar eval`'s flags. Fields at the top are every
 * point's settings; `grid:` crosses axes (each a list of values of one field), `list:` gives
 * points one by one; with both, every list entry is crossed with the grid. For example
 *
 *   name: adc-bits
 *   model: models/vit-fmnist
 *   data: fashion-mnist:data/fashion-mnist-demo
 *   limit: 20
 *   hw: rram-clipformer
 *   grid:
 *     set.adc.bits: [4, 6, 8]
 *     seed: { from: 0, count: 3 }
 *
 * is 9 points, the first axis varying slowest. A point's settings are flat JSON (`set.adc.bits`,
 * `clipformer.alpha`, …); its id hashes them, so points that come out the same are one point.
 * Paths (model, data, a hardware file) are read from the working directory, as on the command line.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename, extname, join, normalize } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { loadSpec } from '../analog/presets.js';
import { isObject } from '../analog/resolve.js';
import { parseDataSpec } from '../eval/data.js';
import { EVAL_BATCH } from '../eval/evaluate.js';
import { ClipFormerConfig, parseClipFormerFlag } from '../methods/clipformer.js';
import { parseDuration } from '../util/duration.js';
import { InputError, type Problem } from '../util/errors.js';
import { readBytes } from '../util/files.js';
import { closest, intIn } from '../util/validate.js';
import { hardwareSetsOf } from './settings.js';
import { EVAL_TASK, TASKS } from './tasks.js';
import type { Point, PointSettings, SweepDefinition } from './types.js';

type Scalar = string | number | boolean;
type Partial = Record<string, Scalar>;

const text = (what: string) => z.string({ error: `use ${what}` }).min(1, { error: `use ${what}` });
const wholeFrom = (lo: number) => intIn(lo, Number.MAX_SAFE_INTEGER);

/** Checks beyond the schema: a value the schema lets through may still name nothing. */
const check =
  (f: (v: string) => void) =>
  (v: string, ctx: z.RefinementCtx): void => {
    try {
      f(v);
    } catch (e) {
      // an InputError names the flag and value again: the field and value are named already
      const m = (e as Error).message;
      ctx.addIssue({ code: 'custom', message: e instanceof InputError ? m.replace(/^[^:]*: /, '') : m });
    }
  };

/** A path as one spelling (`./models/vit/` is `models/vit`): the same files, the same point id. */
export const samePath = (p: string): string => normalize(p).replace(/(.)\/+$/, '$1');

/** KIND:PATH of existing data, its path spelt one way. */
const dataSetting = (what: string) =>
  text(what)
    .superRefine(
      check((v) => {
        const { path } = parseDataSpec(v);
        if (!existsSync(path)) throw new Error(`use KIND:PATH of existing data: ${path} does not exist`);
      }),
    )
    .transform((v) => {
      const { kind, path } = parseDataSpec(v);
      return `${kind}:${samePath(path)}`;
    });

/** The settings every point may have, each as its flag of `xbar eval` takes it. */
const SHARED = {
  model: text('a model folder (config.json + model.safetensors)')
    .superRefine(
      check((v) => {
        if (!existsSync(join(v, 'config.json')))
          throw new Error(`use a model folder: ${v}/config.json is missing`);
      }),
    )
    .transform(samePath),
  data: dataSetting('KIND:PATH, e.g. fashion-mnist:data/fashion-mnist-demo'),
  calibration: dataSetting('KIND:PATH whose training split calibrates ranges'),
  split: z.enum(['test', 'dev', 'train'], { error: 'use test, dev or train' }),
  limit: wholeFrom(1),
  hw: text('a hardware preset (xbar hw list) or a YAML/JSON spec file').transform((v) =>
    /\.(ya?ml|json)$/i.test(v) ? samePath(v) : v,
  ),
  time: z
    .union([z.string(), z.number()], { error: 'use a duration, e.g. 1h, 1d, 1y' })
    .transform((v) => String(v))
    .superRefine(check((v) => void parseDuration(v, 'time'))),
  method: z.enum(['none', 'clipformer'], { error: 'use none or clipformer' }),
  'clipformer.alpha': ClipFormerConfig.shape.alpha.unwrap(),
  'clipformer.beta': ClipFormerConfig.shape.beta.unwrap(),
  seed: wholeFrom(0),
  batch: wholeFrom(1),
  maxLength: wholeFrom(1),
  snr: z.boolean({ error: 'use true or false' }),
  /** What the point computes: `eval` (`xbar eval`'s measurement, the default) or a task of tasks.ts. */
  task: z.enum([EVAL_TASK, ...TASKS.keys()] as [string, ...string[]], {
    error: `use ${[EVAL_TASK, ...TASKS.keys()].join(', ')}`,
  }),
} as const satisfies Record<string, z.ZodType>;

/** Each task's own settings, by setting: the task that reads it. */
const TASK_OF_SETTING = new Map<string, string>();
for (const t of TASKS.values())
  for (const k of Object.keys(t.settings)) {
    if (k in SHARED || TASK_OF_SETTING.has(k))
      throw new Error(
        `task ${t.name}: its setting '${k}' is a setting of ${TASK_OF_SETTING.get(k) ?? 'every point'} already`,
      );
    TASK_OF_SETTING.set(k, t.name);
  }

/** Every setting a point may have: the shared ones and the tasks' own. */
const SETTINGS: Readonly<Record<string, z.ZodType>> = Object.assign(
  {},
  SHARED,
  ...[...TASKS.values()].map((t) => t.settings),
);
const SETTING_NAMES = Object.keys(SETTINGS);
/** Fields that set several settings: `set` (hardware fields) and `clipformer` (α,β). */
const SHORTHANDS = ['set', 'clipformer'] as const;
const TOP_ONLY = ['name', 'description', 'grid', 'list'] as const;

/** What a point gets when no field sets it (as `xbar eval`'s defaults). */
export const DEFAULTS = { seed: 0, batch: EVAL_BATCH, method: 'none' } as const;

/** The short hex id of a point's settings: sha256 of their JSON with keys sorted. */
export function pointId(settings: PointSettings): string {
  const canonical = JSON.stringify(
    Object.fromEntries(Object.entries(settings).sort(([a], [b]) => (a < b ? -1 : 1))),
  );
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** A setting's value as its schema takes it, or a problem naming the field. */
function settingValue(name: string, value: unknown, field: string, problems: Problem[]): Scalar | undefined {
  const r = SETTINGS[name]!.safeParse(value);
  if (r.success) return r.data as Scalar;
  const message = r.error.issues[0]?.message ?? 'not allowed';
  problems.push(
    message.startsWith('use ')
      ? { field, value, allowed: message }
      : `${field}: ${JSON.stringify(value)}: ${message.replace(/^Invalid input: /, '')}`,
  );
  return undefined;
}

/** `path=value` with the value read as YAML, as `--set` reads it. */
function parseAssignment(s: unknown, field: string, problems: Problem[]): [string, unknown] | undefined {
  const at = typeof s === 'string' ? s.indexOf('=') : -1;
  if (typeof s !== 'string' || at <= 0) {
    problems.push({ field, value: s, allowed: 'use field.path=value, e.g. adc.bits=6' });
    return undefined;
  }
  try {
    return [s.slice(0, at).trim(), YAML.parse(s.slice(at + 1))];
  } catch (e) {
    problems.push(`${field}: '${s}': the value is not valid YAML (${(e as Error).message.split('\n')[0]})`);
    return undefined;
  }
}

/** A hardware field's value: scalars only (an object's fields are set one by one). */
function setValue(path: string, value: unknown, field: string, problems: Problem[]): Partial {
  if (!/^[A-Za-z_][\w]*(\.[\w*-]+)*$/.test(path)) {
    problems.push(`${field}: '${path}' is not a field path; use e.g. adc.bits or dac.range.kind`);
    return {};
  }
  if (isObject(value) || Array.isArray(value)) {
    // a nested mapping under `set:` is a path written as YAML: flatten it
    if (isObject(value))
      return Object.assign(
        {},
        ...Object.entries(value).map(([k, v]) => setValue(`${path}.${k}`, v, `${field}.${k}`, problems)),
      );
    problems.push({
      field,
      value,
      allowed: 'use a number, text or true/false (set list fields in a hardware file)',
    });
    return {};
  }
  if (value === null || value === undefined) {
    problems.push({ field, value, allowed: 'use a number, text or true/false' });
    return {};
  }
  return { [`set.${path}`]: value as Scalar };
}

/** One field of the file (at the top, a list entry or a grid axis value) as flat settings. */
function fieldSettings(key: string, value: unknown, field: string, problems: Problem[]): Partial {
  if (key === 'set') {
    if (Array.isArray(value))
      return Object.assign(
        {},
        ...value.map((s, i) => {
          const a = parseAssignment(s, `${field}[${i}]`, problems);
          return a ? setValue(a[0], a[1], `${field}[${i}]`, problems) : {};
        }),
      );
    if (isObject(value))
      return Object.assign(
        {},
        ...Object.entries(value).map(([k, v]) => setValue(k, v, `${field}.${k}`, problems)),
      );
    problems.push({
      field,
      value,
      allowed: 'use a mapping of hardware fields (adc.bits: 6) or a list of field=value',
    });
    return {};
  }
  if (key.startsWith('set.')) return setValue(key.slice(4), value, field, problems);
  if (key === 'clipformer') {
    try {
      const c =
        typeof value === 'string' || typeof value === 'number'
          ? parseClipFormerFlag(String(value), field)
          : isObject(value)
            ? ClipFormerConfig.parse({ ...value, layers: 'all' })
            : parseClipFormerFlag(JSON.stringify(value), field);
      return { method: 'clipformer', 'clipformer.alpha': c.alpha, 'clipformer.beta': c.beta };
    } catch {
      problems.push({ field, value, allowed: 'use α,β e.g. 2,0.25 (α ≥ 1, 0 < β ≤ 1) or { alpha, beta }' });
      return {};
    }
  }
  if (SETTING_NAMES.includes(key)) {
    const v = settingValue(key, value, field, problems);
    return v === undefined ? {} : { [key]: v };
  }
  const near = closest(key, [...SETTING_NAMES, ...SHORTHANDS]);
  problems.push(
    `${field}: unknown field${near ? ` (did you mean '${near}'?)` : ''}; the fields are ${[...SETTING_NAMES, ...SHORTHANDS].join(', ')} and set.<hardware field>`,
  );
  return {};
}

/** A mapping of fields (the top's settings, or a list entry) as flat settings. */
function mappingSettings(m: Record<string, unknown>, where: string, problems: Problem[]): Partial {
  return Object.assign(
    {},
    ...Object.entries(m).map(([k, v]) => fieldSettings(k, v, where ? `${where}.${k}` : k, problems)),
  );
}

/** A grid axis: its values, each as the settings it sets. `seed` may be `{ from, count }`. */
function axisValues(key: string, value: unknown, field: string, problems: Problem[]): Partial[] {
  let values: unknown[];
  if (key === 'seed' && isObject(value)) {
    const r = z
      .object({ from: wholeFrom(0).default(0), count: intIn(1, 1_000_000) })
      .strict()
      .safeParse(value);
    if (!r.success) {
      problems.push({ field, value, allowed: 'use a list of seeds or { from: 0, count: n } with n ≥ 1' });
      return [];
    }
    values = Array.from({ length: r.data.count }, (_, i) => r.data.from + i);
  } else if (Array.isArray(value)) values = value;
  else {
    problems.push({ field, value, allowed: 'use a list of values, e.g. [4, 6, 8]' });
    return [];
  }
  if (values.length === 0) {
    problems.push(`${field}: an empty list; give the axis at least one value (or remove it)`);
    return [];
  }
  if (key === 'set') {
    problems.push(`${field}: a grid axis sets one field: write it as set.<field>, e.g. set.adc.bits: [4, 6]`);
    return [];
  }
  return values.map((v, i) => fieldSettings(key, v, `${field}[${i}]`, problems));
}

/** The cartesian product of the axes, the first varying slowest. */
function product(axes: readonly Partial[][]): Partial[] {
  return axes.reduce<Partial[]>((acc, axis) => acc.flatMap((a) => axis.map((v) => ({ ...a, ...v }))), [{}]);
}

/** A point's settings with the defaults and without what its method does not read. */
function complete(s: Partial): Partial {
  // the file's order first (tables show the settings in it), then what defaults fill in
  const out: Partial = { ...s };
  // a ClipFormer parameter given, and no method: ClipFormer
  if (out['method'] === undefined && ('clipformer.alpha' in out || 'clipformer.beta' in out))
    out['method'] = 'clipformer';
  for (const [k, v] of Object.entries(DEFAULTS)) out[k] ??= v;
  // the measurement is what a point without a task is: one spelling, one id
  if (out['task'] === EVAL_TASK) delete out['task'];
  if (out['method'] === 'clipformer') {
    out['clipformer.alpha'] ??= ClipFormerConfig.shape.alpha.parse(undefined);
    out['clipformer.beta'] ??= ClipFormerConfig.shape.beta.parse(undefined);
  } else {
    delete out['clipformer.alpha'];
    delete out['clipformer.beta'];
  }
  return out;
}

/** Problems of a point as a whole: what it lacks, and a hardware spec its fields do not make. */
function pointProblems(s: Partial, where: string, specs: Set<string>): Problem[] {
  const problems: Problem[] = [];
  const task = s['task'] === undefined ? undefined : TASKS.get(String(s['task']));
  for (const f of task?.requires ?? (['model', 'data'] as const))
    if (s[f] === undefined)
      problems.push(`${where}: no ${f}; set it at the top, in the grid or in each list entry`);
  for (const k of Object.keys(s)) {
    const owner = TASK_OF_SETTING.get(k);
    if (owner !== undefined && owner !== task?.name)
      problems.push(
        `${where}: ${k} is a setting of task ${owner}, and this point's task is ${task?.name ?? EVAL_TASK}`,
      );
  }
  if (task?.check) problems.push(...task.check(s, where));
  const hw = s['hw'];
  // a duration is a valid timeS: points that differ in time alone share their spec's check
  const sets = hardwareSetsOf(s, false);
  if (hw === undefined) {
    const needs = Object.keys(s).filter((k) => k.startsWith('set.') || k === 'time' || k === 'snr');
    if (needs.length || s['method'] !== 'none')
      problems.push(
        `${where}: ${needs.length ? needs.join(', ') : `method ${s['method']}`} needs hardware; set hw (a preset or a spec file)`,
      );
    return problems;
  }
  // the spec of each hardware and its fields, loaded once: a bad preset or field path fails here,
  // and is reported once however many points share it
  const key = JSON.stringify([hw, sets, s['method']]);
  if (specs.has(key)) return problems;
  specs.add(key);
  const what = `hw ${hw}${sets.length ? `, set ${sets.join(' ')}` : ''}`;
  try {
    const spec = loadSpec(String(hw), sets);
    if (s['method'] === 'clipformer' && !spec.attention)
      problems.push(
        `${where}: method clipformer: ${hw} runs attention digitally; there are no K/V crossbars to transform`,
      );
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    const render = (p: Problem) =>
      typeof p === 'string' ? p : `${p.field}: ${JSON.stringify(p.value)} is not allowed, ${p.allowed}`;
    problems.push(`${where}: ${what}: ${e.problems.map(render).join('; ')}`);
  }
  return problems;
}

/** A point's settings in the file's words, for messages: `hw=ideal seed=3`. */
export const describePoint = (s: PointSettings): string =>
  Object.entries(s)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');

/** Reads and expands a sweep file; every problem is listed at once, each naming its field. */
export function readSweepFile(file: string): SweepDefinition {
  return parseSweep(readBytes(file).toString('utf8'), file);
}

/** Expands a sweep file's text (`file` names it in errors and gives the default name). */
export function parseSweep(source: string, file: string): SweepDefinition {
  let doc: unknown;
  try {
    doc = YAML.parse(source);
  } catch (e) {
    throw new InputError(file, [`not valid YAML: ${(e as Error).message}`]);
  }
  return expandSweep(doc, source, file);
}

/**
 * A sweep a program makes (an experiment's points): the mapping a sweep file would hold, expanded
 * and checked as a file is, with that file's YAML as its source (`xbar sweep` on it makes the same
 * points). `where` names it in errors.
 */
export function sweepOf(doc: Readonly<Record<string, unknown>>, where: string): SweepDefinition {
  // values written out each time they occur (no YAML anchors): the file reads as one would write it
  return expandSweep(doc, YAML.stringify(doc, { aliasDuplicateObjects: false }), where);
}

function expandSweep(doc: unknown, source: string, file: string): SweepDefinition {
  if (!isObject(doc))
    throw new InputError(file, ['expected a mapping of fields (model, data, hw, grid, list, …)']);
  const problems: Problem[] = [];
  const { name: rawName, description: _, grid, list, ...top } = doc;
  const name = rawName ?? basename(file, extname(file));
  if (typeof name !== 'string' || !/^[\w.-]+$/.test(name))
    problems.push({
      field: 'name',
      value: name,
      allowed: 'use letters, digits, ., - and _ (it names the store)',
    });
  for (const k of TOP_ONLY) if (k in top) problems.push(`${k}: a top-level field only`);
  const base = mappingSettings(top, '', problems);

  let axes: Partial[][] = [];
  if (grid !== undefined) {
    if (!isObject(grid) || Object.keys(grid).length === 0)
      problems.push({ field: 'grid', value: grid, allowed: 'use a mapping of axes, e.g. seed: [0, 1, 2]' });
    else axes = Object.entries(grid).map(([k, v]) => axisValues(k, v, `grid.${k}`, problems));
  }
  let entries: Partial[] = [{}];
  if (list !== undefined) {
    if (!Array.isArray(list) || list.length === 0)
      problems.push({
        field: 'list',
        value: list,
        allowed: 'use a list of points, each a mapping of fields',
      });
    else
      entries = list.map((e, i) => {
        if (isObject(e)) return mappingSettings(e, `list[${i}]`, problems);
        problems.push({
          field: `list[${i}]`,
          value: e,
          allowed: 'use a mapping of fields, e.g. { hw: ideal }',
        });
        return {};
      });
  }
  if (problems.length) throw new InputError(file, problems);

  // a field both a list entry and the grid set would be overwritten silently
  const gridKeys = new Set(axes.flatMap((a) => a.flatMap((v) => Object.keys(v))));
  for (const [i, e] of entries.entries())
    for (const k of Object.keys(e))
      if (gridKeys.has(k)) problems.push(`list[${i}].${k}: the grid sets it too; set a field in one of them`);
  if (problems.length) throw new InputError(file, problems);

  const combos = product(axes);
  const seen = new Set<string>();
  const points: Point[] = [];
  const specs = new Set<string>();
  let n = 0;
  for (const [e, entry] of entries.entries())
    for (const combo of combos) {
      const settings = complete({ ...base, ...entry, ...combo });
      const where = `point ${n++}${list === undefined ? '' : ` (list[${e}])`}`;
      const bad = pointProblems(settings, where, specs);
      if (bad.length) {
        problems.push(...bad);
        if (problems.length > 20) throw new InputError(file, problems, 'the first 20 problems');
        continue;
      }
      const id = pointId(settings);
      if (seen.has(id)) continue;
      seen.add(id);
      points.push({ id, index: points.length, settings });
    }
  if (problems.length) throw new InputError(file, problems);
  return { name: name as string, source, points };
}
