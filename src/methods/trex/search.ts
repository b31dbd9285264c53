/**
 * The TReX search: (1) Algorithm 1 picks the smallest N_reuse whose delay meets the target
 * (cost model); (2) every uniform pattern of that N_reuse is trained briefly on a fraction of
 * the training set, distilling from the original model; (3) the pattern with the lowest
 * distillation loss on held-out training examples wins; (4) the winner is fine-tuned with
 * the hardware's noise (`finetune`, optional). Every step is recorded in `out/search.json`
 * (atomically) and patterns train into `out/patterns/<name>/`, so a rerun resumes.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ResolvedSpec } from '../../analog/resolve.js';
import type { EvalData } from '../../eval/data.js';
import type { Model } from '../../models/index.js';
import { copyProcessorFiles, loadModel } from '../../models/index.js';
import type { Provider } from '../../runtime/session.js';
import { completedEpochs, hasCheckpoint } from '../../train/checkpoint.js';
import { type DistillOptions, distillationLossOn } from '../../train/distill.js';
import { train } from '../../train/loop.js';
import { readJson, writeFileAtomic } from '../../util/files.js';
import { chooseReuseCount, type ReuseCountChoice } from './algorithm.js';
import { modelCost } from './cost.js';
import { deriveVariant } from './derive.js';
import { noiseAwareFinetune } from './finetune.js';
import { type ReusePattern, uniformPatterns } from './patterns.js';

/** Brief training of a candidate (a pattern or a baseline), with distillation. */
export interface BriefTraining {
  epochs: number;
  batch: number;
  lr: number;
  seed: number;
  /** Distillation weights (the teacher is the original model). */
  ceWeight: number;
  klWeight: number;
  temperature: number;
}

export const BRIEF_DEFAULTS: BriefTraining = {
  epochs: 1,
  batch: 64,
  lr: 5e-4,
  seed: 0,
  ceWeight: 0.5,
  klWeight: 0.5,
  temperature: 1,
};

export interface FinetuneSettings {
  epochs: number;
  lr: number;
  batch: number;
}

export interface SearchOptions {
  /** The original model (teacher and initialisation) and its folder (tokenizer, preprocessing). */
  model: Model;
  modelDir: string;
  /** Training examples for the brief training (a fraction of the training set). */
  train: EvalData;
  /** Held-out training examples the candidates' losses are compared on. */
  heldOut: EvalData;
  hw: ResolvedSpec;
  targetDelayMs: number;
  /** Text models: tokens the cost model assumes. */
  seqLen?: number;
  brief: BriefTraining;
  /** Where training steps run (default: the CPU). */
  provider?: Provider;
  /** Noise-aware fine-tuning of the winner; null skips it. */
  finetune: FinetuneSettings | null;
  out: string;
  /** Where patterns train (default `out/patterns`); searches for several targets may share it. */
  patternsDir?: string;
  log?: (line: string) => void;
}

export interface CandidateRecord {
  label: string;
  kind: string;
  encoders: number[];
  reuse: Record<number, number>;
  dir: string;
  /** Held-out distillation loss after brief training. */
  loss?: number;
}

export interface SearchState {
  targetDelayMs: number;
  hardware: string;
  choice: ReuseCountChoice;
  candidates: CandidateRecord[];
  winner?: string;
  /** The final model's folder (fine-tuned winner, or the winner when fine-tuning is off). */
  result?: string;
  finetuned?: boolean;
}

/** A folder name for a label ('strided SL=2 {1,3}' → 'strided-SL2-1-3'). */
export const slug = (label: string): string =>
  label
    .replace(/=/g, '')
    .replace(/[^A-Za-z0-9.]+/g, '-')
    .replace(/^-+|-+$/g, '');

/** Delay (ms) with N_reuse = 0..L−1, the last N encoders reusing (encoders are identical). */
export function reuseDelays(o: Pick<SearchOptions, 'model' | 'hw' | 'seqLen'>): number[] {
  const c = o.model.config;
  return Array.from({ length: c.layers }, (_, n) => {
    const reuse = Object.fromEntries(
      Array.from({ length: n }, (_, i) => [c.layers - n + i, c.layers - n + i - 1]),
    );
    const variant = { ...c, variants: n ? { reuse } : {} };
    return modelCost(variant, o.hw, o.seqLen === undefined ? {} : { seqLen: o.seqLen }).totals.delayMs;
  });
}

/** Step 1: Algorithm 1 on the cost model. */
export function reuseCountFor(o: Pick<SearchOptions, 'model' | 'hw' | 'targetDelayMs' | 'seqLen'>) {
  const delays = reuseDelays(o);
  return chooseReuseCount((n) => delays[n]!, o.model.config.layers, o.targetDelayMs);
}

/**
 * Trains `variant` of the teacher briefly into `dir` (resuming there) and returns its
 * held-out distillation loss.
 */
export async function trainCandidate(
  teacher: Model,
  modelDir: string,
  variant: Parameters<typeof deriveVariant>[1],
  dir: string,
  o: Pick<SearchOptions, 'train' | 'heldOut' | 'brief' | 'log' | 'provider'>,
): Promise<{ model: Model; loss: number }> {
  const b = o.brief;
  const distill: DistillOptions = {
    teacher,
    ceWeight: b.ceWeight,
    klWeight: b.klWeight,
    temperature: b.temperature,
  };
  const model = hasCheckpoint(dir) ? loadModel(dir) : deriveVariant(teacher, variant);
  if (completedEpochs(dir) < b.epochs) {
    await train(model, o.train, {
      epochs: b.epochs,
      batch: b.batch,
      lr: b.lr,
      seed: b.seed,
      out: dir,
      teacher: distill,
      ...(o.provider ? { provider: o.provider } : {}),
      ...(o.log ? { log: o.log } : {}),
    });
    copyProcessorFiles(modelDir, dir);
  }
  return { model, loss: await distillationLossOn(model, o.heldOut, distill) };
}

/** Runs (or resumes) the search; returns its state with the final model's folder. */
export async function trexSearch(o: SearchOptions): Promise<SearchState> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const file = join(o.out, 'search.json');
  const choice = reuseCountFor(o);
  let state: SearchState = {
    targetDelayMs: o.targetDelayMs,
    hardware: o.hw.spec.name,
    choice,
    candidates: uniformPatterns(o.model.config.layers, choice.nReuse).map((p: ReusePattern) => ({
      label: p.label,
      kind: p.kind,
      encoders: p.encoders,
      reuse: p.reuse,
      dir: join(o.patternsDir ?? join(o.out, 'patterns'), slug(p.label)),
    })),
  };
  if (existsSync(file)) {
    const old = readJson(file) as SearchState;
    if (old.targetDelayMs === o.targetDelayMs && old.hardware === o.hw.spec.name)
      state = { ...state, ...old, choice };
    else log(`${file} belongs to another target or hardware; starting over`);
  }
  const save = () => writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`);
  log(
    `Algorithm 1: N_reuse = ${choice.nReuse} (delay ${choice.delayMs.toPrecision(4)} ms ≤ target ${o.targetDelayMs} ms; ` +
      `tried ${choice.tried.map((t) => `${t.nReuse}: ${t.delayMs.toPrecision(4)}`).join(', ')})`,
  );
  if (choice.nReuse === 0) {
    state.result = o.modelDir;
    save();
    log('the original model meets the target: nothing to reuse');
    return state;
  }
  log(`${state.candidates.length} uniform pattern(s): ${state.candidates.map((c) => c.label).join('; ')}`);
  for (const [k, cand] of state.candidates.entries()) {
    if (cand.loss !== undefined) continue;
    log(`pattern ${k + 1}/${state.candidates.length}: ${cand.label} (encoders ${cand.encoders.join(', ')})`);
    cand.loss = (await trainCandidate(o.model, o.modelDir, { reuse: cand.reuse }, cand.dir, o)).loss;
    log(`pattern ${cand.label}: held-out loss ${cand.loss.toFixed(4)}`);
    save();
  }
  const winner = state.candidates.reduce((a, b) => (b.loss! < a.loss! ? b : a));
  state.winner = winner.label;
  if (o.finetune && !state.finetuned) {
    const dir = join(o.out, 'finetuned');
    log(`noise-aware fine-tuning of ${winner.label} on ${o.hw.spec.name}`);
    await noiseAwareFinetune(loadModel(winner.dir), o.train, o.hw, {
      ...o.finetune,
      out: dir,
      log,
      ...(o.provider ? { provider: o.provider } : {}),
    });
    copyProcessorFiles(o.modelDir, dir);
    state.result = dir;
    state.finetuned = true;
  } else if (!o.finetune) {
    state.result = winner.dir;
    state.finetuned = false;
  }
  save();
  log(`winner: ${winner.label} (loss ${winner.loss!.toFixed(4)}); model in ${state.result}`);
  return state;
}
