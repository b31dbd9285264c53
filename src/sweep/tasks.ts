/**
 * The tasks a sweep's point may be (its `task` setting) besides `xbar eval`'s measurement, the
 * default: the units the paper experiments run as points, so that they run on the same pool,
 * queue and store as any sweep. Each task is a module of its own; this is their list.
 */
import { clipformerSearch } from './tasks/clipformer-search.js';
import { ptoInstanceTask, ptoSaturationTask } from './tasks/pto.js';
import { trexSearchTask } from './tasks/trex-search.js';
import { trexTrainTask } from './tasks/trex-train.js';
import type { PointTask } from './types.js';

const ALL: readonly PointTask[] = [
  clipformerSearch,
  ptoInstanceTask,
  ptoSaturationTask,
  trexSearchTask,
  trexTrainTask,
];

/** The tasks by name. */
export const TASKS: ReadonlyMap<string, PointTask> = new Map(ALL.map((t) => [t.name, t]));

/** The default task's name: the measurement `xbar eval` makes (a point without `task`). */
export const EVAL_TASK = 'eval';
