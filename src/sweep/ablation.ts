/**
 * `xbar experiment ablation` as a sweep: the ideal model (a point without hardware) and every row
 * of the ablation (experiments/ablation.ts) × seed, each row's `--set` assignments as its points'
 * hardware fields, run on the local pool into a DuckDB store in the output folder
 * (`OUT/results.duckdb`), resumable as `xbar sweep` is (a rerun runs only the points not stored).
 * Each point is what `xbar eval --hw HW --set … --seed S` measures: the row's spec calibrated as
 * `xbar eval` calibrates it, one instance, the first examples of the data. The report (results.md
 * and the chart) is made from the store's rows, paired by seed; `xbar report` reads the store too.
 */
import type { EvalData } from '../eval/data.js';
import {
  type AblationDesign,
  type AblationPlan,
  ablationPlan,
  writeAblationReport,
} from '../experiments/ablation.js';
import type { CellRecord } from '../experiments/cells.js';
import { typedCommand } from '../util/command.js';
import { meanStd } from '../util/math.js';
import {
  type ExperimentOutcome,
  type ExperimentRunOptions,
  experimentStore,
  experimentSweepName,
  runExperimentSweep,
} from './experiment.js';
import { sweepOf } from './file.js';
import type { SweepDefinition } from './types.js';

/** The points' token limit when none is given (sweep points take `xbar eval`'s). */
const MAX_LENGTH = 128;

export interface AblationOptions extends AblationDesign, ExperimentRunOptions {
  /** The model folder and the data (`KIND:PATH`), as the points name them (paths from the working directory). */
  modelDir: string;
  dataSpec: string;
  /** The data opened (its name and size go into the report). */
  data: EvalData;
  repeats: number;
  seed: number;
  /** Examples evaluated (the first of the data). */
  limit: number;
  batch?: number;
  maxLength?: number;
}

export interface AblationOutcome extends ExperimentOutcome {
  plan: AblationPlan;
}

/** The ablation's points as a sweep: the ideal model, then each row × seed. */
export function ablationSweep(
  o: Omit<AblationOptions, 'data' | 'model'> & { examples: number },
  plan: AblationPlan,
): SweepDefinition {
  const seeds = Array.from({ length: o.repeats }, (_, i) => o.seed + i);
  const name = experimentSweepName(o.out, 'ablation');
  return sweepOf(
    {
      name,
      description: o.command ?? typedCommand(),
      model: o.modelDir,
      data: o.dataSpec,
      limit: o.examples,
      ...(o.batch === undefined ? {} : { batch: o.batch }),
      ...(o.maxLength === undefined || o.maxLength === MAX_LENGTH ? {} : { maxLength: o.maxLength }),
      list: [
        {},
        ...plan.rows.flatMap((row) =>
          seeds.map((seed) => ({ hw: o.hw, ...(row.sets.length ? { set: row.sets } : {}), seed })),
        ),
      ],
    },
    `the ablation's points (${name})`,
  );
}

export async function runAblation(o: AblationOptions): Promise<AblationOutcome> {
  const plan = ablationPlan(o);
  const examples = Math.min(o.limit, o.data.size);
  const sweep = ablationSweep({ ...o, examples }, plan);
  // rows with the same assignments are one configuration: the same points (stored once)
  const configs = [...new Set(plan.rows.map((row) => JSON.stringify([...row.sets].sort())))];
  if (sweep.points.length !== 1 + configs.length * o.repeats)
    throw new Error(
      `the ablation made ${sweep.points.length} points, not 1 + ${configs.length} configurations × ${o.repeats}`,
    );
  const store = experimentStore(o.out);
  const run = await runExperimentSweep(sweep, o, 'the ablation');

  const stored = new Map(run.rows.map((r) => [r.point.id, r.result]));
  const result = (index: number) => {
    const r = stored.get(sweep.points[index]!.id);
    if (!r) throw new Error(`${store}: point ${index} has no result`);
    return r;
  };
  const cells = new Map<string, CellRecord>();
  const calibratedOn = new Set<string>();
  for (const row of plan.rows) {
    const first = 1 + configs.indexOf(JSON.stringify([...row.sets].sort())) * o.repeats;
    const instances = Array.from({ length: o.repeats }, (_, i) => {
      const r = result(first + i);
      return { seed: Number(sweep.points[first + i]!.settings['seed']), value: r.metrics['metric']! };
    });
    cells.set(row.id, {
      id: row.id,
      labels: { off: [...row.off].join(',') },
      instances,
      ...meanStd(instances.map((i) => i.value)),
    });
    // the calibrations' lines: "ADC ranges of 14 products calibrated … on the first 2 examples of …"
    for (const line of result(first).labels?.['calibration']?.split('; ') ?? [])
      calibratedOn.add(line.replace(/^.* on the first/, 'the first'));
  }
  await writeAblationReport(o.out, {
    ...plan,
    hw: o.hw,
    sets: o.sets,
    modelDir: o.modelDir,
    dataName: o.data.name,
    examples,
    repeats: o.repeats,
    seed: o.seed,
    ideal: result(0).metrics['metric']!,
    cells,
    calibratedOn: [...calibratedOn],
  });
  return {
    out: o.out,
    store,
    plan,
    rows: run.rows,
    storedNow: run.storedNow,
    storedBefore: run.storedBefore,
  };
}
