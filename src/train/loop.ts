/**
 * The training loop: shuffled batches → forward and backward in ONNX Runtime (params fed, so
 * updates need no recompilation) → global-norm gradient clipping → AdamW with warm-up and
 * decay → evaluation and an atomic checkpoint every epoch. Resumes from the last checkpoint.
 */
import type { EvalData } from '../eval/data.js';
import { evaluate } from '../eval/evaluate.js';
import { Predictor } from '../eval/predict.js';
import { grad } from '../graph/autodiff.js';
import type { HostArray } from '../graph/ndarray.js';
import { crossEntropy, mse } from '../graph/nn.js';
import { input } from '../graph/tensor.js';
import { digital } from '../models/encoder.js';
import type { GraphShape } from '../models/family.js';
import type { Model } from '../models/index.js';
import { compile, feedsFor, type Provider, type RunnableGraph } from '../runtime/session.js';
import { InputError } from '../util/errors.js';
import { Rng } from '../util/math.js';
import { progress } from '../util/progress.js';
import { AdamW } from './adamw.js';
import {
  hasCheckpoint,
  loadTrainerState,
  modelSignature,
  saveCheckpoint,
  type TrainerState,
} from './checkpoint.js';
import { type DistillOptions, distillationLoss, labelFeed } from './distill.js';
import { withDropout } from './dropout.js';
import type { NoiseAwareTraining } from './noise-aware.js';
import { learningRate, type ScheduleKind } from './schedule.js';

export interface TrainOptions {
  epochs: number;
  batch: number;
  lr: number;
  weightDecay?: number;
  /** Warm-up as a fraction of all steps (default 0.05). */
  warmup?: number;
  schedule?: ScheduleKind;
  labelSmoothing?: number;
  /** Clip the global gradient norm to this (0: off; default 1). */
  clipNorm?: number;
  seed?: number;
  /** Image augmentation: random shift by up to `shift` pixels, horizontal flips. */
  augment?: { shift: number; flip: boolean };
  /** Where the training step runs (default the CPU). */
  provider?: Provider;
  /**
   * Noise-aware training: the hardware whose noise the forward pass draws, with the ranges it
   * learns and the weight constraints after each step (noise-aware.ts). Default: exact products.
   */
  hardware?: NoiseAwareTraining;
  /** Peak learning rate of the learned ranges (default `lr`): they move in input units and by up to 1 for η. */
  rangeLr?: number;
  /** Hidden dropout probability (see dropout.ts; default 0). */
  dropout?: number;
  /** Distil from a teacher model: its logits join the labels in the loss (see distill.ts). */
  teacher?: DistillOptions;
  /** Checkpoint folder; training resumes from it when it holds a checkpoint of this model. */
  out: string;
  evalData?: EvalData;
  quiet?: boolean;
  log?: (line: string) => void;
}

/** Random shift (zero = the image's minimum) and horizontal flip of CHW images, in place. */
export function augmentImages(x: HostArray, a: { shift: number; flip: boolean }, rng: Rng): void {
  const [b, c, h, w] = x.shape as [number, number, number, number];
  const d = x.data as Float32Array;
  const tmp = new Float32Array(c * h * w);
  for (let i = 0; i < b; i++) {
    const img = d.subarray(i * c * h * w, (i + 1) * c * h * w);
    const dy = Math.round((2 * rng.uniform() - 1) * a.shift);
    const dx = Math.round((2 * rng.uniform() - 1) * a.shift);
    const flip = a.flip && rng.uniform() < 0.5;
    let bg = Infinity;
    for (const v of img) bg = Math.min(bg, v);
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        for (let xx = 0; xx < w; xx++) {
          const sy = y - dy;
          const sx0 = xx - dx;
          const sx = flip ? w - 1 - sx0 : sx0;
          tmp[(ch * h + y) * w + xx] =
            sy >= 0 && sy < h && sx >= 0 && sx < w ? img[(ch * h + sy) * w + sx]! : bg;
        }
      }
    }
    img.set(tmp);
  }
}

export async function train(model: Model, data: EvalData, o: TrainOptions): Promise<TrainerState> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const resuming = hasCheckpoint(o.out);
  await o.hardware?.prepare(
    model,
    data.inputs(0, Math.min(o.batch, data.size)),
    resuming ? o.out : undefined,
  );
  const weights = model.params();
  // learned ranges train beside the weights, without weight decay (they are not weights)
  const learned = o.hardware?.params() ?? [];
  const params = [...weights, ...learned];
  const opt = new AdamW(params, {
    lr: o.lr,
    weightDecay: o.weightDecay ?? 0.05,
    noDecay: (p) => p.rank < 2 || learned.includes(p),
    lrScale: (p) => (learned.includes(p) ? (o.rangeLr ?? o.lr) / o.lr : 1),
  });
  const stepsPerEpoch = Math.floor(data.size / o.batch);
  if (stepsPerEpoch < 1)
    throw new InputError(`${data.name}: ${data.size} examples are fewer than one batch of ${o.batch}`);
  const schedule = {
    kind: o.schedule ?? 'cosine',
    lr: o.lr,
    totalSteps: stepsPerEpoch * o.epochs,
    warmupSteps: Math.round((o.warmup ?? 0.05) * stepsPerEpoch * o.epochs),
  };
  let state: TrainerState = { epoch: 0, step: 0, signature: modelSignature(model), history: [] };
  if (resuming) {
    state = loadTrainerState(o.out, model, opt);
    log(`resuming from ${o.out} after epoch ${state.epoch} (step ${state.step})`);
  }

  const teacher = o.teacher ? new Predictor(o.teacher.teacher) : null;
  const graphs = new Map<string, Promise<RunnableGraph>>();
  const stepGraph = (shape: GraphShape) => {
    const key = `${shape.batch}x${shape.seqLen ?? 0}`;
    let g = graphs.get(key);
    if (!g) {
      const hw = o.hardware?.graph();
      const m = withDropout(hw?.matmuls ?? digital, o.dropout ?? 0, o.seed ?? 0);
      const mg = model.graph(shape, m);
      const labels = input('labels', [shape.batch], data.regression ? 'float32' : 'int32');
      const loss = o.teacher
        ? distillationLoss(
            mg.logits,
            labels,
            input('teacher_logits', mg.logits.shape),
            o.teacher,
            data.regression,
            o.labelSmoothing ?? 0,
          )
        : data.regression
          ? mse(mg.logits.reshape([shape.batch]), labels)
          : crossEntropy(mg.logits, labels, o.labelSmoothing ?? 0);
      const grads = grad(loss, params);
      g = compile(
        { loss, ...Object.fromEntries(grads.map((gr, k) => [`g${k}`, gr])), ...hw?.outputs },
        o.provider ? { provider: o.provider } : {},
      );
      graphs.set(key, g);
    }
    return g;
  };

  for (let epoch = state.epoch; epoch < o.epochs; epoch++) {
    const t0 = performance.now();
    const rng = new Rng((o.seed ?? 0) * 7919 + epoch);
    const order = Array.from({ length: data.size }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng.uniform() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const bar = progress(`epoch ${epoch + 1}/${o.epochs}`, stepsPerEpoch, { quiet: !!o.quiet });
    let lossSum = 0;
    for (let s = 0; s < stepsPerEpoch; s++) {
      const idx = order.slice(s * o.batch, (s + 1) * o.batch);
      const x = data.inputsAt(idx);
      if (o.augment && x.pixel_values) augmentImages(x.pixel_values, o.augment, rng);
      const { feeds, shape } = model.feeds(x);
      feeds['labels'] = labelFeed(data, idx);
      if (teacher) feeds['teacher_logits'] = await teacher.logits(x);
      const g = await stepGraph(shape);
      // the noise of step s is keyed by the samples drawn before it, so every step draws afresh
      const out = await g.run(feedsFor(g, feeds), (epoch * stepsPerEpoch + s) * o.batch);
      const loss = (out['loss']!.data as Float32Array)[0]!;
      if (!Number.isFinite(loss)) {
        throw new InputError(
          `loss became ${loss} at epoch ${epoch + 1}, step ${s + 1}; the last good checkpoint (epoch ${state.epoch}) is in ${o.out}. Try a lower --lr.`,
        );
      }
      const grads = params.map((_, k) => out[`g${k}`]!);
      o.hardware?.adjustGradients(grads.slice(weights.length), out);
      clipGlobalNorm(grads, o.clipNorm ?? 1);
      opt.step(grads, learningRate(schedule, state.step));
      o.hardware?.afterStep();
      state.step++;
      lossSum += loss;
      bar.tick();
    }
    bar.stop();
    const entry: TrainerState['history'][number] = {
      epoch: epoch + 1,
      loss: lossSum / stepsPerEpoch,
      seconds: (performance.now() - t0) / 1e3,
    };
    if (o.evalData) entry.metric = (await evaluate(model, o.evalData, { fresh: true })).value;
    state.epoch = epoch + 1;
    state.history.push(entry);
    saveCheckpoint(o.out, model, opt, state, () => o.hardware?.save(o.out));
    const metric = entry.metric === undefined ? '' : `, ${o.evalData!.metrics[0]} ${entry.metric.toFixed(4)}`;
    log(
      `epoch ${epoch + 1}/${o.epochs}: loss ${entry.loss.toFixed(4)}${metric} (${entry.seconds.toFixed(0)} s, ${((stepsPerEpoch * o.batch) / entry.seconds).toFixed(0)} examples/s)`,
    );
  }
  return state;
}

/** Scales gradients in place so their global L2 norm is at most `max` (0: no clipping). */
export function clipGlobalNorm(grads: readonly HostArray[], max: number): number {
  let sq = 0;
  for (const g of grads) for (const v of g.data as Float32Array) sq += v * v;
  const norm = Math.sqrt(sq);
  if (max > 0 && norm > max) {
    const f = max / norm;
    for (const g of grads) {
      const d = g.data as Float32Array;
      for (let i = 0; i < d.length; i++) d[i]! *= f;
    }
  }
  return norm;
}
