/**
 * The post-training experiment's points (experiments/pto.ts): `pto-instance`, one programmed
 * instance of an input-range and a conductance-range policy at a time since programming, scored
 * on the data's first examples after the held-out calibration ones (its metric the accuracy with
 * its interval, as an eval point gives it); and `pto-saturation`, the conductance rule's counts
 * of the noise-free column currents against an ADC saturation I_S. A point's `set.*` fields are
 * the user's `--set`; the fields each cell sets itself (time, input and conductance ranges) are
 * its own settings.
 */
import { z } from 'zod';
import { metricInterval95 } from '../../eval/metrics.js';
import {
  CONDUCTANCES,
  CURRENTS,
  cellFieldProblems,
  type PtoDesign,
  type PtoModel,
  ptoInstance,
  ptoLearnedRanges,
  ptoParts,
  ptoSaturation,
  RANGES,
} from '../../experiments/pto.js';
import { parseDuration } from '../../util/duration.js';
import type { Problem } from '../../util/errors.js';
import { intIn, numIn } from '../../util/validate.js';
import { hardwareSetsOf, settingNumber as num, settingText as str } from '../settings.js';
import type { Point, PointResult, PointSettings, PointTask, TaskContext } from '../types.js';

const enumOf = <T extends string>(values: readonly T[]) =>
  z.enum(values as [T, ...T[]], { error: `use ${values.join(', ')}` });
const flag = z.boolean({ error: 'use true or false' });
const heldOut = intIn(1, 1_000_000);
const percentile = numIn(0, 100, true);
const sigmas = numIn(0, 1_000);
const current = enumOf(CURRENTS);

/** The user's `--set` of a point must leave what its task sets to the task. */
function setProblems(s: PointSettings, where: string): Problem[] {
  return cellFieldProblems(hardwareSetsOf(s, false)).map((p) => ({
    ...p,
    field: `${where}: set.${p.field}`,
  }));
}

/** A point's model, its data's parts and its learned ranges, loaded through the worker's caches. */
async function modelOf(point: Point, ctx: TaskContext, d: PtoDesign, learned: boolean, limit: number) {
  const s = point.settings;
  const dir = str(s, 'model')!;
  const dataSpec = str(s, 'data')!;
  const maxLength = num(s, 'maxLength') ?? 128;
  const model = await ctx.model(dir);
  const data = await ctx.data(dir, dataSpec, { maxLength });
  const parts = await ctx.cached(
    JSON.stringify(['pto parts', dir, dataSpec, maxLength, d.calibration, limit]),
    async () => ptoParts(data, d.calibration, limit),
  );
  const ranges = await ctx.cached(JSON.stringify(['pto learned', dir, learned, d.hw, d.sets]), async () =>
    ptoLearnedRanges(d, { model, dir, learned }),
  );
  const m: PtoModel = { model, dir, learned, ...parts };
  return { m, ranges };
}

/** The time since programming, s (the `time` setting). */
const secondsOf = (s: PointSettings): number => parseDuration(str(s, 'time')!, 'time').seconds;

export const ptoInstanceTask: PointTask = {
  name: 'pto-instance',
  description:
    'one programmed instance of a PTO policy (input range × conductance range) at a time since programming: accuracy on the examples after the held-out calibration ones',
  settings: {
    'pto.calibration': heldOut,
    'pto.learned': flag,
    'pto.range': enumOf(RANGES),
    'pto.conductance': enumOf(CONDUCTANCES),
    'pto.percentile': percentile,
    'pto.sigmas': sigmas,
    'pto.current': current,
  },
  requires: ['model', 'data', 'hw', 'time', 'limit', 'pto.calibration', 'pto.range', 'pto.conductance'],
  check(s, where) {
    const problems = setProblems(s, where);
    const learned = s['pto.learned'] === true;
    const range = str(s, 'pto.range');
    const conductance = str(s, 'pto.conductance');
    if ((range === 'learned' || conductance === 'learned') && !learned)
      problems.push(
        `${where}: a learned range needs pto.learned: true (the model's analog_ranges.safetensors)`,
      );
    if (range === 'dynamic' && learned)
      problems.push(`${where}: pto.range dynamic: a learned model's input range as trained is 'learned'`);
    if (conductance === 'full' && learned)
      problems.push(
        `${where}: pto.conductance full: a learned model's conductance range as trained is 'learned'`,
      );
    if ((range === 'calibrated' || range === 'recalibrated') && s['pto.percentile'] === undefined)
      problems.push(`${where}: pto.range ${range} needs pto.percentile (K)`);
    if (conductance === 'calibrated')
      for (const k of ['pto.sigmas', 'pto.current'])
        if (s[k] === undefined) problems.push(`${where}: pto.conductance calibrated needs ${k}`);
    return problems;
  },
  async run(point, ctx) {
    const s = point.settings;
    const learned = s['pto.learned'] === true;
    const limit = num(s, 'limit')!;
    const d: PtoDesign = {
      hw: str(s, 'hw')!,
      sets: hardwareSetsOf(s, false),
      calibration: num(s, 'pto.calibration')!,
      percentile: num(s, 'pto.percentile'),
      sigmas: num(s, 'pto.sigmas'),
      current: str(s, 'pto.current') as PtoDesign['current'],
    };
    const { m, ranges } = await modelOf(point, ctx, d, learned, limit);
    ctx.check();
    // a sweep file's points always have a seed and a batch (file.ts fills in its defaults)
    const seed = num(s, 'seed')!;
    // what does not depend on the seed is shared by the cell's instances a worker runs
    const { seed: _, ...cell } = s;
    const r = await ptoInstance(
      d,
      m,
      ranges,
      seed,
      str(s, 'pto.range') as (typeof RANGES)[number],
      secondsOf(s),
      str(s, 'pto.conductance') as (typeof CONDUCTANCES)[number],
      {
        batch: num(s, 'batch'),
        provider: ctx.provider,
        shared: (key, make) => ctx.cached(JSON.stringify(['pto shared', cell, key]), make),
      },
    );
    const ci = metricInterval95(r.metric, r.predictions, m.evalData.targets);
    return {
      id: point.id,
      metrics: { metric: r.value, metric_low: ci.low, metric_high: ci.high, examples: m.evalData.size },
      labels: { metric_name: r.metric, interval: ci.method, data: m.evalData.name },
    } satisfies Omit<PointResult, 'provenance'>;
  },
};

export const ptoSaturationTask: PointTask = {
  name: 'pto-saturation',
  description:
    "the conductance rule's counts at an ADC saturation I_S: columns it shrinks and the share of noise-free column currents beyond ±I_S on the held-out calibration examples",
  settings: {
    'saturation.max': numIn(0, 1e9, true),
    'saturation.calibration': heldOut,
    'saturation.learned': flag,
    'saturation.sigmas': sigmas,
    'saturation.current': current,
  },
  requires: [
    'model',
    'data',
    'hw',
    'saturation.max',
    'saturation.calibration',
    'saturation.sigmas',
    'saturation.current',
  ],
  check: setProblems,
  async run(point, ctx) {
    const s = point.settings;
    const learned = s['saturation.learned'] === true;
    const d: PtoDesign = {
      hw: str(s, 'hw')!,
      sets: hardwareSetsOf(s, false),
      calibration: num(s, 'saturation.calibration')!,
      sigmas: num(s, 'saturation.sigmas'),
      current: str(s, 'saturation.current') as PtoDesign['current'],
    };
    // the counts read the calibration part only: any limit leaves it as it is
    const { m, ranges } = await modelOf(point, ctx, d, learned, 0);
    ctx.check();
    const c = await ptoSaturation(d, m, ranges, num(s, 'saturation.max')!);
    return {
      id: point.id,
      metrics: { shrunk: c.shrunk, columns: c.columns, beyond_mean: c.beyondMean, beyond_max: c.beyondMax },
      labels: { data: m.calib.name },
    } satisfies Omit<PointResult, 'provenance'>;
  },
};
