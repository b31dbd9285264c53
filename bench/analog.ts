/**
 * Analog-model benchmark on a DeiT-S-sized model (random weights, batch 32):
 *  - pcm-aihwkit forward time against the ideal model's (target ≤ 1.5×): each in its own
 *    process, and both in one process with their forwards alternating;
 *  - rram-clipformer (64×64, 4 bit slices × 7 input bit planes, 6-bit ADC, K/V on crossbars):
 *    effective GFLOP/s on the expanded work against one large MatMul measured in the same
 *    process just before and after (target ≥ 50 %);
 *  - peak memory of each (target < 3 GB), each measured in its own process.
 * Both ratios are taken within one process because a machine's speed can drift by tens of %
 * over minutes, and a baseline from another moment skews them.
 *   node dist/bench/analog.js [--batch 32] [--reps 2]
 *   node dist/bench/analog.js --one pcm-aihwkit [--set field=value ...]   (one preset, JSON)
 *   node dist/bench/analog.js --pair pcm-aihwkit   (ideal and the preset alternating, JSON)
 *   node dist/bench/analog.js --kernel   (the native kernel alone on one ffnIn-sized product)
 *   node dist/bench/analog.js --noise --targets x86-64-v4,x86-64-v3,wasm   (the kernels' noise
 *     generator alone, one thread)
 *   node dist/bench/analog.js --rram-only --targets x86-64-v4,x86-64-v3   (the rram-clipformer
 *     lines only; --targets: the native targets to run, each as XBAR_KERNEL picks it; default:
 *     the one the loader picks)
 *   node dist/bench/analog.js --alternate --batch 1 --targets x86-64-v4,x86-64-v3   (their
 *     rram-clipformer forwards alternating in one process)
 *   node dist/bench/analog.js --programming   (programming DeiT-S: in worker threads vs as the graph is built)
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AnalogModel } from '../src/analog/analog-model.js';
import { loadSpec } from '../src/analog/presets.js';
import { splitDim } from '../src/analog/program.js';
import { type Crossbar, isPerfect, sliceCount } from '../src/analog/spec.js';
import { Predictor } from '../src/eval/predict.js';
import { type HostArray, hostArray } from '../src/graph/ndarray.js';
import { MODEL_SIZES, randomModel } from '../src/models/index.js';
import type { VitConfig } from '../src/models/vit.js';
import {
  kernelInfo,
  type NativeKernels,
  nativeKernels,
  nativeThreads,
  useNativeKernels,
} from '../src/runtime/native.js';
import { Rng } from '../src/util/math.js';
import { benchArgs, fmtRow, matmulBaseline, median, timeIt } from './util.js';

const args = benchArgs(import.meta.url, {
  batch: { type: 'string', default: '32' },
  reps: { type: 'string', default: '2' },
  'rram-batch': { type: 'string', default: '1' },
  /** A Python with aihwkit 1.0.0 installed: its forward is measured in the same run. */
  aihwkit: { type: 'string' },
  one: { type: 'string' },
  /** The ideal model and this preset alternating in one process (JSON). */
  pair: { type: 'string' },
  kernel: { type: 'boolean', default: false },
  /** The kernels' noise generator alone (fillNoise), one thread. */
  noise: { type: 'boolean', default: false },
  /** Kernels to measure (comma-separated, as XBAR_KERNEL names them: native targets, wasm); default: the native one loaded. */
  targets: { type: 'string' },
  /** rram-clipformer with each of --targets, forwards alternating in one process. */
  alternate: { type: 'boolean', default: false },
  /** Only the rram-clipformer lines (native kernel and ONNX graphs). */
  'rram-only': { type: 'boolean', default: false },
  programming: { type: 'boolean', default: false },
  /** Spec overrides for --one, e.g. --set adc.boundManagement.kind=none. */
  set: { type: 'string', multiple: true, default: [] },
});
const batch = Number(args.batch);
const reps = Number(args.reps);
const cfg = MODEL_SIZES['deit-s'] as VitConfig;
const T = (cfg.imageSize / cfg.patchSize) ** 2 + 2;
/** The native targets to measure: --targets, else the one the loader picks (none: []). */
const targets = (): string[] => {
  if (args.targets) return args.targets.split(',');
  const k = kernelInfo();
  return k.kind === 'native' ? [k.target] : k.kind === 'wasm' ? ['wasm'] : [];
};

/** MACs the crossbars actually perform: padded tiles × input planes × weight slices. */
function expandedMacs(hw: string, batch: number): number {
  const spec = loadSpec(hw);
  const planes = (x: Crossbar) =>
    x.dac.kind === 'uniform' && x.dac.mode === 'bitSerial' ? x.dac.bits - 1 : 1;
  const product = (x: Crossbar, n: number, inDim: number, out: number) => {
    const r = splitDim(inDim, x.tile.rows, x.tile.split);
    const rows = Math.max(...r.map((s) => s.size));
    return n * r.length * rows * out * planes(x) * sliceCount(x.cells);
  };
  const d = cfg.hidden;
  const n = batch * T;
  let macs = 0;
  for (const [name, inDim, out] of [
    ['query', d, d],
    ['key', d, d],
    ['value', d, d],
    ['output', d, d],
    ['ffnIn', d, cfg.ffn],
    ['ffnOut', cfg.ffn, d],
  ] as const) {
    const x = spec.crossbar(`layer.0.${name}`);
    macs += cfg.layers * (isPerfect(x) ? n * inDim * out : product(x, n, inDim, out));
  }
  const a = spec.attention;
  const e = d / cfg.heads;
  const heads = batch * cfg.heads;
  const tPad = (x: Crossbar) => Math.ceil(T / x.tile.cols) * x.tile.cols;
  macs +=
    cfg.layers *
    (a
      ? heads * (product(a, T, e, tPad(a)) + product(a, T, T, Math.ceil(e / a.tile.cols) * a.tile.cols))
      : 2 * heads * T * T * e);
  return macs;
}

/** DeiT-S with random weights on `hw` (`ideal-fp`: no crossbars) and a random image batch. */
function modelOn(hw: string): { predictor: Predictor; x: Record<string, HostArray> } {
  const model = randomModel(cfg, 1);
  const rng = new Rng(2);
  const x = {
    pixel_values: hostArray(
      'float32',
      [batch, 3, 224, 224],
      rng.fillNormal(new Float32Array(batch * 3 * 224 * 224)),
    ),
  };
  const predictor =
    hw === 'ideal-fp'
      ? new Predictor(model)
      : // as `xbar eval` runs an instance: private sessions, the programmed weights embedded
        new Predictor(model, {
          matmuls: new AnalogModel(loadSpec(hw, args.set, model), 0).matmuls(),
          fresh: true,
        });
  return { predictor, x };
}

/**
 * One preset in its own process (its peak memory is its own): the forward's median time, and
 * the MatMul baseline measured in this process just before and after it (a machine's speed can
 * drift by tens of % over minutes; a baseline from another moment skews the ratio).
 */
async function runOne(hw: string): Promise<void> {
  const before = await matmulBaseline('cpu');
  const { predictor, x } = modelOn(hw);
  await predictor.logits(x);
  const t = median(await timeIt(() => predictor.logits(x), reps, 0));
  const rssGB = process.resourceUsage().maxRSS / 1024 ** 2;
  const after = await matmulBaseline('cpu');
  const k = kernelInfo();
  const kernel = k.kind === 'native' ? k.target : k.kind;
  console.log(
    JSON.stringify({ hw, kernel, seconds: t, rssGB, matmulGflops: (before.gflops + after.gflops) / 2 }),
  );
}

/**
 * The ideal model and `hw` in one process, their forwards alternating: both see the machine at
 * the same moments, so their ratio does not take in the drift between two processes.
 */
async function runPair(hw: string): Promise<void> {
  const ideal = modelOn('ideal-fp');
  const analog = modelOn(hw);
  await ideal.predictor.logits(ideal.x);
  await analog.predictor.logits(analog.x);
  const ti: number[] = [];
  const ta: number[] = [];
  for (let r = 0; r < Math.max(reps, 3); r++) {
    ti.push(...(await timeIt(() => ideal.predictor.logits(ideal.x), 1, 0)));
    ta.push(...(await timeIt(() => analog.predictor.logits(analog.x), 1, 0)));
  }
  console.log(JSON.stringify({ hw, ideal: median(ti), seconds: median(ta), ratio: median(ta) / median(ti) }));
}

/**
 * rram-clipformer at --batch with each native target of --targets, their forwards alternating
 * in one process with a MatMul between rounds: all see the machine at the same moments (a
 * loaded machine drifts by more than the targets differ). Prints each target's median and its
 * ratio to the median MatMul.
 */
async function alternateTargets(): Promise<void> {
  const models = [];
  for (const target of targets()) {
    process.env['XBAR_KERNEL'] = target;
    useNativeKernels(true);
    const m = modelOn('rram-clipformer');
    // the first forward builds the graphs, which take the kernel loaded now
    await m.predictor.logits(m.x);
    models.push({ target, ...m, times: [] as number[] });
  }
  const mm: number[] = [];
  for (let r = 0; r < Math.max(reps, 3); r++) {
    mm.push((await matmulBaseline('cpu')).gflops);
    for (const m of models) m.times.push(...(await timeIt(() => m.predictor.logits(m.x), 1, 0)));
  }
  mm.push((await matmulBaseline('cpu')).gflops);
  const matmul = median(mm);
  console.log(fmtRow('single MatMul', '2048³', '', `${matmul.toFixed(1)} GFLOP/s (median of ${mm.length})`));
  for (const m of models) {
    const t = median(m.times);
    const g = (2 * expandedMacs('rram-clipformer', batch)) / t / 1e9;
    // the WebAssembly fallback's target is half the native kernels'
    const target = m.target === 'wasm' ? 25 : 50;
    const share = (100 * g) / matmul;
    console.log(
      fmtRow(
        `rram-clipformer forward (${m.target === 'wasm' ? 'WebAssembly' : `native ${m.target}`})`,
        `batch ${batch}`,
        `${t.toFixed(2)} s`,
        `${g.toFixed(1)} GFLOP/s expanded = ${share.toFixed(0)}% of MatMul ${share >= target ? `ok (≥ ${target}%)` : `LOW (target ≥ ${target}%)`}; ${(median(models[0]!.times) / t).toFixed(2)}× the speed of ${models[0]!.target}`,
      ),
    );
  }
}

/** The same-run baseline: one 2048³ MatMul, printed as a row. */
async function printedMatmulBaseline(): Promise<{ seconds: number; gflops: number }> {
  const mm = await matmulBaseline('cpu');
  console.log(
    fmtRow(
      'single MatMul',
      '2048³',
      `${(mm.seconds * 1e3).toFixed(1)} ms`,
      `${mm.gflops.toFixed(1)} GFLOP/s`,
    ),
  );
  return mm;
}

/** Each of --targets' kernels (null, said, where one does not load). */
function targetKernels(): { target: string; k: NativeKernels }[] | null {
  const kernels = targets().map((target) => {
    process.env['XBAR_KERNEL'] = target;
    useNativeKernels(true);
    return { target, k: nativeKernels() };
  });
  if (kernels.length === 0 || kernels.some((k) => k.k === null)) {
    console.log(`native kernel not loaded: ${JSON.stringify(kernelInfo())}`);
    return null;
  }
  return kernels as { target: string; k: NativeKernels }[];
}

/**
 * The kernels' noise generator alone (native/philox.h): each target's fillNoise of 2000 rows ×
 * 1536 values on one thread, their calls alternating; the CPU time of the fastest of 15, so that
 * other jobs on the machine count less.
 */
function noiseAlone(): void {
  const kernels = targetKernels();
  if (!kernels) return;
  const [rows, columns] = [2000, 1536];
  const out = new Float32Array(rows * columns);
  const best = kernels.map(() => Infinity);
  for (let r = 0; r < 15; r++)
    for (const [i, { k }] of kernels.entries()) {
      const start = process.cpuUsage();
      k.fillNoise({
        out,
        outer: 1,
        along: rows,
        perSample: rows,
        inner: 1,
        columns,
        seed: 42,
        std: 1,
        firstSample: 0,
        threads: 1,
      });
      const used = process.cpuUsage(start);
      best[i] = Math.min(best[i]!, (used.user + used.system) / 1e6);
    }
  for (const [i, { target }] of kernels.entries())
    console.log(
      fmtRow(
        `noise generator ${target}`,
        '1 thread, CPU time',
        `${((best[i]! / (rows * columns)) * 1e9).toFixed(2)} ns/value`,
        `${((rows * columns) / best[i]! / 1e6).toFixed(0)} M values/s`,
      ),
    );
}

/**
 * The native kernel alone on the ffnIn product of one DeiT-S image (384 → 1536 on 64×64 tiles,
 * 7 input planes × 4 slices, read noise, 6-bit ADC; Gaussian inputs; noisy and levelled cells),
 * for each target of --targets (their calls alternating), against one large MatMul, all
 * measured in this run.
 */
async function kernelAlone(): Promise<void> {
  const kernels = targetKernels();
  if (!kernels) return;
  const [R, N, rows, C, J, K] = [6, T, 64, 1536, 4, 7];
  const rng = new Rng(5);
  const codes = rng
    .fillNormal(new Float32Array(R * N * rows))
    .map((v) => Math.max(-127, Math.min(127, Math.round(40 * v))));
  // conductances with programming noise, and cells holding one of 7 levels (2-bit digits ±0..3
  // on a differential pair, G_MIN/ΔG = 0.01)
  const noisy = Float32Array.from({ length: J * R * rows * C }, () => rng.uniform() - 0.5);
  const digits = Int8Array.from({ length: noisy.length }, () => Math.floor(rng.uniform() * 7) - 3);
  const cells = {
    'programmed with noise': { weights: noisy, squares: noisy.map((w) => w * w) },
    levelled: {
      weights: Float32Array.from(digits, (d) => d / 3),
      squares: Float32Array.from(digits, (d) => (0.01 + Math.abs(d) / 3) ** 2 + 0.01 ** 2),
    },
  };
  const args = {
    codes,
    planes: K,
    weightScale: 0.48,
    squareScale: 6e-4,
    // read noise drawn in the kernel, one seed per plane, as in the model
    noiseSeeds: Uint32Array.from({ length: K }, (_, p) => p + 1),
    coef: Float32Array.from({ length: K * J }, (_, i) => 2 ** -i),
    levels: 31,
    B: 1,
    Bw: 1,
    R,
    N,
    rows,
    C,
    J,
  };
  const flops = 2 * R * rows * N * C * J * K;
  const mm = await printedMatmulBaseline();
  for (const [kind, w] of Object.entries(cells))
    for (const threads of [1, nativeThreads()]) {
      const times = kernels.map(() => [] as number[]);
      for (let r = 0; r < 7; r++)
        for (const [i, { k }] of kernels.entries())
          times[i]!.push(
            median(
              await timeIt(async () => k!.crossbarProducts({ ...args, ...w, threads }), 1, r === 0 ? 1 : 0),
            ),
          );
      for (const [i, { target }] of kernels.entries()) {
        const t = median(times[i]!);
        const g = flops / t / 1e9;
        console.log(
          fmtRow(
            `${target === 'wasm' ? 'WebAssembly kernel' : `native kernel ${target}`}, ffnIn product, ${kind}`,
            `${threads} thread(s)`,
            `${(t * 1e3).toFixed(1)} ms`,
            `${g.toFixed(1)} GFLOP/s expanded = ${((100 * g) / mm.gflops).toFixed(0)}% of MatMul`,
          ),
        );
      }
    }
}

/**
 * Programming one Monte Carlo instance of DeiT-S: as the graph reaches each layer (one core)
 * against `AnalogModel.prepare` (worker threads), alternating in one process (that both give the
 * same cells is test/analog/program-workers.test.ts).
 */
async function programmingTimes(): Promise<void> {
  const model = randomModel(cfg, 1);
  for (const hw of ['pcm-aihwkit', 'rram-clipformer']) {
    const times = { built: [] as number[], prepared: [] as number[] };
    for (let r = 0; r < reps; r++) {
      const prepared = new AnalogModel(loadSpec(hw, [], model), r);
      let t0 = performance.now();
      await prepared.prepare(model);
      times.prepared.push((performance.now() - t0) / 1e3);
      t0 = performance.now();
      model.graph({ batch: 1 }, new AnalogModel(loadSpec(hw, [], model), r).matmuls());
      times.built.push((performance.now() - t0) / 1e3);
    }
    const [b, p] = [median(times.built), median(times.prepared)];
    console.log(
      fmtRow(
        `programming DeiT-S, ${hw}`,
        `${nativeThreads()} thread(s)`,
        `${p.toFixed(2)} s`,
        `${(b / p).toFixed(2)}× faster than as the graph is built (${b.toFixed(2)} s)`,
      ),
    );
  }
}

if (args.kernel) {
  await kernelAlone();
} else if (args.noise) {
  noiseAlone();
} else if (args.programming) {
  await programmingTimes();
} else if (args.one) {
  await runOne(args.one);
} else if (args.pair) {
  await runPair(args.pair);
} else if (args.alternate) {
  await alternateTargets();
} else {
  console.log(`# analog benchmark: DeiT-S (random weights), batch ${batch}, ${T} tokens`);
  await printedMatmulBaseline();
  if (!args['rram-only']) pcmLines();
  rramLines();
}

/** This benchmark in a child process (`--one` or `--pair`), its last line of JSON. */
function child<T>(
  mode: '--one' | '--pair',
  hw: string,
  b = batch,
  env: Record<string, string> = {},
  r = reps,
): T {
  const self = fileURLToPath(import.meta.url);
  return JSON.parse(
    execFileSync(process.execPath, [self, mode, hw, '--batch', String(b), '--reps', String(r)], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
    })
      .trim()
      .split('\n')
      .pop()!,
  ) as T;
}

/** One preset forward in its own process: seconds, peak memory, the MatMul rate around it, the kernel. */
function run(hw: string, b = batch, env: Record<string, string> = {}, r = reps) {
  return child<{ seconds: number; rssGB: number; matmulGflops: number; kernel: string }>(
    '--one',
    hw,
    b,
    env,
    r,
  );
}

/** pcm-aihwkit against the ideal model (own processes, and alternating), and aihwkit's tiles. */
function pcmLines(): void {
  const ideal = run('ideal-fp');
  console.log(
    fmtRow(
      'ideal (FP) forward',
      `batch ${batch}`,
      `${ideal.seconds.toFixed(2)} s`,
      `peak ${ideal.rssGB.toFixed(2)} GB`,
    ),
  );
  const pcm = run('pcm-aihwkit');
  const r = pcm.seconds / ideal.seconds;
  const target = (ratio: number) => (ratio <= 1.5 ? 'ok (≤ 1.5×)' : 'SLOW (target ≤ 1.5×)');
  console.log(
    fmtRow(
      'pcm-aihwkit forward',
      `batch ${batch}`,
      `${pcm.seconds.toFixed(2)} s`,
      `${r.toFixed(2)}× ideal (own processes) ${target(r)}, peak ${pcm.rssGB.toFixed(2)} GB ${pcm.rssGB < 3 ? 'ok' : 'HIGH (target < 3 GB)'}`,
    ),
  );
  const pair = child<{ ideal: number; seconds: number; ratio: number }>('--pair', 'pcm-aihwkit');
  console.log(
    fmtRow(
      '  alternating with ideal',
      `batch ${batch}`,
      `${pair.seconds.toFixed(2)} s vs ${pair.ideal.toFixed(2)} s`,
      `${pair.ratio.toFixed(2)}× ideal (one process, forwards alternating) ${target(pair.ratio)}`,
    ),
  );
  if (args.aihwkit) {
    // the same layer stack through aihwkit's C++ and torch tiles, measured in this run
    const script = fileURLToPath(new URL('../../scripts/reference/aihwkit_bench.py', import.meta.url));
    const out = execFileSync(
      args.aihwkit,
      [script, '--batch', String(batch), '--backends', 'aihwkit-cpp,aihwkit-torch'],
      {
        encoding: 'utf8',
        maxBuffer: 1 << 26,
      },
    );
    for (const m of out.matchAll(/^(aihwkit-\w+) forward batch \d+: ([\d.]+) s/gm)) {
      const ratio = Number(m[2]) / pcm.seconds;
      console.log(
        fmtRow(
          `${m[1]} (same stack)`,
          `batch ${batch}`,
          `${Number(m[2]).toFixed(2)} s`,
          `xbar pcm-aihwkit is ${ratio.toFixed(2)}× faster ${ratio >= 3 ? 'ok (≥ 3×)' : '(target ≥ 3×)'}`,
        ),
      );
    }
  }
}

/** rram-clipformer with the native kernel (each target) and with the ONNX graphs, against the MatMul. */
function rramLines(): void {
  const rb = Number(args['rram-batch']);
  if (!(Number.isInteger(rb) && rb >= 1))
    throw new RangeError(`--rram-batch ${args['rram-batch']}: use a whole number ≥ 1`);
  // with the native kernel where it is built (npm run build:native), and with ONNX graphs only
  const rramLine = (label: string, env: Record<string, string>, rb: number, r = reps, target = 0.5) => {
    const rram = run('rram-clipformer', rb, env, r);
    if ((env['XBAR_KERNEL'] ?? rram.kernel) !== rram.kernel) throw new Error(`${label}: ran ${rram.kernel}`);
    const gflops = (2 * expandedMacs('rram-clipformer', rb)) / rram.seconds / 1e9;
    // against the MatMul measured in the same process, just before and after
    const e = gflops / rram.matmulGflops;
    console.log(
      fmtRow(
        label,
        `batch ${rb}`,
        `${rram.seconds.toFixed(2)} s`,
        `${gflops.toFixed(1)} GFLOP/s expanded = ${(100 * e).toFixed(0)}% of its MatMul (${rram.matmulGflops.toFixed(0)}) ${e >= target ? `ok (≥ ${100 * target}%)` : `LOW (target ≥ ${100 * target}%)`}, peak ${rram.rssGB.toFixed(2)} GB ${rram.rssGB < 3 ? 'ok' : 'HIGH (target < 3 GB)'}`,
      ),
    );
    return rram.seconds;
  };
  const fused = targets().map((target) => {
    const env = { XBAR_KERNEL: target };
    const seconds = rramLine(`rram-clipformer forward (native ${target})`, env, rb);
    // at --batch too (the peak-memory target is for that batch); one timed forward after the
    // first, which builds the sessions (slowly)
    if (batch !== rb) rramLine(`rram-clipformer forward (native ${target})`, env, batch, 1);
    return { target, seconds };
  });
  // the fallback where no native kernel runs (target ≥ 25 %)
  const wasm = rramLine('rram-clipformer forward (WebAssembly)', { XBAR_KERNEL: 'wasm' }, rb, reps, 0.25);
  const graphs = rramLine('rram-clipformer forward (ONNX graphs)', { XBAR_NATIVE: '0' }, rb);
  if (fused.length === 0) console.log(`  (no native kernel: ${JSON.stringify(kernelInfo())})`);
  console.log(fmtRow('WebAssembly vs ONNX graphs', '', '', `${(graphs / wasm).toFixed(2)}× faster`));
  for (const f of fused)
    console.log(
      fmtRow(`native ${f.target} vs ONNX graphs`, '', '', `${(graphs / f.seconds).toFixed(2)}× faster`),
    );
}
