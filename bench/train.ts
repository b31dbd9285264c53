/**
 * Training-step throughput (forward + backward + AdamW) of the shipped ViT's architecture on
 * Fashion-MNIST-sized inputs, against one large MatMul measured in the same run. FLOPs of a
 * step are counted as 3 × the forward's matmul FLOPs (the backward does two products per one).
 *   node dist/bench/train.js [--batch 128] [--steps 10]
 */
import { fileURLToPath } from 'node:url';
import { grad } from '../src/graph/autodiff.js';
import { hostArray } from '../src/graph/ndarray.js';
import { crossEntropy } from '../src/graph/nn.js';
import { input } from '../src/graph/tensor.js';
import { encoderLayerMacs } from '../src/models/encoder.js';
import { loadModelConfig, randomModel } from '../src/models/index.js';
import type { VitConfig } from '../src/models/vit.js';
import { compile } from '../src/runtime/session.js';
import { AdamW } from '../src/train/adamw.js';
import { Rng } from '../src/util/math.js';
import { benchArgs, fmtRow, matmulBaseline, median } from './util.js';

const args = benchArgs(import.meta.url, {
  batch: { type: 'string', default: '128' },
  steps: { type: 'string', default: '10' },
});
const b = Number(args.batch);
const cfg = loadModelConfig(fileURLToPath(new URL('../../models/vit-fmnist', import.meta.url))) as VitConfig;
const model = randomModel(cfg, 0);
const params = model.params();
const g = model.graph({ batch: b });
const labels = input('labels', [b], 'int32');
const loss = crossEntropy(g.logits, labels, 0.1);
const grads = grad(loss, params);
const step = await compile({ loss, ...Object.fromEntries(grads.map((t, k) => [`g${k}`, t])) });
const opt = new AdamW(params, { lr: 1e-3 });
const rng = new Rng(1);
const x = { pixel_values: hostArray('float32', [b, 1, 28, 28], rng.fillNormal(new Float32Array(b * 784))) };
const { feeds } = model.feeds(x);
feeds['labels'] = hostArray(
  'int32',
  [b],
  Int32Array.from({ length: b }, () => Math.floor(rng.uniform() * 10)),
);

const mm = await matmulBaseline('cpu');
const times: number[] = [];
for (let s = 0; s <= Number(args.steps); s++) {
  const t = performance.now();
  const out = await step.run({ pixel_values: feeds['pixel_values']!, labels: feeds['labels']! });
  opt.step(params.map((_, k) => out[`g${k}`]!));
  if (s > 0) times.push((performance.now() - t) / 1e3); // the first step compiles kernels
}
const sec = median(times);
const tokens = (cfg.imageSize / cfg.patchSize) ** 2 + 1;
const fwdFlops =
  2 *
  b *
  (cfg.layers * encoderLayerMacs(cfg, tokens) + tokens * cfg.patchSize ** 2 * cfg.channels * cfg.hidden);
const gflops = (3 * fwdFlops) / sec / 1e9;
console.log(
  `# training step: vit-fmnist architecture (${cfg.layers} layers, d ${cfg.hidden}, ${tokens} tokens), batch ${b}`,
);
console.log(
  fmtRow('single MatMul', '2048³', `${(mm.seconds * 1e3).toFixed(1)} ms`, `${mm.gflops.toFixed(1)} GFLOP/s`),
);
console.log(
  fmtRow(
    'fwd + bwd + AdamW',
    `batch ${b}`,
    `${(sec * 1e3).toFixed(1)} ms`,
    `${(b / sec).toFixed(0)} images/s, ${gflops.toFixed(1)} GFLOP/s = ${((100 * gflops) / mm.gflops).toFixed(0)}% of MatMul`,
  ),
);
