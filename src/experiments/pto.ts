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
 *
 * This module is the design (the cells, the spec of each), one instance and one saturation
 * count (what a sweep point of sweep/tasks/pto.ts computes) and the report; the instances run as
 * a sweep's points (sweep/pto.ts).
 */
import { join } from 'node:path';
import { calibratedAdc } from '../analog/adc.js';
import { AnalogModel } from '../analog/analog-model.js';
import { learnedRangesFor } from '../analog/learned-ranges.js';
import { loadSpec } from '../analog/presets.js';
import type { ResolvedSpec } from '../analog/resolve.js';
import { type EvalData, holdOut, subset } from '../eval/data.js';
import { type EvalResult, evaluate, runOn } from '../eval/evaluate.js';
import { calibrateAdcRanges } from '../methods/adc-range.js';
import { calibrateConductanceRanges, calibrateInputRanges, type SaturationCounts } from '../methods/pto.js';
import type { Model } from '../models/index.js';
import { layerKind } from '../models/layer-names.js';
import { figure, lineChart } from '../report/charts.js';
import { writeFigure } from '../report/render.js';
import type { Provider } from '../runtime/session.js';
import { InputError } from '../util/errors.js';
import { writeFileAtomic } from '../util/files.js';
import { type CellRecord, pairedDifferences, pm, signedInterval } from './cells.js';

/** Times since programming of the drift sweep, s: 1 s, 1 h, 1 day, 1 month, 1 year. */
export const TIMES = [1, 3600, 86_400, 2_592_000, 31_536_000] as const;
const TIME_LABEL: Record<number, string> = {
  1: '1 s',
  3600: '1 h',
  86400: '1 d',
  2592000: '30 d',
  31536000: '1 y',
};
/** The time of the table (and of the saturation counts' spec). */
export const TABLE_TIME = 3600;

/** ADC saturations I_S (devices at G_MAX driven at full input) at which the currents are counted. */
export const SATURATIONS = [10, 5, 3, 2, 1] as const;

/** One model's conductance rule at one I_S: columns shrunk of all, share of currents beyond ±I_S (mean and largest over layers). */
export interface Saturation {
  shrunk: number;
  columns: number;
  beyondMean: number;
  beyondMax: number;
}

/** Where the paper's RoBERTa-base GLUE figures are stated (docs/methods.md §3). */
const PAPER_NOTE = 'see docs/methods.md §3 for the paper’s RoBERTa-base GLUE figures';

/** dynamic or learned: as the model was trained; calibrated: PTO at t = 1 s; recalibrated: PTO at t. */
export const RANGES = ['dynamic', 'learned', 'calibrated', 'recalibrated'] as const;
export type Range = (typeof RANGES)[number];
/** full or learned: as trained; calibrated: PTO (after the learned scales, for a learned model). */
export const CONDUCTANCES = ['full', 'learned', 'calibrated'] as const;
export type Conductance = (typeof CONDUCTANCES)[number];
/** The variable of μ + L·σ: the paper's signed column current, or its magnitude. */
export const CURRENTS = ['signed', 'magnitude'] as const;

/**
 * What every cell's spec is made of: the hardware with the user's `--set` assignments, and the
 * PTO rules' parameters (a cell that applies no rule reads none of them).
 */
export interface PtoDesign {
  hw: string;
  /** `--set` assignments applied to `hw` in every cell (before what the cells set). */
  sets: readonly string[];
  /** Examples held out (the last of the data) for calibration: N of Algorithm 1 (the paper's 2). */
  calibration: number;
  /** K: the percentile of |x| that sets a tile's input range (input-range PTO). */
  percentile?: number | undefined;
  /** L of the conductance-range rule μ + L·σ. */
  sigmas?: number | undefined;
  current?: (typeof CURRENTS)[number] | undefined;
}

/** What the cells set, which `--set` may not, and the flag that sets it instead. */
const CELL_FIELDS: Record<string, string> = {
  timeS: 'each cell sets the time (1 h, and the sweep 1 s … 1 y)',
  'dac.range': 'each cell sets the input range (as trained or PTO); --percentile sets K',
  'mapping.conductanceRange':
    'each cell sets the conductance range (as trained or PTO); --sigmas and --current set the rule',
};

const fieldOf = (assignment: string) => assignment.split('=')[0]!.trim();

/** The assignments of `sets` that set what the cells vary, each with the flag to use instead. */
export function cellFieldProblems(sets: readonly string[]) {
  return sets.flatMap((s) => {
    const field = fieldOf(s);
    const cell = Object.keys(CELL_FIELDS).find((f) => field === f || field.startsWith(`${f}.`));
    return cell ? [{ field, value: s, allowed: `${CELL_FIELDS[cell]}; set any other field` }] : [];
  });
}

export function checkSets(sets: readonly string[]): void {
  const bad = cellFieldProblems(sets);
  if (bad.length) throw new InputError('--set', bad);
}

/** A rule's parameter the cell needs (the task's check makes sure the point has it). */
const needed = <T>(v: T | undefined, name: string): T => {
  if (v === undefined) throw new Error(`the PTO cell needs ${name}`);
  return v;
};

/**
 * The spec of a cell: `range` and `conductance` at `timeS`, on `d.hw` with the user's sets;
 * `more`: assignments of this spec alone, in place of the user's of the same fields (the
 * saturation counts' I_S).
 */
export function ptoSpec(
  d: PtoDesign,
  range: 'dynamic' | 'learned' | 'calibrated',
  timeS: number,
  conductance: Conductance,
  layers: readonly string[],
  more: readonly string[] = [],
): ResolvedSpec {
  return loadSpec(
    d.hw,
    [
      ...d.sets.filter((s) => !more.some((m) => fieldOf(m) === fieldOf(s))),
      ...more,
      `timeS=${timeS}`,
      ...(conductance === 'learned' ? ['mapping.conductanceRange.kind=learned'] : []),
      ...(conductance === 'calibrated'
        ? [
            'mapping.conductanceRange.kind=calibrated',
            `mapping.conductanceRange.sigmas=${needed(d.sigmas, 'sigmas')}`,
            `mapping.conductanceRange.samples=${d.calibration}`,
            `mapping.conductanceRange.current=${needed(d.current, 'current')}`,
          ]
        : []),
      ...(range === 'calibrated'
        ? [
            'dac.range.kind=calibrated',
            `dac.range.percentile=${needed(d.percentile, 'percentile')}`,
            `dac.range.samples=${d.calibration}`,
          ]
        : [`dac.range.kind=${range}`]),
    ],
    layers,
  );
}

/** The input range and conductance range a model was trained with. */
export const asTrainedRange = (learned: boolean) => (learned ? 'learned' : 'dynamic');
export const asTrainedConductance = (learned: boolean): Conductance => (learned ? 'learned' : 'full');

/** The names of a model's linear layers (what specs are resolved for). */
const layersOf = (model: Model) => model.linearLayers().map((l) => l.name);

/**
 * Whether the model's as-trained cells have a calibrated ADC range (no fixed saturation I_S):
 * then the conductance rule and its saturation counts are left out.
 */
export function calibratedAdcRange(d: PtoDesign, model: Model, learned: boolean): boolean {
  const layers = layersOf(model);
  const spec = ptoSpec(d, asTrainedRange(learned), TABLE_TIME, asTrainedConductance(learned), layers);
  return layers.some((l) => spec.spec.mapped[layerKind(l)] && calibratedAdc(spec.crossbar(l)));
}

/** The data's held-out calibration part (the last `calibration`) and the first `limit` of the rest. */
export function ptoParts(
  data: EvalData,
  calibration: number,
  limit: number,
): { calib: EvalData; evalData: EvalData } {
  const split = holdOut(data, calibration);
  return {
    calib: subset(data, split.calibration, `${data.name} calibration`),
    evalData: subset(data, split.evaluation.slice(0, limit), `${data.name} evaluation`),
  };
}

/** A model as its instances use it: its folder's learned ranges and the data's parts. */
export interface PtoModel {
  model: Model;
  dir: string;
  /** Trained with learned input ranges and conductance scales (analog_ranges.safetensors in `dir`). */
  learned: boolean;
  calib: EvalData;
  evalData: EvalData;
}

/** A model's input ranges and column scales as trained (empty for a model without learned ranges). */
export interface TrainedRanges {
  inputRanges: Map<string, Float32Array>;
  columnScales: Map<string, Float32Array>;
}

/** A learned model's own ranges (checked against the spec's tiling); empty maps for another. */
export function ptoLearnedRanges(
  d: PtoDesign,
  m: Pick<PtoModel, 'model' | 'dir' | 'learned'>,
): TrainedRanges {
  return m.learned
    ? learnedRangesFor(m.dir, m.model, ptoSpec(d, 'learned', TABLE_TIME, 'learned', layersOf(m.model)))
    : { inputRanges: new Map(), columnScales: new Map() };
}

/** How an instance runs, and what it may take from a cache its caller keeps between instances. */
export interface InstanceOptions {
  batch?: number | undefined;
  provider?: Provider | undefined;
  /**
   * Values that do not depend on the instance's seed (the conductance scales on as-trained input
   * ranges, the ADC ranges of a probe at as-trained ranges), made once by `key` (default: made).
   */
  shared?: <V>(key: string, make: () => Promise<V>) => Promise<V>;
}

/**
 * One instance at time `timeS`: programmed by `seed`, input ranges as `range` and conductance
 * ranges as `conductance` say, evaluated on `m.evalData`.
 */
export async function ptoInstance(
  d: PtoDesign,
  m: PtoModel,
  learned: TrainedRanges,
  seed: number,
  range: Range,
  timeS: number,
  conductance: Conductance,
  o: InstanceOptions = {},
): Promise<EvalResult> {
  const shared = o.shared ?? ((_key, make) => make());
  const layers = layersOf(m.model);
  const asTrained = asTrainedRange(m.learned);
  const adcOnData = calibratedAdcRange(d, m.model, m.learned);
  /** A calibrated ADC's ranges of `analog`, through its input ranges and column scales as set. */
  const adcRanges = async (analog: AnalogModel) => {
    const { inputRanges, columnScales } = analog;
    return calibrateAdcRanges(m.model, () => m.calib, analog.hw, { inputRanges, columnScales });
  };
  const spec = ptoSpec(d, range === 'recalibrated' ? 'calibrated' : range, timeS, conductance, layers);
  const analog = new AnalogModel(spec, seed);
  if (range === 'learned') analog.setInputRanges(learned.inputRanges);
  if (range === 'calibrated' || range === 'recalibrated') {
    // calibrated: on the chip right after programming (t = 1 s); re-calibrated: as it is at t
    const at = range === 'calibrated' ? 1 : timeS;
    const probe = new AnalogModel(ptoSpec(d, asTrained, at, asTrainedConductance(m.learned), layers), seed);
    if (m.learned) {
      probe.setInputRanges(learned.inputRanges);
      probe.setColumnScales(learned.columnScales);
    }
    // through noise-free, undrifted crossbars at as-trained ranges: the same for every seed
    if (adcOnData) probe.setAdcRanges(await shared(`probe adc ${at}`, () => adcRanges(probe)));
    analog.setInputRanges(
      await calibrateInputRanges(
        m.model,
        () => m.calib,
        spec,
        () => {},
        probe.matmuls(),
      ),
    );
  }
  if (conductance === 'learned') analog.setColumnScales(learned.columnScales);
  if (conductance === 'calibrated') {
    // before programming, on the floating-point activations and the input ranges just set
    // (for a learned model, on top of its learned scales); on as-trained input ranges the same for every seed
    const scales = () =>
      calibrateConductanceRanges(
        m.model,
        () => m.calib,
        spec,
        analog.inputRanges,
        () => {},
        learned.columnScales,
      );
    analog.setColumnScales(
      range === 'calibrated' || range === 'recalibrated'
        ? await scales()
        : await shared(`conductance ${range} ${timeS}`, scales),
    );
  }
  if (adcOnData) {
    const seedFree = range === 'dynamic' || range === 'learned';
    analog.setAdcRanges(
      seedFree
        ? await shared(`adc ${range} ${conductance} ${timeS}`, () => adcRanges(analog))
        : await adcRanges(analog),
    );
  }
  await analog.prepare(m.model);
  return evaluate(m.model, m.evalData, {
    matmuls: analog.matmuls(),
    fresh: true,
    ...runOn(o),
  });
}

/**
 * The conductance rule on the noise-free currents of the as-trained input ranges at I_S =
 * `saturation` (the table's spec otherwise): columns it shrinks, and the share of currents beyond ±I_S.
 */
export async function ptoSaturation(
  d: PtoDesign,
  m: Pick<PtoModel, 'model' | 'learned' | 'calib'>,
  learned: TrainedRanges,
  saturation: number,
): Promise<Saturation> {
  const counts: SaturationCounts[] = [];
  await calibrateConductanceRanges(
    m.model,
    () => m.calib,
    ptoSpec(d, asTrainedRange(m.learned), TABLE_TIME, 'calibrated', layersOf(m.model), [
      `adc.range.max=${saturation}`,
    ]),
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
}

/** A model of the experiment: a row group. */
export interface PtoModelRow {
  name: string;
  dir: string;
  learned?: boolean | undefined;
}

/** A cell of the experiment: its instances, seeds `seed`.. */
export interface PtoCell {
  /** As the report names it: `MODEL.RANGE[.conductance].t3600` (table), `MODEL.RANGE.timeT` (time sweep). */
  key: string;
  model: string;
  range: Range;
  conductance: Conductance;
  timeS: number;
  repeats: number;
}

/** Each model's cells: the 1 h table (without the conductance rule where `withoutRule` has it), then the time sweep. */
export function ptoCells(
  models: readonly PtoModelRow[],
  withoutRule: ReadonlySet<string>,
  repeats: number,
  timeRepeats: number,
): PtoCell[] {
  return models.flatMap((m) => {
    const asTrained = asTrainedRange(!!m.learned);
    const own = asTrainedConductance(!!m.learned);
    const conductances = withoutRule.has(m.name) ? [own] : [own, 'calibrated' as const];
    return [
      ...conductances.flatMap((conductance) =>
        ([asTrained, 'calibrated'] as const).map((range) => ({
          key: `${m.name}.${range}${conductance === 'calibrated' ? '.conductance' : ''}.t${TABLE_TIME}`,
          model: m.name,
          range,
          conductance,
          timeS: TABLE_TIME,
          repeats,
        })),
      ),
      ...TIMES.flatMap((t) =>
        ([asTrained, 'calibrated', 'recalibrated'] as const).map((range) => ({
          key: `${m.name}.${range}.time${t}`,
          model: m.name,
          range,
          conductance: own,
          timeS: t,
          repeats: timeRepeats,
        })),
      ),
    ];
  });
}

/** What the report says of the run beside its numbers. */
export interface PtoReportInput extends Required<PtoDesign> {
  models: readonly PtoModelRow[];
  dataSpec: string;
  limit: number;
  repeats: number;
  timeRepeats: number;
  seed: number;
  command: string;
  /** Where the points were computed (the machine, or the hosts). */
  machine: string;
  /** The models whose ADC range is calibrated, so without the conductance rule. */
  withoutRule: ReadonlySet<string>;
  /** The floating-point model's accuracy, by model name. */
  ideal: ReadonlyMap<string, number>;
  /** The saturation counts by `MODEL.I_S`. */
  saturation: ReadonlyMap<string, Saturation>;
  /** The cells by key (PtoCell.key). */
  cells: ReadonlyMap<string, CellRecord>;
}

/** a − b paired by seed, in points with its 95 % interval. */
const difference = (a: CellRecord | undefined, b: CellRecord | undefined): string =>
  a && b ? signedInterval(pairedDifferences(a, b)) : '—';

/** How the time sweep names an input-range policy. */
const rangeLabel = (k: Range): string =>
  k === 'calibrated' ? 'PTO at 1 s' : k === 'recalibrated' ? 'PTO again at t' : k;

/** Writes `results.md` and the chart `pto.{vl.json,svg,png}` into `out`. */
export async function writePtoReport(out: string, o: PtoReportInput): Promise<void> {
  const { withoutRule } = o;
  const cell = (key: string) => o.cells.get(key);
  const rule = o.models.filter((m) => !withoutRule.has(m.name));
  const lines = [
    `# Post-training range optimisation on ${o.hw}${o.sets.length ? ` with --set ${o.sets.join(' ')}` : ''}`,
    '',
    `Command: \`${o.command}\``,
    `Data: ${o.dataSpec}; the last ${o.calibration} examples calibrate, the first ${o.limit} of the rest are scored.`,
    ...(withoutRule.size
      ? [
          `ADC range 'calibrated' (${[...withoutRule].join(', ')}): each instance's ADC ranges, per row tile and column, are calibrated on the held-out examples through its noise-free, undrifted crossbars with the input ranges and column scales that instance uses. ` +
            `The conductance rule (μ + L·σ of the column current against the ADC's saturation I_S) is left out there: a calibrated ADC sets each column's range on data itself and has no fixed I_S to shrink columns to (\`xbar eval\` refuses mapping.conductanceRange 'calibrated' with adc.range 'calibrated').`,
        ]
      : []),
    `Seeds ${o.seed}..${o.seed + o.repeats - 1} (table), ${o.seed}..${o.seed + o.timeRepeats - 1} (time sweep); ${o.machine}.`,
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
      const own = asTrainedRange(!!m.learned);
      const ideal = o.ideal.get(m.name);
      return (withoutRule.has(m.name) ? [false] : [false, true]).map((pto) => {
        const tag = pto ? '.conductance' : '';
        const label = pto
          ? `${m.learned ? 'learned η, then ' : ''}PTO: μ + ${o.sigmas}σ vs I_S`
          : m.learned
            ? 'learned η'
            : 'full';
        return `| ${m.name} (${m.dir}) | ${ideal === undefined ? '—' : (100 * ideal).toFixed(2)} | ${label} | ${pm(cell(`${m.name}.${own}${tag}.t3600`))} (${own}) | ${pm(cell(`${m.name}.calibrated${tag}.t3600`))} |`;
      });
    }),
    '',
    `Paired differences (points, mean [95 % interval] over the ${o.repeats} instances; a PTO cell minus the same instances as trained):`,
    '',
    '| model | input PTO | conductance PTO | both |',
    '|---|---|---|---|',
    ...o.models.map((m) => {
      const own = asTrainedRange(!!m.learned);
      const base = cell(`${m.name}.${own}.t3600`);
      const d = (key: string) => difference(cell(key), base);
      return `| ${m.name} | ${d(`${m.name}.calibrated.t3600`)} | ${d(`${m.name}.${own}.conductance.t3600`)} | ${d(`${m.name}.calibrated.conductance.t3600`)} |`;
    }),
    ...(rule.length ? saturationSection(o, rule) : ['']),
    `## Accuracy (%) against time since programming, ${o.timeRepeats} instances`,
    '',
    `| model | input range | ${TIMES.map((t) => TIME_LABEL[t]).join(' | ')} |`,
    `|---|---|${TIMES.map(() => '---').join('|')}|`,
    ...o.models.flatMap((m) =>
      ([asTrainedRange(!!m.learned), 'calibrated', 'recalibrated'] as const).map(
        (k) =>
          `| ${m.name} | ${rangeLabel(k)} | ${TIMES.map((t) => pm(cell(`${m.name}.${k}.time${t}`))).join(' | ')} |`,
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
          `| ${m.name} | ${rangeLabel(k)} | ${TIMES.map((t) => difference(cell(`${m.name}.${k}.time${t}`), cell(`${m.name}.${asTrainedRange(!!m.learned)}.time${t}`))).join(' | ')} |`,
      ),
    ),
    '',
    `Percentile K = ${o.percentile}; conductance rule L = ${o.sigmas} over ${o.current === 'signed' ? 'the signed current I' : '|I|'}; N = ${o.calibration} calibration inputs; ${PAPER_NOTE}.`,
    '',
  ];
  writeFileAtomic(join(out, 'results.md'), lines.join('\n'));
  const charts = o.models.map((m) =>
    lineChart({
      title: `${m.name}: accuracy against time`,
      xTitle: 'time since programming (log scale)',
      xNames: TIME_LABEL,
      yTitle: 'accuracy (%, ±1 std)',
      logX: true,
      series: ([asTrainedRange(!!m.learned), 'calibrated', 'recalibrated'] as const).map((k) => ({
        label: rangeLabel(k),
        points: TIMES.flatMap((t) => {
          const c = cell(`${m.name}.${k}.time${t}`);
          return c ? [{ x: t, y: 100 * c.mean, err: 100 * c.std }] : [];
        }),
      })),
    }),
  );
  await writeFigure(out, 'pto', figure([charts], { title: 'Post-training range optimisation' }));
}

/** The saturation counts of the conductance rule, for the models it ran on. */
function saturationSection(o: PtoReportInput, models: readonly PtoModelRow[]): string[] {
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
        const c = o.saturation.get(`${m.name}.${v}`);
        if (!c) return '—';
        const pct = (x: number) => `${(100 * x).toFixed(x < 0.001 ? 3 : 2)} %`;
        return `${c.shrunk}/${c.columns}; ${pct(c.beyondMean)} (${pct(c.beyondMax)})`;
      };
      return `| ${m.name} | ${SATURATIONS.map(at).join(' | ')} |`;
    }),
    '',
  ];
}
