/**
 * xbar as a library (`import { … } from 'xbar'`): models, hardware specs, evaluation on data
 * (ideal and Monte Carlo on crossbars), prediction, cost, and the graph engine beneath them.
 */
import { fileURLToPath } from 'node:url';

export { AnalogModel } from './analog/analog-model.js';
export { analogInstances } from './analog/instances.js';
export { loadSpec, PRESET_NAMES, PRESETS, type PresetName, specDiff } from './analog/presets.js';
export type { HardwareSpec, HardwareSpecInput } from './analog/spec.js';
export { type CostOptions, type CostReport, type CostTotals, cost } from './cost/cost.js';
export { breakdownChart, costJson, formatCost } from './cost/report.js';
export { type ModelShape, modelShape, resolveShape, SHAPE_NAMES } from './cost/shape.js';
export { type DataSpec, type EvalData, type OpenOptions, openData, parseDataSpec } from './eval/data.js';
export { type EvalOptions, type EvalResult, evaluate } from './eval/evaluate.js';
export { type MonteCarloOptions, type MonteCarloResult, monteCarlo } from './eval/montecarlo.js';
export { type PredictOptions, Predictor, predictLogits } from './eval/predict.js';
export * from './graph/index.js';
export { readSafetensors, writeSafetensors } from './io/safetensors.js';
export type { ModelInputs } from './models/family.js';
export { loadModel, MODEL_SIZES, Model, type ModelConfig, randomModel } from './models/index.js';
export { toPng, toSvg } from './report/render.js';
export { type CompileOptions, compile, type Provider, type RunnableGraph } from './runtime/session.js';
export { type AdapterInfo, describeAdapter } from './runtime/webgpu/device.js';
export { DuckDBStore, openStore, SCHEMA_VERSION } from './sweep/duckdb.js';
export { parseSweep, pointId, readSweepFile, sweepOf } from './sweep/file.js';
export { createPointRunner, type PointRunnerOptions, runPoint } from './sweep/point.js';
export { type QueueWorker, type QueueWorkerOptions, startQueueWorker } from './sweep/queue.js';
export { type RunSweepOptions, runSweep, type SweepRun } from './sweep/run.js';
export { TASKS } from './sweep/tasks.js';
export type {
  Point,
  PointResult,
  PointSettings,
  PointTask,
  Provenance,
  RunPoint,
  StoredRow,
  SweepDefinition,
  SweepReader,
  SweepStore,
  TaskContext,
} from './sweep/types.js';

/** The absolute path of a file the package ships, e.g. `shippedPath('models/vit-fmnist')`. */
export const shippedPath = (path: string): string => fileURLToPath(new URL(`../../${path}`, import.meta.url));
