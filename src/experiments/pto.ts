/**
 * The post-training optimisation experiment (the PTO paper's Table II layout): models (as
 * trained, hardware-aware trained) × DAC input range (dynamic max per vector, or per-tile ranges
 * from the K-th percentile of calibration inputs) × conductance range (full, or per column
 * shrunk where μ + L·σ of the column current exceeds the ADC saturation) at t = 1 h; then accuracy
 * against time since programming (1 s … 1 year) for ranges calibrated once at t = 1 s, ranges
 * re-calibrated at each t on the same programmed instance, and dynamic ranges. Calibration
 * uses the last examples of the data (held out), never the evaluated ones.
 */
import { AnalogModel } from '../analog/analog-model.js';
import { learnedRangesFor } from '../analog/learned-ranges.js';
import { loadSpec } from '../analog/presets.js';
import type { ResolvedSpec } from '../analog/resolve.js';
import { type EvalData, holdOut, subset } from '../eval/data.js';
import { evaluate } from '../eval/evaluate.js';
import { calibrateConductanceRanges, calibrateInputRanges } from '../methods/pto.js';
import type { Model } from '../models/index.js';
import { lineChart, svgDocument } from '../report/svg.js';
import { Experiment, pm } from './runner.js';

/** Times since programming of the drift sweep, s: 1 s, 1 h, 1 day, 1 month, 1 year. */
const TIMES = [1, 3600, 86_400, 2_592_000, 31_536_000] as const;
const TIME_LABEL: Record<number, string> = {
  1: '1 s',
  3600: '1 h',
  86400: '1 d',
  2592000: '30 d',
  31536000: '1 y',
};

/** Where the paper's RoBERTa-base GLUE figures are stated (docs/methods.md §3). */
const PAPER_NOTE = 'see docs/methods.md §3 for the paper’s RoBERTa-base GLUE figures';

export interface PtoExperimentOptions {
  /**
   * The models, each a row group. `learned`: trained with learned input ranges and conductance
   * scales (xbar train --hwa with 'learned' ranges; analog_ranges.safetensors in `dir`), so its
   * rows start from those instead of dynamic ranges and full columns.
   */
  models: { name: string; dir: string; model: Model; data: EvalData; learned?: boolean }[];
  dataSpec: string;
  hw: string;
  out: string;
  repeats: number;
  timeRepeats: number;
  seed: number;
  /** Examples held out (the last of the data) for calibration. */
  calibration: number;
  percentile: number;
  /** L of the conductance-range rule μ + L·σ. */
  sigmas: number;
  limit: number;
  batch?: number;
}

/** dynamic or learned: as the model was trained; calibrated: PTO at t = 1 s; recalibrated: PTO at t. */
type Range = 'dynamic' | 'learned' | 'calibrated' | 'recalibrated';
/** full or learned: as trained; calibrated: PTO (after the learned scales, for a learned model). */
type Conductance = 'full' | 'learned' | 'calibrated';

export async function runPtoExperiment(o: PtoExperimentOptions): Promise<Experiment> {
  const exp = new Experiment(o.out, 'pto', {
    models: o.models.map((m) => m.dir),
    data: o.dataSpec,
    hw: o.hw,
    percentile: o.percentile,
    sigmas: o.sigmas,
    calibration: o.calibration,
    limit: o.limit,
  });
  const specAt = (
    range: 'dynamic' | 'learned' | 'calibrated',
    timeS: number,
    conductance: Conductance,
    layers: readonly string[],
  ): ResolvedSpec =>
    loadSpec(
      o.hw,
      [
        `timeS=${timeS}`,
        ...(conductance === 'learned' ? ['mapping.conductanceRange.kind=learned'] : []),
        ...(conductance === 'calibrated'
          ? [
              'mapping.conductanceRange.kind=calibrated',
              `mapping.conductanceRange.sigmas=${o.sigmas}`,
              `mapping.conductanceRange.samples=${o.calibration}`,
            ]
          : []),
        ...(range === 'calibrated'
          ? [
              'dac.range.kind=calibrated',
              `dac.range.percentile=${o.percentile}`,
              `dac.range.samples=${o.calibration}`,
            ]
          : [`dac.range.kind=${range}`]),
      ],
      layers,
    );
  for (const m of o.models) {
    const split = holdOut(m.data, o.calibration);
    const calib = subset(m.data, split.calibration, `${m.data.name} calibration`);
    const evalData = subset(m.data, split.evaluation.slice(0, o.limit), `${m.data.name} evaluation`);
    await exp.once(`ideal.${m.name}`, async () => (await evaluate(m.model, evalData)).value);
    const layers = m.model.linearLayers().map((l) => l.name);
    // a learned model's own ranges, read once (and checked against the spec's tiling)
    const learned = m.learned
      ? learnedRangesFor(m.dir, m.model, specAt('learned', 3600, 'learned', layers))
      : { inputRanges: new Map<string, Float32Array>(), columnScales: new Map<string, Float32Array>() };
    const asTrained = m.learned ? 'learned' : 'dynamic';
    /** One instance at time t: programmed by `seed`, ranges as `range` and `conductance` say. */
    const instance = async (seed: number, range: Range, timeS: number, conductance: Conductance) => {
      const spec = specAt(range === 'recalibrated' ? 'calibrated' : range, timeS, conductance, layers);
      const analog = new AnalogModel(spec, seed);
      if (range === 'learned') analog.setInputRanges(learned.inputRanges);
      if (range === 'calibrated' || range === 'recalibrated') {
        // calibrated: on the chip right after programming (t = 1 s); re-calibrated: as it is at t
        const at = range === 'calibrated' ? 1 : timeS;
        const probe = new AnalogModel(specAt(asTrained, at, m.learned ? 'learned' : 'full', layers), seed);
        if (m.learned) {
          probe.setInputRanges(learned.inputRanges);
          probe.setColumnScales(learned.columnScales);
        }
        analog.setInputRanges(
          await calibrateInputRanges(
            m.model,
            () => calib,
            spec,
            () => {},
            probe.matmuls(),
          ),
        );
      }
      if (conductance === 'learned') analog.setColumnScales(learned.columnScales);
      if (conductance === 'calibrated') {
        // before programming, on the floating-point activations and the input ranges just set
        // (for a learned model, on top of its learned scales)
        analog.setColumnScales(
          await calibrateConductanceRanges(
            m.model,
            () => calib,
            spec,
            analog.inputRanges,
            () => {},
            learned.columnScales,
          ),
        );
      }
      await analog.prepare(m.model);
      return (
        await evaluate(m.model, evalData, {
          matmuls: analog.matmuls(),
          fresh: true,
          ...(o.batch ? { batch: o.batch } : {}),
        })
      ).value;
    };
    const ownConductance: Conductance = m.learned ? 'learned' : 'full';
    for (const conductance of [ownConductance, 'calibrated'] as const) {
      for (const range of [asTrained, 'calibrated'] as const) {
        // named as the committed results name them (the time included), so those resume
        const key = `${m.name}.${range}${conductance === 'calibrated' ? '.conductance' : ''}.t3600`;
        await exp.cell(
          key,
          { model: m.name, range, conductance, time: '1 h' },
          o.repeats,
          o.seed,
          async (seed) => ({
            value: await instance(seed, range, 3600, conductance),
          }),
        );
      }
    }
    for (const t of TIMES) {
      for (const range of [asTrained, 'calibrated', 'recalibrated'] as const) {
        await exp.cell(
          `${m.name}.${range}.time${t}`,
          { model: m.name, range, time: TIME_LABEL[t]! },
          o.timeRepeats,
          o.seed,
          async (seed) => ({
            value: await instance(seed, range, t, ownConductance),
          }),
        );
      }
    }
  }
  report(exp, o);
  return exp;
}

/** How the time sweep names an input-range policy. */
const rangeLabel = (k: Range): string =>
  k === 'calibrated' ? 'PTO at 1 s' : k === 'recalibrated' ? 'PTO again at t' : k;

function report(exp: Experiment, o: PtoExperimentOptions): void {
  const r = exp.record;
  const lines = [
    `# Post-training range optimisation on ${o.hw}`,
    '',
    `Command: \`${r.command}\``,
    `Data: ${o.dataSpec}; the last ${o.calibration} examples calibrate, the first ${o.limit} of the rest are scored.`,
    `Seeds ${o.seed}..${o.seed + o.repeats - 1} (table), ${o.seed}..${o.seed + o.timeRepeats - 1} (time sweep); machine ${r.machine!.cpus} (${r.machine!.cores} cores).`,
    '',
    `## Accuracy (%) at t = 1 h, mean ± std over ${o.repeats} instances`,
    '',
    'The paper’s Table II layout: ranges learned in training or not (rows), optimised post-training (PTO) or not.',
    'For a model trained without learned ranges, "as trained" is the dynamic input range (max |x| per vector) and',
    'full columns; for one trained with learned ranges, its learned per-tile input ranges and per-column η.',
    '',
    '| model | ideal | conductance range | input range as trained | input range PTO (per-tile percentile) |',
    '|---|---|---|---|---|',
    ...o.models.flatMap((m) => {
      const own = m.learned ? 'learned' : 'dynamic';
      return [false, true].map((pto) => {
        const tag = pto ? '.conductance' : '';
        const label = pto
          ? `${m.learned ? 'learned η, then ' : ''}PTO: μ + ${o.sigmas}σ vs I_S`
          : m.learned
            ? 'learned η'
            : 'full';
        return `| ${m.name} (${m.dir}) | ${(100 * (r.extra[`ideal.${m.name}`] as number)).toFixed(2)} | ${label} | ${pm(r.cells[`${m.name}.${own}${tag}.t3600`])} (${own}) | ${pm(r.cells[`${m.name}.calibrated${tag}.t3600`])} |`;
      });
    }),
    '',
    `## Accuracy (%) against time since programming, ${o.timeRepeats} instances`,
    '',
    `| model | input range | ${TIMES.map((t) => TIME_LABEL[t]).join(' | ')} |`,
    `|---|---|${TIMES.map(() => '---').join('|')}|`,
    ...o.models.flatMap((m) =>
      ([m.learned ? 'learned' : 'dynamic', 'calibrated', 'recalibrated'] as const).map(
        (k) =>
          `| ${m.name} | ${rangeLabel(k)} | ${TIMES.map((t) => pm(r.cells[`${m.name}.${k}.time${t}`])).join(' | ')} |`,
      ),
    ),
    '',
    `Percentile K = ${o.percentile}; conductance rule L = ${o.sigmas}; ${PAPER_NOTE}.`,
    '',
  ];
  exp.write('results.md', lines.join('\n'));
  const charts = o.models.map((m) =>
    lineChart({
      title: `${m.name}: accuracy against time`,
      xLabel: 'time since programming (s)',
      yLabel: 'accuracy (%)',
      logX: true,
      series: ([m.learned ? 'learned' : 'dynamic', 'calibrated', 'recalibrated'] as const).map((k) => ({
        label: rangeLabel(k),
        points: TIMES.flatMap((t) => {
          const c = r.cells[`${m.name}.${k}.time${t}`];
          return c ? [{ x: t, y: 100 * c.mean, err: 100 * c.std }] : [];
        }),
      })),
    }),
  );
  exp.figure('pto', svgDocument([charts], { title: 'Post-training range optimisation' }));
}
