/**
 * `xbar experiment trex`: TReX Table IV for several target delays (energy, delay, area, EDAP,
 * TOPS/W, TOPS/mm², ideal and non-ideal accuracy per hardware), the baselines (weight sharing,
 * token pruning) on the same cost model, data and training, a Pareto plot of non-ideal accuracy
 * against EDAP, and the patterns compared. Searches, training and ideal accuracies are the
 * runner's results outside the grid; each non-ideal accuracy is a cell of Monte Carlo instances.
 * A rerun skips what `results.json` has, and a finished one renders alone.
 */
import { join } from 'node:path';
import { analogInstances } from '../analog/instances.js';
import { loadSpec } from '../analog/presets.js';
import type { ResolvedSpec } from '../analog/resolve.js';
import type { CostTotals } from '../cost/cost.js';
import { sliceData } from '../eval/data.js';
import { evaluate, runOn } from '../eval/evaluate.js';
import { modelCost } from '../methods/trex/cost.js';
import type { TrexData } from '../methods/trex/data.js';
import { variantConfig } from '../methods/trex/derive.js';
import { noiseAwareFinetune } from '../methods/trex/finetune.js';
import {
  type BriefTraining,
  type FinetuneSettings,
  reuseDelays,
  type SearchState,
  slug,
  trainCandidate,
  trexSearch,
} from '../methods/trex/search.js';
import { copyProcessorFiles, loadModel, type Model } from '../models/index.js';
import type { Variants } from '../models/variants.js';
import { figure, scatterChart } from '../report/charts.js';
import type { Provider } from '../runtime/session.js';
import { Experiment } from './runner.js';

export interface Baseline {
  name: string;
  kind: 'weight sharing' | 'token pruning';
  variants: Variants;
}

export interface ExperimentOptions {
  model: Model;
  modelDir: string;
  data: TrexData;
  /** Hardware of the search (delay targets) and the first table. */
  hardware: readonly string[];
  /** Target delays in ms on hardware[0]; default: the delay of each N_reuse 1..L−1. */
  targets?: readonly number[];
  baselines?: readonly Baseline[];
  brief: BriefTraining;
  finetune: FinetuneSettings | null;
  /** Where training steps and evaluations run (default: the CPU). */
  provider?: Provider;
  /** Monte Carlo instances and examples of each non-ideal evaluation. */
  repeats: number;
  hwLimit: number;
  seed: number;
  seqLen?: number;
  out: string;
  log?: (line: string) => void;
}

/** A model's cost and ideal and non-ideal accuracy per hardware. */
interface Row {
  cost: Record<string, CostTotals>;
  ideal: number;
  nonIdeal: Record<string, { mean: number; std: number }>;
}

/** A trained pattern: its held-out loss and ideal accuracy. */
interface Pattern {
  label: string;
  kind: string;
  n: number;
  loss: number;
  ideal: number;
}

interface ModelEntry {
  name: string;
  group: 'baseline' | 'TReX' | 'weight sharing' | 'token pruning';
  dir: string;
  detail: string;
  /** The architecture relative to the original (for the cost model, which needs no weights). */
  variants: Variants;
}

/** Default baselines for `layers` encoders: adjacent pairs share; tokens pruned after a third of the stack. */
function defaultBaselines(layers: number): Baseline[] {
  const pairs = Object.fromEntries(
    Array.from({ length: Math.floor(layers / 2) }, (_, k) => [2 * k + 1, 2 * k]),
  );
  const last: Record<number, number> = { [layers - 1]: layers - 2 };
  const third = Math.max(0, Math.floor(layers / 3) - 1);
  const every = Object.fromEntries(Array.from({ length: layers - 1 }, (_, i) => [i, 0.7]));
  return [
    { name: 'share pairs', kind: 'weight sharing', variants: { shareWeights: pairs } },
    { name: `share ${layers - 1}←${layers - 2}`, kind: 'weight sharing', variants: { shareWeights: last } },
    { name: `prune 0.5 after ${third}`, kind: 'token pruning', variants: { tokenKeep: { [third]: 0.5 } } },
    { name: 'prune 0.7 each', kind: 'token pruning', variants: { tokenKeep: every } },
  ];
}

/** The target delays that make Algorithm 1 pick N_reuse = 1..L−1 on `hw` (a hair above each delay). */
function defaultTargets(o: Pick<ExperimentOptions, 'model' | 'seqLen'>, hw: string): number[] {
  return reuseDelays({ ...o, hw: loadSpec(hw) })
    .slice(1)
    .map((d) => {
      const unit = 10 ** (Math.floor(Math.log10(d)) - 3); // 4 significant digits, rounded up
      return Number((Math.ceil((d * (1 + 1e-9)) / unit) * unit).toPrecision(4));
    });
}

const pct = (v: number | undefined) => (v === undefined ? '—' : (100 * v).toFixed(2));

export async function trexExperiment(o: ExperimentOptions): Promise<Experiment> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const specs = new Map<string, ResolvedSpec>(o.hardware.map((hw) => [hw, loadSpec(hw)]));
  const specOf = (hw: string) => specs.get(hw)!;
  // what the results depend on; hardware, targets, baselines and instances are cells of their own
  const settings = {
    model: o.modelDir,
    data: { eval: o.data.eval.name, train: o.data.train.name, heldOut: o.data.heldOut.name },
    brief: o.brief,
    finetune: o.finetune,
    hwLimit: o.hwLimit,
    seed: o.seed,
    ...(o.seqLen === undefined ? {} : { seqLen: o.seqLen }),
  };
  const exp = new Experiment(o.out, 'trex', settings);
  const hw0 = o.hardware[0]!;
  const targets = o.targets ?? defaultTargets(o, hw0);
  const patternsDir = join(o.out, 'patterns');
  const on = runOn({ provider: o.provider });

  // 1. the searches (one per target; patterns are trained once and shared)
  const models: ModelEntry[] = [
    { name: 'baseline', group: 'baseline', dir: o.modelDir, detail: 'original', variants: {} },
  ];
  for (const target of targets) {
    const state = await exp.once(`search|${target}`, async (): Promise<SearchState> => {
      log(`— search for ${target} ms on ${hw0}`);
      return trexSearch({
        model: o.model,
        modelDir: o.modelDir,
        train: o.data.train,
        heldOut: o.data.heldOut,
        hw: specOf(hw0),
        targetDelayMs: target,
        ...(o.seqLen === undefined ? {} : { seqLen: o.seqLen }),
        brief: o.brief,
        finetune: o.finetune,
        ...(o.provider ? { provider: o.provider } : {}),
        out: join(o.out, 'search', String(target)),
        patternsDir,
        log,
      });
    });
    const winner = state.candidates.find((c) => c.label === state.winner);
    models.push({
      name: `TReX-D-${target}`,
      group: 'TReX',
      dir: state.result!,
      detail: `N_reuse ${state.choice.nReuse}: ${state.winner ?? 'none'}`,
      variants: winner ? { reuse: winner.reuse } : {},
    });
  }
  // 2. the baselines, trained as the patterns are
  for (const b of o.baselines ?? defaultBaselines(o.model.config.layers)) {
    const dir = join(o.out, 'baselines', slug(b.name));
    await exp.once(`train|${b.name}`, async () => {
      log(`— baseline ${b.name}`);
      return {
        loss: (await trainCandidate(o.model, o.modelDir, b.variants, dir, { ...o.data, brief: o.brief, log }))
          .loss,
      };
    });
    models.push({
      name: b.name,
      group: b.kind,
      dir,
      detail: JSON.stringify(b.variants),
      variants: b.variants,
    });
  }
  // with noise-aware fine-tuning on, every model but the TReX winners (fine-tuned by their
  // search) gets the same fine-tuning, so that the comparison is between like and like
  if (o.finetune) {
    for (const m of models.filter((x) => x.group !== 'TReX')) {
      const dir = join(o.out, 'finetuned', slug(m.name));
      await exp.once(`finetune|${m.name}`, async () => {
        log(`— noise-aware fine-tuning of ${m.name} on ${hw0}`);
        const model = m.dir === o.modelDir ? loadModel(o.modelDir) : loadModel(m.dir);
        await noiseAwareFinetune(model, o.data.train, specOf(hw0), { ...o.finetune!, out: dir, log });
        copyProcessorFiles(o.modelDir, dir);
        return { dir };
      });
      m.dir = dir;
    }
  }

  // 3. cost and accuracy of every model
  const hwEval = sliceData(o.data.eval, 0, o.hwLimit);
  const rows: Record<string, Row> = {};
  for (const m of models) {
    // weights are loaded only for cells still to compute: a finished results.json renders alone
    let loaded: Model | undefined;
    const model = () => (loaded ??= m.dir === o.modelDir ? o.model : loadModel(m.dir));
    const config = variantConfig(o.model.config, m.variants);
    const costs = Object.fromEntries(
      o.hardware.map((hw) => [
        hw,
        modelCost(config, specOf(hw), o.seqLen === undefined ? {} : { seqLen: o.seqLen }).totals,
      ]),
    );
    const ideal = await exp.once(
      `ideal|${m.name}`,
      async () => (await evaluate(model(), o.data.eval, { ...on, label: `${m.name} ideal` })).value,
    );
    const nonIdeal: Record<string, { mean: number; std: number }> = {};
    for (const hw of o.hardware) {
      nonIdeal[hw] = await exp.cell(
        `nonideal|${m.name}|${hw}`,
        { model: m.name, hw },
        o.repeats,
        o.seed,
        async (seed) => {
          const matmuls = await analogInstances(model(), specOf(hw))(seed);
          return { value: (await evaluate(model(), hwEval, { ...on, matmuls, fresh: true })).value };
        },
      );
    }
    rows[m.name] = { cost: costs, ideal, nonIdeal };
  }

  // 4. the patterns compared (every pattern any search trained)
  const patterns: Pattern[] = [];
  for (const target of targets) {
    const st = exp.record.extra[`search|${target}`] as SearchState;
    for (const c of st.candidates) {
      if (patterns.some((p) => p.label === c.label) || c.loss === undefined) continue;
      const ideal = await exp.once(
        `pattern|${c.label}`,
        async () => (await evaluate(loadModel(c.dir), o.data.eval, on)).value,
      );
      patterns.push({ label: c.label, kind: c.kind, n: c.encoders.length, loss: c.loss, ideal });
    }
  }

  await writeReport(exp, o, models, rows, patterns);
  return exp;
}

async function writeReport(
  exp: Experiment,
  o: ExperimentOptions,
  models: ModelEntry[],
  rows: Record<string, Row>,
  patterns: Pattern[],
): Promise<void> {
  const lines: string[] = [`# TReX on ${o.modelDir}`, ''];
  lines.push(
    `Data: ${o.data.eval.name} (ideal), first ${Math.min(o.hwLimit, o.data.eval.size)} of it on hardware, ` +
      `${o.repeats} instance(s) from seed ${o.seed}; brief training on ${o.data.train.name}, ` +
      `${o.brief.epochs} epoch(s), losses on ${o.data.heldOut.name}; noise-aware fine-tuning ${o.finetune ? 'on' : 'off'}.`,
    '',
  );
  for (const hw of o.hardware) {
    const base = rows['baseline']!.cost[hw]!;
    lines.push(`## ${hw}`, '');
    const head = [
      'model',
      'detail',
      'energy mJ',
      'delay ms',
      'area mm²',
      'EDAP',
      'EDAP ↓',
      'TOPS/W',
      'TOPS/mm²',
      'acc ideal %',
      'acc non-ideal %',
    ];
    const body = models.map((m) => {
      const r = rows[m.name]!;
      const c = r.cost[hw]!;
      const ni = r.nonIdeal[hw]!;
      return [
        m.name,
        m.detail,
        c.energyMJ.toPrecision(3),
        c.delayMs.toPrecision(3),
        c.areaMm2.toPrecision(4),
        c.edap.toPrecision(4),
        `${(base.edap / c.edap).toFixed(2)}×`,
        c.topsPerW.toPrecision(4),
        c.topsPerMm2.toPrecision(3),
        pct(r.ideal),
        `${pct(ni.mean)} ± ${pct(ni.std)}`,
      ];
    });
    lines.push(markdownTable(head, body), '');
  }
  lines.push(
    '## Patterns',
    '',
    markdownTable(
      ['pattern', 'kind', 'N_reuse', 'held-out loss', 'acc ideal %'],
      patterns.map((p) => [p.label, p.kind, String(p.n), p.loss.toFixed(4), pct(p.ideal)]),
    ),
    '',
  );
  const kinds = ['strided', 'continuous', 'pyramid'];
  const byN = [...new Set(patterns.map((p) => p.n))].sort();
  lines.push('Best ideal accuracy per kind and N_reuse (— : the kind does not fit this many encoders):', '');
  lines.push(
    markdownTable(
      ['N_reuse', ...kinds],
      byN.map((n) => [
        String(n),
        ...kinds.map((k) => {
          const v = patterns.filter((p) => p.n === n && p.kind === k).map((p) => p.ideal);
          return v.length ? pct(Math.max(...v)) : '—';
        }),
      ]),
    ),
    '',
  );
  exp.write('results.md', `${lines.join('\n')}\n`);
  console.log(lines.join('\n'));

  if (patterns.length) {
    const chart = scatterChart({
      title: 'patterns: ideal accuracy after brief training',
      xTitle: 'N_reuse',
      yTitle: 'accuracy (%)',
      points: patterns.map((p) => ({
        series: p.kind,
        label: p.label.replace(/^\w+ /, ''),
        x: p.n,
        y: 100 * p.ideal,
      })),
    });
    await exp.figure('patterns', figure([[chart]]));
  }
  for (const hw of o.hardware) {
    const chart = scatterChart({
      title: `non-ideal accuracy vs EDAP on ${hw}`,
      xTitle: 'EDAP (mJ·ms·mm², log scale)',
      yTitle: 'accuracy (%)',
      logX: true,
      points: models.map((m) => ({
        series: m.group,
        label: m.name,
        x: rows[m.name]!.cost[hw]!.edap,
        y: 100 * rows[m.name]!.nonIdeal[hw]!.mean,
      })),
    });
    await exp.figure(`pareto-${hw}`, figure([[chart]]));
  }
}

function markdownTable(head: string[], body: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...body.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}
