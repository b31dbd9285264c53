/**
 * Ideal forward of the standard models with random weights, against one large MatMul
 * measured in the same run: DeiT-S at batch 32, BERT-base at sequence length 128.
 *   node dist/bench/models.js [--reps 3] [--batch-vit 32] [--batch-bert 32]
 */
import { predictLogits } from '../src/eval/predict.js';
import { hostArray } from '../src/graph/ndarray.js';
import { encoderLayerMacs } from '../src/models/encoder.js';
import { MODEL_SIZES, randomModel } from '../src/models/index.js';
import { Rng } from '../src/util/math.js';
import { benchArgs, fmtRow, matmulBaseline, median, timeIt } from './util.js';

const args = benchArgs(import.meta.url, {
  reps: { type: 'string', default: '3' },
  'batch-vit': { type: 'string', default: '32' },
  'batch-bert': { type: 'string', default: '32' },
});
const reps = Number(args.reps);
const rng = new Rng(0);

const mm = await matmulBaseline('cpu');
console.log(
  fmtRow('single MatMul', '2048³', `${(mm.seconds * 1e3).toFixed(1)} ms`, `${mm.gflops.toFixed(1)} GFLOP/s`),
);

for (const [name, batch] of [
  ['deit-s', Number(args['batch-vit'])],
  ['bert-base', Number(args['batch-bert'])],
] as const) {
  const cfg = MODEL_SIZES[name]!;
  const model = randomModel(cfg, 1);
  let tokens: number;
  let inputs: Parameters<typeof predictLogits>[1];
  if (cfg.family === 'vit') {
    tokens = (cfg.imageSize / cfg.patchSize) ** 2 + 2;
    const n = batch * cfg.channels * cfg.imageSize ** 2;
    inputs = {
      pixel_values: hostArray(
        'float32',
        [batch, cfg.channels, cfg.imageSize, cfg.imageSize],
        rng.fillNormal(new Float32Array(n)),
      ),
    };
  } else {
    tokens = 128;
    const ids = Int32Array.from({ length: batch * tokens }, () => Math.floor(rng.uniform() * cfg.vocabSize));
    inputs = { input_ids: hostArray('int32', [batch, tokens], ids) };
  }
  // encoder matmuls plus the patch embedding / classifier heads
  const head =
    cfg.family === 'vit' ? tokens * cfg.channels * cfg.patchSize ** 2 * cfg.hidden : cfg.hidden * cfg.hidden;
  const flops = 2 * batch * (cfg.layers * encoderLayerMacs(cfg, tokens) + head);
  await predictLogits(model, inputs); // compile
  const t = median(await timeIt(() => predictLogits(model, inputs), reps, 1));
  const gflops = flops / t / 1e9;
  const ratio = gflops / mm.gflops;
  const what = cfg.family === 'vit' ? `batch ${batch}` : `batch ${batch} × 128 tokens`;
  console.log(
    fmtRow(
      `${name} forward`,
      what,
      `${(t * 1e3).toFixed(0)} ms`,
      `${gflops.toFixed(1)} GFLOP/s = ${(100 * ratio).toFixed(0)}% of MatMul ${ratio >= 0.5 ? 'ok (≥ 50%)' : 'LOW (target ≥ 50%)'}`,
    ),
  );
}
