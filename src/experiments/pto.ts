/**
 * The post-training optimisation experiment (the PTO paper's Table II layout): models (as
 * trained, hardware-aware trained) × DAC input range (dynamic max per vector, or per-tile ranges
 * from the K-th percentile of calibration inputs) × conductance range (full, or per column
 * shrunk where μ + L·σ of the column current exceeds the ADC saturation) at t = 1 h; then accuracy
 * against time since programming (1 s … 1 year) for ranges calibrated once at t = 1 s, ranges
 * re-calibrated at each t on the same programmed instance, and dynamic ranges, each PTO policy
 * as a paired difference from the as-trained ranges. Calibration uses the last examples of the
 * data (held out), never the evaluated ones. Before any instance, the share of column currents
 * beyond the ADC's saturation on the calibration inputs, at the chip's I_S and at lower ones:
 * the condition under which the conductance rule has anything to do.
 *
 * With a calibrated ADC range (`--set adc.range.kind=calibrated`), each instance's ADC ranges are
 * calibrated on the same held-out inputs through its noise-free, undrifted crossbars with the
 * input ranges and conductance scales it uses (the values before the ADC depend on them). Such an
 * ADC sets each column's range on data, which is what the conductance rule does in the
 * conductances against a fixed I_S: with no I_S to shrink columns to, the rule's cells and the
 * saturation counts are left out, and the report says so.
 */
import { calibratedAdc } from '../analog/adc.js';
import { AnalogModel } from '../analog/analog-model.js';
import { learnedRangesFor } from '../analog/learned-ranges.js';
import { loadSpec } from '../analog/presets.js';
import type { ResolvedSpec } from '../analog/resolve.js';
import { type EvalData, holdOut, subset } from '../eval/data.js';
import { evaluate, runOn } from '../eval/evaluate.js';
import { calibrateAdcRanges } from '../methods/adc-range.js';
import { calibrateConductanceRanges, calibrateInputRanges, type SaturationCounts } from '../methods/pto.js';
import type { Model } from '../models/index.js';
import { layerKind } from '../models/layer-names.js';
import { figure, lineChart } from '../report/charts.js';
import type { Provider } from '../runtime/session.js';
import { InputError } from '../util/errors.js';
import {
  type CellRecord,
  Experiment,
  type ExperimentRecord,
  pairedDifferences,
  pm,
  signedInterval,
} from './runner.js';

/** Times since programming of the drift sweep, s: 1 s, 1 h, 1 day, 1 month, 1 year. */
const TIMES = [1, 3600, 86_400, 2_592_000, 31_536_000] as const;
const TIME_LABEL: Record<number, string> = {
  1: '1 s',
  3600: '1 h',
  86400: '1 d',
  2592000: '30 d',
  31536000: '1 y',
};

/** ADC saturations I_S (devices at G_MAX driven at full input) at which the currents are counted. */
const SATURATIONS = [10, 5, 3, 2, 1] as const;

/** One model's conductance rule at one I_S: columns shrunk of all, share of currents beyond ±I_S (mean and largest over layers). */
interface Saturation {
  shrunk: number;
  columns: number;
  beyondMean: number;
  beyondMax: number;
}

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
  /** `--set` assignments applied to `hw` in every cell (before what the cells set). */
  sets: readonly string[];
  out: string;
  repeats: number;
  timeRepeats: number;
  seed: number;
  /** Examples held out (the last of the data) for calibration: N of Algorithm 1 (the paper's 2). */
  calibration: number;
  percentile: number;
  /** L of the conductance-range rule μ + L·σ. */
  sigmas: number;
  /** The variable of μ + L·σ: the paper's signed column current, or its magnitude. */
  current: 'signed' | 'magnitude';
  limit: number;
  batch?: number;
  /** Where the forwards run (default: the CPU). */
  provider?: Provider;
}

/** dynamic or learned: as the model was trained; calibrated: PTO at t = 1 s; recalibrated: PTO at t. */
type Range = 'dynamic' | 'learned' | 'calibrated' | 'recalibrated';
/** full or learned: as trained; calibrated: PTO (after the learned scales, for a learned model). */
type Conductance = 'full' | 'learned' | 'calibrated';

/** What the cells set, which `--set` may not, and the flag that sets it instead. */
const CELL_FIELDS: Record<string, string> = {
  timeS: 'each cell sets the time (1 h, and the sweep 1 s … 1 y)',
  'dac.range': 'each cell sets the input range (as trained or PTO); --percentile sets K',
  'mapping.conductanceRange':
    'each cell sets the conductance range (as trained or PTO); --sigmas and --current set the rule',
};

const fieldOf = (assignment: string) => assignment.split('=')[0]!.trim();

function checkSets(sets: readonly string[]): void {
  const bad = sets.flatMap((s) => {
    const field = fieldOf(s);
    const cell = Object.keys(CELL_FIELDS).find((f) => field === f || field.startsWith(`${f}.`));
    return cell ? [{ field, value: s, allowed: `${CELL_FIELDS[cell]}; set any other field` }] : [];
  });
  if (bad.length) throw new InputError('--set', bad);
}

/** Whether a static layer of `spec` has a calibrated ADC range (no fixed saturation I_S). */
const adcOnData = (spec: ResolvedSpec, layers: readonly string[]): boolean =>
  layers.some((l) => spec.spec.mapped[layerKind(l)] && calibratedAdc(spec.crossbar(l)));

export async function runPtoExperiment(o: PtoExperimentOptions): Promise<Experiment> {
  checkSets(o.sets);
  const exp = new Experiment(o.out, 'pto', {
    models: o.models.map((m) => m.dir),
    data: o.dataSpec,
    hw: o.hw,
    ...(o.sets.length ? { sets: o.sets } : {}),
    percentile: o.percentile,
    sigmas: o.sigmas,
    current: o.current,
    calibration: o.calibration,
    limit: o.limit,
  });
  const specAt = (
    range: 'dynamic' | 'learned' | 'calibrated',
    timeS: number,
    conductance: Conductance,
    layers: readonly string[],
    /** Assignments of this spec alone, in place of the user's of the same fields (the saturation counts' I_S). */
    more: readonly string[] = [],
  ): ResolvedSpec =>
    loadSpec(
      o.hw,
      [
        ...o.sets.filter((s) => !more.some((m) => fieldOf(m) === fieldOf(s))),
        ...more,
        `timeS=${timeS}`,
        ...(conductance === 'learned' ? ['mapping.conductanceRange.kind=learned'] : []),
        ...(conductance === 'calibrated'
          ? [
              'mapping.conductanceRange.kind=calibrated',
              `mapping.conductanceRange.sigmas=${o.sigmas}`,
              `mapping.conductanceRange.samples=${o.calibration}`,
              `mapping.conductanceRange.current=${o.current}`,
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
  /** The models whose ADC range is calibrated, so without the conductance rule. */
  const withoutRule = new Set<string>();
  for (const m of o.models) {
    const split = holdOut(m.data, o.calibration);
    const calib = subset(m.data, split.calibration, `${m.data.name} calibration`);
    const evalData = subset(m.data, split.evaluation.slice(0, o.limit), `${m.data.name} evaluation`);
    await exp.once(
      `ideal.${m.name}`,
      async () => (await evaluate(m.model, evalData, runOn({ provider: o.provider }))).value,
    );
    const layers = m.model.linearLayers().map((l) => l.name);
    // a learned model's own ranges, read once (and checked against the spec's tiling)
    const learned = m.learned
      ? learnedRangesFor(m.dir, m.model, specAt('learned', 3600, 'learned', layers))
      : { inputRanges: new Map<string, Float32Array>(), columnScales: new Map<string, Float32Array>() };
    const asTrained = m.learned ? 'learned' : 'dynamic';
    const ownConductance: Conductance = m.learned ? 'learned' : 'full';
    // the conductance rule needs the ADC's fixed saturation I_S
    const calibratedAdcRange = adcOnData(specAt(asTrained, 3600, ownConductance, layers), layers);
    if (calibratedAdcRange) withoutRule.add(m.name);
    // the conductance rule on the noise-free currents of the as-trained input ranges, at I_S
    for (const saturation of calibratedAdcRange ? [] : SATURATIONS) {
      await exp.once(`saturation.${m.name}.${saturation}`, async (): Promise<Saturation> => {
        const counts: SaturationCounts[] = [];
        await calibrateConductanceRanges(
          m.model,
          () => calib,
          specAt(asTrained, 3600, 'calibrated', layers, [`adc.range.max=${saturation}`]),
          learned.inputRanges,
          (_, c) => counts.push(c),
          learned.columnScales,
        );
        return {
          shrunk: counts.reduce((a, c) => a + c.shrunk, 0),
          columns: counts.reduce((a, c) => a + c.columns, 0),
          beyondMean: counts.reduce((a, c) => a + c.beyond, 0) / counts.length,
          beyondMax: Math.max(...counts.map((c) => c.beyond)),
        };
      });
    }
    /** Sets a calibrated ADC's ranges of `analog`, through its input ranges and column scales as set. */
    const withAdcRanges = async (analog: AnalogModel) => {
      if (!calibratedAdcRange) return;
      const { inputRanges, columnScales } = analog;
      analog.setAdcRanges(
        await calibrateAdcRanges(m.model, () => calib, analog.hw, { inputRanges, columnScales }),
      );
    };
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
        await withAdcRanges(probe);
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
      await withAdcRanges(analog);
      await analog.prepare(m.model);
      return (
        await evaluate(m.model, evalData, {
          matmuls: analog.matmuls(),
          fresh: true,
          ...runOn(o),
        })
      ).value;
    };
    for (const conductance of calibratedAdcRange
      ? [ownConductance]
      : ([ownConductance, 'calibrated'] as const)) {
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
  await report(exp, o, withoutRule);
  return exp;
}

/** a − b paired by seed, in points with its 95 % interval. */
const difference = (a: CellRecord | undefined, b: CellRecord | undefined): string =>
  a && b ? signedInterval(pairedDifferences(a, b)) : '—';

/** How the time sweep names an input-range policy. */
const rangeLabel = (k: Range): string =>
  k === 'calibrated' ? 'PTO at 1 s' : k === 'recalibrated' ? 'PTO again at t' : k;

async function report(
  exp: Experiment,
  o: PtoExperimentOptions,
  withoutRule: ReadonlySet<string>,
): Promise<void> {
  const r = exp.record;
  const rule = o.models.filter((m) => !withoutRule.has(m.name));
  const lines = [
    `# Post-training range optimisation on ${o.hw}${o.sets.length ? ` with --set ${o.sets.join(' ')}` : ''}`,
    '',
    `Command: \`${r.command}\``,
    `Data: ${o.dataSpec}; the last ${o.calibration} examples calibrate, the first ${o.limit} of the rest are scored.`,
    ...(withoutRule.size
      ? [
          `ADC range 'calibrated' (${[...withoutRule].join(', ')}): each instance's ADC ranges, per row tile and column, are calibrated on the held-out examples through its noise-free, undrifted crossbars with the input ranges and column scales that instance uses. ` +
            `The conductance rule (μ + L·σ of the column current against the ADC's saturation I_S) is left out there: a calibrated ADC sets each column's range on data itself and has no fixed I_S to shrink columns to (\`xbar eval\` refuses mapping.conductanceRange 'calibrated' with adc.range 'calibrated').`,
        ]
      : []),
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
      return (withoutRule.has(m.name) ? [false] : [false, true]).map((pto) => {
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
    `Paired differences (points, mean [95 % interval] over the ${o.repeats} instances; a PTO cell minus the same instances as trained):`,
    '',
    '| model | input PTO | conductance PTO | both |',
    '|---|---|---|---|',
    ...o.models.map((m) => {
      const own = m.learned ? 'learned' : 'dynamic';
      const base = r.cells[`${m.name}.${own}.t3600`];
      const d = (key: string) => difference(r.cells[key], base);
      return `| ${m.name} | ${d(`${m.name}.calibrated.t3600`)} | ${d(`${m.name}.${own}.conductance.t3600`)} | ${d(`${m.name}.calibrated.conductance.t3600`)} |`;
    }),
    ...(rule.length ? saturationSection(r, o, rule) : ['']),
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
    `Paired differences from the as-trained input range (points, mean [95 % interval] over ${o.timeRepeats} instances):`,
    '',
    `| model | input range | ${TIMES.map((t) => TIME_LABEL[t]).join(' | ')} |`,
    `|---|---|${TIMES.map(() => '---').join('|')}|`,
    ...o.models.flatMap((m) =>
      (['calibrated', 'recalibrated'] as const).map(
        (k) =>
          `| ${m.name} | ${rangeLabel(k)} | ${TIMES.map((t) => difference(r.cells[`${m.name}.${k}.time${t}`], r.cells[`${m.name}.${m.learned ? 'learned' : 'dynamic'}.time${t}`])).join(' | ')} |`,
      ),
    ),
    '',
    `Percentile K = ${o.percentile}; conductance rule L = ${o.sigmas} over ${o.current === 'signed' ? 'the signed current I' : '|I|'}; N = ${o.calibration} calibration inputs; ${PAPER_NOTE}.`,
    '',
  ];
  exp.write('results.md', lines.join('\n'));
  const charts = o.models.map((m) =>
    lineChart({
      title: `${m.name}: accuracy against time`,
      xTitle: 'time since programming (log scale)',
      xNames: TIME_LABEL,
      yTitle: 'accuracy (%, ±1 std)',
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
  await exp.figure('pto', figure([charts], { title: 'Post-training range optimisation' }));
}

/** The saturation counts of the conductance rule, for the models it ran on. */
function saturationSection(
  r: ExperimentRecord,
  o: PtoExperimentOptions,
  models: PtoExperimentOptions['models'],
): string[] {
  return [
    '',
    `## How often the columns saturate`,
    '',
    `The conductance rule acts only on columns whose μ + ${o.sigmas}σ of ${o.current === 'signed' ? 'I' : '|I|'} exceeds I_S. Noise-free column currents over the ${o.calibration} calibration inputs (input ranges as trained), at the chip's I_S and at lower ones (the ADC's range in devices at G_MAX driven at full input): columns the rule shrinks, and the share of currents beyond ±I_S (mean over layers; largest layer).`,
    '',
    `| model | ${SATURATIONS.map((v) => `I_S = ${v}`).join(' | ')} |`,
    `|---|${SATURATIONS.map(() => '---').join('|')}|`,
    ...models.map((m) => {
      const at = (v: number) => {
        const c = r.extra[`saturation.${m.name}.${v}`] as Saturation | undefined;
        if (!c) return '—';
        const pct = (x: number) => `${(100 * x).toFixed(x < 0.001 ? 3 : 2)} %`;
        return `${c.shrunk}/${c.columns}; ${pct(c.beyondMean)} (${pct(c.beyondMax)})`;
      };
      return `| ${m.name} | ${SATURATIONS.map(at).join(' | ')} |`;
    }),
    '',
  ];
}
