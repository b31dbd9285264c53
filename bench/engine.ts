/**
 * Engine benchmark: a DeiT-S-sized encoder stack built with the graph IR, against a single
 * large ONNX Runtime MatMul measured in the same run.
 *   node dist/bench/engine.js [--batch 16] [--layers 12] [--provider cpu|webgpu] [--reps 3]
 */
import { grad } from '../src/graph/autodiff.js';
import { hostArray } from '../src/graph/ndarray.js';
import { input, type Tensor } from '../src/graph/tensor.js';
import {
  digital,
  type EncoderConfig,
  encoder,
  encoderLayerMacs,
  randomLayerWeights,
} from '../src/models/encoder.js';
import { compile, type Provider } from '../src/runtime/session.js';
import { Rng } from '../src/util/math.js';
import { benchArgs, fmtRow, matmulBaseline, median, timeIt } from './util.js';

const args = benchArgs(import.meta.url, {
  batch: { type: 'string', default: '16' },
  layers: { type: 'string', default: '12' },
  provider: { type: 'string', default: 'cpu' },
  reps: { type: 'string', default: '3' },
  matmul: { type: 'string', default: '2048' },
  skip: { type: 'string', default: '' },
});
const B = Number(args.batch);
const L = Number(args.layers);
const reps = Number(args.reps);
const provider = args.provider as Provider;
const T = 197;
const cfg: EncoderConfig = {
  hidden: 384,
  heads: 6,
  ffn: 1536,
  layerNormEps: 1e-6,
  act: 'gelu',
  preNorm: true,
};
const rng = new Rng(0);
const randn = (shape: number[]) =>
  hostArray('float32', shape, rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1))));

console.log(
  `# engine benchmark: ${provider}, DeiT-S encoder stack (D=384, H=6, F=1536, T=${T}), batch ${B}, ${L} layers`,
);

// 1. the baseline: one large MatMul
const n = Number(args.matmul);
const { seconds: mmTime, gflops: mmGflops } = await matmulBaseline(provider, n);
console.log(
  fmtRow('single MatMul', `${n}³`, `${(mmTime * 1e3).toFixed(1)} ms`, `${mmGflops.toFixed(1)} GFLOP/s`),
);

// 2. build + lower + session creation
const weights = Array.from({ length: L }, (_, i) => randomLayerWeights(cfg, `layer.${i}`, rng));
const x = input('x', [B, T, cfg.hidden]);
const t0 = performance.now();
const y = encoder(digital, x, weights, cfg);
const fwd = await compile({ y }, { provider, bakeParams: true, cache: false });
const buildS = (performance.now() - t0) / 1e3;
console.log(
  fmtRow(
    'build+lower+session',
    `${L} layers`,
    `${buildS.toFixed(2)} s`,
    buildS < 2 ? 'ok (< 2 s)' : 'SLOW (target < 2 s)',
  ),
);

// 3. forward
const flops = 2 * B * L * encoderLayerMacs(cfg, T);
const feeds = { x: randn([B, T, cfg.hidden]) };
const fwdTime = median(await timeIt(() => fwd.run(feeds), reps, 1));
const fwdGflops = flops / fwdTime / 1e9;
const ratio = fwdGflops / mmGflops;
console.log(
  fmtRow(
    'forward (baked)',
    `${(flops / 1e9).toFixed(1)} GFLOP`,
    `${(fwdTime * 1e3).toFixed(0)} ms`,
    `${fwdGflops.toFixed(1)} GFLOP/s = ${(100 * ratio).toFixed(0)}% of MatMul ${ratio >= 0.6 ? 'ok (≥ 60%)' : 'LOW (target ≥ 60%)'}`,
  ),
);
console.log(fmtRow('', '', '', `${(B / fwdTime).toFixed(1)} images/s`));
if (provider !== 'cpu') {
  const cpu = await compile({ y }, { bakeParams: true });
  const [a, b] = [
    (await fwd.run(feeds))['y']!.data as Float32Array,
    (await cpu.run(feeds))['y']!.data as Float32Array,
  ];
  let err = 0;
  for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i]! - b[i]!));
  console.log(fmtRow(`${provider} vs cpu`, '', '', `max |Δ| = ${err.toExponential(2)}`));
}

if (!args.skip.includes('backward')) {
  // 4. forward + backward with params fed (a training step's graph)
  const params = weights.flatMap((w) =>
    Object.values(w).flatMap((d: { weight: Tensor; bias?: Tensor }) =>
      d.bias ? [d.weight, d.bias] : [d.weight],
    ),
  );
  const fed = await compile({ y }, { provider });
  const fedTime = median(await timeIt(() => fed.run(feeds), reps, 1));
  const loss = y.mul(y).mean();
  const grads = grad(loss, params);
  const step = await compile(
    { loss, ...Object.fromEntries(grads.map((g, k) => [`g${k}`, g])) },
    { provider },
  );
  const stepTime = median(await timeIt(() => step.run(feeds), reps, 1));
  const r = stepTime / fedTime;
  console.log(
    fmtRow(
      'forward (params fed)',
      '',
      `${(fedTime * 1e3).toFixed(0)} ms`,
      `${(flops / fedTime / 1e9).toFixed(1)} GFLOP/s`,
    ),
  );
  console.log(
    fmtRow(
      'forward + backward',
      `${grads.length} grads`,
      `${(stepTime * 1e3).toFixed(0)} ms`,
      `${r.toFixed(2)}× forward ${r <= 3.5 ? 'ok (≤ 3.5×)' : 'HIGH (target ≤ 3.5×)'}`,
    ),
  );
}
