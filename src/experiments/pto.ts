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
import { loadSpec } from '../analog/presets.js';
import type { HardwareSpec } from '../analog/spec.js';
import type { EvalData } from '../eval/data.js';
import { evaluate } from '../eval/evaluate.js';
import { holdOut, subset } from '../methods/clipformer-search.js';
import { calibrateConductanceRanges, calibrateInputRanges } from '../methods/pto.js';
import type { Model } from '../models/index.js';
import { lineChart, svgDocument, toPng } from '../report/svg.js';
import { Experiment, pm } from './runner.js';

/** Times since programming of the drift sweep, s: 1 s, 1 h, 1 day, 1 month, 1 year. */
export const TIMES = [1, 3600, 86_400, 2_592_000, 31_536_000] as const;
const TIME_LABEL: Record<number, string> = {
  1: '1 s',
  3600: '1 h',
  86400: '1 d',
  2592000: '30 d',
  31536000: '1 y',
};

/** The paper's RoBERTa-base SST-2 row (Table II), as METHODS.md §3 gives it: accuracy %. */
export const PAPER_NOTE = 'see METHODS.md §3 for the paper’s RoBERTa-base GLUE rows';

export interface PtoExperimentOptions {
  models: { name: string; dir: string; model: Model; data: EvalData }[];
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

type Range = 'dynamic' | 'calibrated' | 'recalibrated';
type Conductance = 'full' | 'calibrated';

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
    range: 'dynamic' | 'calibrated',
    timeS: number,
    conductance: Conductance = 'full',
  ): HardwareSpec =>
    loadSpec(o.hw, [
      `timeS=${timeS}`,
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
        : ['dac.range.kind=dynamic']),
    ]);
  for (const m of o.models) {
    const split = holdOut(m.data, o.calibration);
    const calib = subset(m.data, split.calibration, `${m.data.name} calibration`);
    const evalData = subset(m.data, split.evaluation.slice(0, o.limit), `${m.data.name} evaluation`);
    await exp.once(`ideal.${m.name}`, async () => (await evaluate(m.model, evalData)).value);
    /** One instance at time t: programmed by `seed`, ranges calibrated as `range` and `conductance` say. */
    const instance = async (seed: number, range: Range, timeS: number, conductance: Conductance = 'full') => {
      const spec = specAt(range === 'dynamic' ? 'dynamic' : 'calibrated', timeS, conductance);
      const analog = new AnalogModel(spec, seed);
      if (range !== 'dynamic') {
        // calibrated: on the chip right after programming (t = 1 s); re-calibrated: as it is at t
        const at = range === 'calibrated' ? 1 : timeS;
        const probe = new AnalogModel(specAt('dynamic', at), seed);
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
      if (conductance === 'calibrated') {
        // before programming, on the floating-point activations and the input ranges just set
        analog.setColumnScales(
          await calibrateConductanceRanges(m.model, () => calib, spec, analog.inputRanges),
        );
      }
      return (
        await evaluate(m.model, evalData, {
          matmuls: analog.matmuls(),
          fresh: true,
          ...(o.batch ? { batch: o.batch } : {}),
        })
      ).value;
    };
    for (const conductance of ['full', 'calibrated'] as const) {
      for (const range of ['dynamic', 'calibrated'] as const) {
        // the first table's cells keep their names, so older results resume
        const key = `${m.name}.${range}${conductance === 'full' ? '' : '.conductance'}.t3600`;
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
      for (const range of ['dynamic', 'calibrated', 'recalibrated'] as const) {
        await exp.cell(
          `${m.name}.${range}.time${t}`,
          { model: m.name, range, time: TIME_LABEL[t]! },
          o.timeRepeats,
          o.seed,
          async (seed) => ({
            value: await instance(seed, range, t),
          }),
        );
      }
    }
  }
  exp.save();
  report(exp, o);
  return exp;
}

function report(exp: Experiment, o: PtoExperimentOptions): void {
  const r = exp.record;
  const lines = [
    `# Post-training input-range optimisation on ${o.hw}`,
    '',
    `Command: \`${r.command}\``,
    `Data: ${o.dataSpec}; the last ${o.calibration} examples calibrate, the first ${o.limit} of the rest are scored.`,
    `Seeds ${o.seed}..${o.seed + o.repeats - 1} (table), ${o.seed}..${o.seed + o.timeRepeats - 1} (time sweep); machine ${r.machine.cpus} (${r.machine.cores} cores).`,
    '',
    `## Accuracy (%) at t = 1 h, mean ± std over ${o.repeats} instances`,
    '',
    '| model | ideal | conductance range | input: dynamic (max per vector) | input: PTO per-tile percentile |',
    '|---|---|---|---|---|',
    ...o.models.flatMap((m) =>
      (['full', 'calibrated'] as const).map((c) => {
        const tag = c === 'full' ? '' : '.conductance';
        return `| ${m.name} (${m.dir}) | ${(100 * (r.extra[`ideal.${m.name}`] as number)).toFixed(2)} | ${c === 'full' ? 'full' : `PTO: μ + ${o.sigmas}σ vs I_S`} | ${pm(r.cells[`${m.name}.dynamic${tag}.t3600`])} | ${pm(r.cells[`${m.name}.calibrated${tag}.t3600`])} |`;
      }),
    ),
    '',
    `## Accuracy (%) against time since programming, ${o.timeRepeats} instances`,
    '',
    `| model | range | ${TIMES.map((t) => TIME_LABEL[t]).join(' | ')} |`,
    `|---|---|${TIMES.map(() => '---').join('|')}|`,
    ...o.models.flatMap((m) =>
      (['dynamic', 'calibrated', 'recalibrated'] as const).map(
        (k) =>
          `| ${m.name} | ${k === 'calibrated' ? 'calibrated at 1 s' : k === 'recalibrated' ? 're-calibrated at t' : 'dynamic'} | ${TIMES.map((t) => pm(r.cells[`${m.name}.${k}.time${t}`])).join(' | ')} |`,
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
      series: (['dynamic', 'calibrated', 'recalibrated'] as const).map((k) => ({
        label: k,
        points: TIMES.flatMap((t) => {
          const c = r.cells[`${m.name}.${k}.time${t}`];
          return c ? [{ x: t, y: 100 * c.mean, err: 100 * c.std }] : [];
        }),
      })),
    }),
  );
  const svg = svgDocument([charts], { title: 'Post-training range optimisation' });
  exp.write('pto.svg', svg);
  exp.write('pto.png', toPng(svg));
}
