/**
 * Knowledge distillation from a teacher model (TReX trains its reuse patterns this way):
 * loss = w_ce·CE(student, labels) + w_kl·T²·KL(softmax(teacher/T) ‖ softmax(student/T)),
 * KL averaged over the batch; for a regression head, mean squared errors to both targets.
 * @see Hinton et al., "Distilling the Knowledge in a Neural Network", arXiv:1503.02531
 */
import type { EvalData } from '../eval/data.js';
import { Predictor } from '../eval/predict.js';
import { type HostArray, hostArray } from '../graph/ndarray.js';
import { crossEntropy, mse } from '../graph/nn.js';
import { input, type Tensor } from '../graph/tensor.js';
import type { Model } from '../models/index.js';
import { compile, feedsFor } from '../runtime/session.js';

export interface DistillOptions {
  teacher: Model;
  /** Weight of the cross-entropy with the labels (default 0.5). */
  ceWeight?: number;
  /** Weight of the KL divergence to the teacher (default 0.5). */
  klWeight?: number;
  /** Softmax temperature T of both distributions (default 1). */
  temperature?: number;
}

/** The distillation loss. student, teacher: (B, C) logits; labels: (B) int32 (float32 for regression). */
export function distillationLoss(
  student: Tensor,
  labels: Tensor,
  teacher: Tensor,
  o: Omit<DistillOptions, 'teacher'>,
  regression = false,
  smoothing = 0,
): Tensor {
  const ce = o.ceWeight ?? 0.5;
  const kl = o.klWeight ?? 0.5;
  const t = o.temperature ?? 1;
  const [b] = student.shape as [number, number];
  if (regression) {
    const y = student.reshape([b]);
    return mse(y, labels)
      .mul(ce)
      .add(mse(y, teacher.reshape([b])).mul(kl));
  }
  const logPs = student.mul(1 / t).logSoftmax(-1);
  const logPt = teacher
    .detach()
    .mul(1 / t)
    .logSoftmax(-1);
  const divergence = logPt.exp().mul(logPt.sub(logPs)).sum().div(b);
  return crossEntropy(student, labels, smoothing)
    .mul(ce)
    .add(divergence.mul(kl * t * t));
}

/** Labels of `idx` as the loss graph takes them. */
export function labelFeed(data: EvalData, idx: readonly number[]): HostArray {
  const targets = idx.map((i) => data.targets[i]!);
  return data.regression
    ? hostArray('float32', [idx.length], Float32Array.from(targets))
    : hostArray('int32', [idx.length], Int32Array.from(targets));
}

/** Mean distillation loss of `model` over `data` (forward only), in batches of `batch`. */
export async function distillationLossOn(
  model: Model,
  data: EvalData,
  o: DistillOptions,
  batch = 64,
): Promise<number> {
  const teacher = new Predictor(o.teacher);
  const graphs = new Map<string, ReturnType<typeof compile>>();
  let sum = 0;
  for (let s = 0; s < data.size; s += batch) {
    const idx = Array.from({ length: Math.min(batch, data.size - s) }, (_, k) => s + k);
    const x = data.inputsAt(idx);
    const { feeds, shape } = model.feeds(x);
    const key = `${shape.batch}x${shape.seqLen ?? 0}`;
    let g = graphs.get(key);
    if (!g) {
      const mg = model.graph(shape);
      const labels = input('labels', [shape.batch], data.regression ? 'float32' : 'int32');
      const tl = input('teacher_logits', mg.logits.shape);
      g = compile({ loss: distillationLoss(mg.logits, labels, tl, o, data.regression) });
      graphs.set(key, g);
    }
    const session = await g;
    feeds['labels'] = labelFeed(data, idx);
    feeds['teacher_logits'] = await teacher.logits(x);
    const out = await session.run(feedsFor(session, feeds));
    sum += (out['loss']!.data as Float32Array)[0]! * shape.batch;
  }
  return sum / data.size;
}
