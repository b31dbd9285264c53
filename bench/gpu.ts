/**
 * The GPU figures: DeiT-S (random weights) at --batch, fp32, through the WebGPU runtime —
 * images/s of the ideal model, `pcm-aihwkit` and `rram-clipformer` (one Monte Carlo instance
 * each, programmed once; images uploaded and logits read back in every forward) — against
 * PyTorch's DeiT-S (bench/torch_encoder.py --model deit-s, fp32, TF32 off, tensors on the GPU)
 * on the same GPU, measured in the same run; and the projected time of a ClipFormer Table II on
 * DeiT-S (9 cells × 10 instances × 50,000 images = 4.5 M image-forwards, 90 instances
 * programmed) from the measured `rram-clipformer` rate. Each preset runs in its own process, so
 * that its GPU memory is its own.
 *   node dist/bench/gpu.js [--batch 64] [--presets ideal,pcm-aihwkit,rram-clipformer] [--reps 5] [--no-torch] [--python python3] [--torch-reps 50] [--max-tensor-mb 1024] [--branches both,lazy]
 *   node dist/bench/gpu.js --one rram-clipformer [--batch 64] [--reps 5]   (one preset, JSON)
 * GPU memory of other sizes at batch 64, without PyTorch:
 *   node dist/bench/gpu.js --model deit-b --presets rram-clipformer,pcm-aihwkit --no-torch --reps 1
 *   node dist/bench/gpu.js --model bert-large --tokens 128 --presets rram-clipformer --no-torch --reps 1
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AnalogModel } from '../src/analog/analog-model.js';
import { loadSpec } from '../src/analog/presets.js';
import { Predictor } from '../src/eval/predict.js';
import { hostArray } from '../src/graph/ndarray.js';
import { MODEL_SIZES, randomModel } from '../src/models/index.js';
import type { VitConfig } from '../src/models/vit.js';
import { gpuDispatches, gpuMemory, gpuProfile } from '../src/runtime/webgpu/executor.js';
import { Rng } from '../src/util/math.js';
import { gpuDevice, releaseGpu } from '../test/helpers/webgpu.js';
import { benchArgs, median, timeIt } from './util.js';

const args = benchArgs(import.meta.url, {
  batch: { type: 'string', default: '64' },
  /** A built-in size (MODEL_SIZES): the PyTorch baseline exists for deit-s only. */
  model: { type: 'string', default: 'deit-s' },
  /** Tokens per sentence for a text model. */
  tokens: { type: 'string', default: '128' },
  presets: { type: 'string', default: 'ideal,pcm-aihwkit,rram-clipformer' },
  reps: { type: 'string', default: '5' },
  'no-torch': { type: 'boolean', default: false },
  python: { type: 'string', default: 'python3' },
  'torch-reps': { type: 'string', default: '50' },
  /** The Predictor's largest tensor per run (a batch whose graph needs more runs in pieces). */
  'max-tensor-mb': { type: 'string', default: '1024' },
  one: { type: 'string' },
  /** Time each kernel (timestamp queries) and print where a forward's GPU time goes, per preset. */
  profile: { type: 'boolean', default: false },
  /**
   * How a `cond` runs its branches, each a row of its own: `lazy` (only the taken one; the
   * runtime's default) and/or `both` (both computed, then selected; $XBAR_GPU_BRANCHES=both).
   */
  branches: { type: 'string', default: 'lazy' },
});
const batch = Number(args.batch);
const reps = Number(args.reps);
if (!(Number.isInteger(batch) && batch >= 1 && Number.isInteger(reps) && reps >= 1))
  throw new RangeError(`--batch ${args.batch}, --reps ${args.reps}: use whole numbers ≥ 1`);
const cfg = MODEL_SIZES[args.model];
if (!cfg) throw new RangeError(`--model ${args.model}: use one of ${Object.keys(MODEL_SIZES).join(', ')}`);
const tokens = Number(args.tokens);
if (!(Number.isInteger(tokens) && tokens >= 2))
  throw new RangeError(`--tokens ${args.tokens}: use a whole number ≥ 2`);
const isDeitS = args.model === 'deit-s';
/** A ClipFormer Table II on DeiT-S: 9 cells × 10 instances, each over the 50,000 ImageNet validation images. */
const TABLE_II = { instances: 90, forwards: 90 * 50_000 };
const TARGETS = { ideal: 0.4, 'pcm-aihwkit': 0.3, rramImagesPerSecond: 50, tableHours: 24 };

interface One {
  hw: string;
  /** Programming, graph building, compiling and the first forward. */
  setupSeconds: number;
  /** Time per batch with batches streamed as `xbar eval` runs them (the next submitted before this one is read back). */
  seconds: number;
  /** Median forward of a batch run alone (submitted, then read back, before the next). */
  aloneSeconds: number;
  /** The runtime's peak GPU bytes (its buffers for values; gpuMemory). */
  gpuBytes: number;
  /** nvidia-smi's memory in use grown over the run (Dawn's context and staging too), where it runs. */
  smiBytes: number | null;
  /** Dispatches per forward: issued, and those that ran (a branch not taken issues its kernels empty). */
  dispatches: { issued: number; ran: number };
}

/** GPU memory in use now, by nvidia-smi (null where there is none): all processes, first GPU. */
function nvidiaSmiUsedBytes(): number | null {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=memory.used', '--format=csv,noheader,nounits'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return Number(out.trim().split('\n')[0]) * 2 ** 20;
  } catch {
    return null;
  }
}

/** A batch of random images or token ids for the model. */
function inputs() {
  const rng = new Rng(2);
  if (cfg!.family === 'vit') {
    const v = cfg as VitConfig;
    const size = batch * v.channels * v.imageSize ** 2;
    return {
      pixel_values: hostArray(
        'float32',
        [batch, v.channels, v.imageSize, v.imageSize],
        rng.fillNormal(new Float32Array(size)),
      ),
    };
  }
  const ids = Int32Array.from({ length: batch * tokens }, () => Math.floor(rng.uniform() * cfg!.vocabSize));
  return { input_ids: hostArray('int32', [batch, tokens], ids) };
}

/** One preset (`ideal`: no crossbars) in this process: setup, forward time and GPU memory, as JSON. */
async function runOne(hw: string): Promise<void> {
  const usedBefore = nvidiaSmiUsedBytes();
  const model = randomModel(cfg, 1);
  const x = inputs();
  const maxTensorBytes = Number(args['max-tensor-mb']) * 2 ** 20;
  const t0 = performance.now();
  const predictor =
    hw === 'ideal'
      ? new Predictor(model, { provider: 'webgpu', maxTensorBytes })
      : // as `xbar eval` runs an instance: private sessions, programmed once
        new Predictor(model, {
          provider: 'webgpu',
          matmuls: new AnalogModel(loadSpec(hw, [], model), 0).matmuls(),
          fresh: true,
          maxTensorBytes,
        });
  await predictor.logits(x, 0);
  const setupSeconds = (performance.now() - t0) / 1e3;
  // each forward a new batch of the data set (its samples' noise is their own)
  let next = 1;
  const aloneSeconds = median(await timeIt(() => predictor.logits(x, batch * next++), reps, 0));
  if (args.profile) {
    // the timed forwards ran with their dispatches in passes of their own (XBAR_GPU_PROFILE)
    const rows = gpuProfile();
    const total = rows.reduce((t, r) => t + r.ms, 0);
    console.log(
      `# ${hw}: GPU time per forward by kernel (op, output shape), of ${(total / (reps + 1)).toFixed(2)} ms`,
    );
    for (const r of rows.slice(0, 25))
      console.log(
        `${r.label.padEnd(48)} ${String(r.count / (reps + 1)).padStart(5)}×  ${(r.ms / (reps + 1)).toFixed(3).padStart(8)} ms  ${((100 * r.ms) / total).toFixed(1).padStart(5)} %`,
      );
  }
  // batches streamed as evaluate() runs them: two in flight, one pipeline fill in `streamed`
  const streamed = Math.max(reps, 6);
  const t1 = performance.now();
  let previous = predictor.logits(x, batch * next++);
  for (let k = 1; k < streamed; k++) {
    const current = predictor.logits(x, batch * next++);
    await previous;
    previous = current;
  }
  await previous;
  const seconds = (performance.now() - t1) / 1e3 / streamed;
  const peak = gpuMemory().peakBytes;
  const usedAfter = nvidiaSmiUsedBytes();
  // one more forward, its dispatches counted (the count reads the dispatch arguments back)
  const profiled = process.env['XBAR_GPU_PROFILE'];
  process.env['XBAR_GPU_PROFILE'] = '1';
  const before = gpuDispatches();
  await predictor.logits(x, batch * next++);
  const after = gpuDispatches();
  if (profiled === undefined) delete process.env['XBAR_GPU_PROFILE'];
  else process.env['XBAR_GPU_PROFILE'] = profiled;
  const one: One = {
    hw,
    setupSeconds,
    seconds,
    aloneSeconds,
    gpuBytes: peak,
    smiBytes: usedBefore !== null && usedAfter !== null ? usedAfter - usedBefore : null,
    dispatches: { issued: after.encoded - before.encoded, ran: after.ran - before.ran },
  };
  console.log(JSON.stringify(one));
}

/** PyTorch's DeiT-S on this GPU (null, with the reason printed, where it does not run). */
function torchFigure(): { device: string; imagesPerSecond: number; peakBytes: number; torch: string } | null {
  const script = fileURLToPath(new URL('../../bench/torch_encoder.py', import.meta.url));
  try {
    const out = execFileSync(
      args.python,
      [script, '--model', 'deit-s', '--batch', String(batch), '--reps', args['torch-reps'], '--json'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    return JSON.parse(out.trim().split('\n').pop()!);
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    const why = (err.stderr || err.message).trim().split('\n').pop();
    console.log(`PyTorch not measured (${args.python} bench/torch_encoder.py: ${why})`);
    return null;
  }
}

/** One preset in a child process (its memory, GPU memory included, is its own); null where it fails. */
function child(hw: string, branches: string): One | { hw: string; error: string } {
  const self = fileURLToPath(import.meta.url);
  try {
    const out = execFileSync(
      process.execPath,
      [
        self,
        '--one',
        hw,
        '--batch',
        String(batch),
        '--reps',
        String(reps),
        '--max-tensor-mb',
        args['max-tensor-mb'],
        '--model',
        args.model,
        '--tokens',
        args.tokens,
        ...(args.profile ? ['--profile'] : []),
      ],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        maxBuffer: 1 << 26,
        env: {
          ...process.env,
          XBAR_GPU_BRANCHES: branches,
          ...(args.profile ? { XBAR_GPU_PROFILE: '1' } : {}),
        },
      },
    );
    const lines = out.trim().split('\n');
    // a child's kernel profile, printed at once (a run cut short keeps what it measured)
    if (args.profile) for (const l of lines.slice(0, -1)) console.log(l);
    return JSON.parse(lines.pop()!);
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    const lines = (err.stderr || err.message).trim().split('\n');
    return { hw, error: lines.find((l) => /Error|error:/.test(l)) ?? lines.pop() ?? 'failed' };
  }
}

/** 3 significant digits, whole numbers from 100. */
const num = (x: number) => (x >= 100 ? x.toFixed(0) : x.toPrecision(3));
const gb = (b: number | null) => (b === null ? '-' : `${(b / 1e9).toFixed(2)} GB`);
const cell = (s: string, w: number) => (w < 0 ? s.padStart(-w) : s.padEnd(w));
const W = [36, -10, -10, -9, -11, 22, -20, 14, -12];
const row = (...cells: string[]) => cells.map((c, i) => cell(c, W[i]!)).join('  ');
const verdict = (ok: boolean, target: string) => `${ok ? 'ok' : 'LOW'} (${target})`;

if (args.one) {
  await runOne(args.one);
} else {
  const gpu = await gpuDevice();
  const adapter = 'skip' in gpu ? gpu.skip : gpu.name;
  if (!('skip' in gpu)) releaseGpu(gpu.device);
  console.log(
    `# GPU figures: ${args.model} (random weights), batch ${batch}${cfg.family === 'vit' ? '' : ` × ${tokens} tokens`}, fp32; xbar through WebGPU on ${adapter}`,
  );
  // PyTorch's script builds DeiT-S only
  const torch = args['no-torch'] || !isDeitS ? null : torchFigure();
  if (torch)
    console.log(
      `# PyTorch ${torch.torch} on ${torch.device}, fp32 (TF32 off), the same model from pixels on the GPU`,
    );
  console.log(
    row(
      'forward',
      'images/s',
      'ms/batch',
      'alone ms',
      'of PyTorch',
      'target',
      'GPU memory',
      'setup',
      'dispatches',
    ),
  );
  if (torch)
    console.log(
      row(
        'PyTorch (ideal)',
        num(torch.imagesPerSecond),
        ((batch / torch.imagesPerSecond) * 1e3).toFixed(1),
        '',
        '100%',
        '',
        gb(torch.peakBytes),
        '',
      ),
    );
  let rram: One | null = null;
  const modes = args.branches.split(',').filter(Boolean);
  for (const m of modes)
    if (m !== 'lazy' && m !== 'both')
      throw new RangeError(`--branches ${args.branches}: use lazy, both or both of them`);
  for (const [hw, branches] of args.presets
    .split(',')
    .filter(Boolean)
    .flatMap((h) => modes.map((m) => [h, m] as const))) {
    const r = child(hw, branches);
    const name = `xbar ${hw}${branches === 'both' ? ' (both branches computed)' : ''}`;
    if ('error' in r) {
      console.log(row(name, '-', '-', '-', '-', '', '', '') + `  failed: ${r.error}`);
      continue;
    }
    const ips = batch / r.seconds;
    const share = torch ? ips / torch.imagesPerSecond : null;
    let target = '';
    if (hw === 'ideal' || hw === 'pcm-aihwkit') {
      const t = TARGETS[hw];
      target = share === null ? `≥ ${100 * t}% of PyTorch` : verdict(share >= t, `≥ ${100 * t}%`);
    } else if (hw === 'rram-clipformer') {
      target = verdict(ips >= TARGETS.rramImagesPerSecond, `≥ ${TARGETS.rramImagesPerSecond} images/s`);
      rram = r;
    }
    console.log(
      row(
        name,
        num(ips),
        (r.seconds * 1e3).toFixed(1),
        (r.aloneSeconds * 1e3).toFixed(1),
        share === null ? '-' : `${num(100 * share)}%`,
        target,
        `${gb(r.gpuBytes)}${r.smiBytes === null ? '' : ` (${gb(r.smiBytes)})`}`,
        `${r.setupSeconds.toFixed(1)} s`,
        `${r.dispatches.ran}/${r.dispatches.issued}`,
      ),
    );
  }
  if (rram && isDeitS) {
    const forwards = TABLE_II.forwards / (batch / rram.seconds) / 3600;
    const setups = (TABLE_II.instances * rram.setupSeconds) / 3600;
    const total = forwards + setups;
    console.log(
      `ClipFormer Table II on DeiT-S (${TABLE_II.forwards / 1e6} M image-forwards at ${num(batch / rram.seconds)} images/s, ${TABLE_II.instances} instances set up in ${rram.setupSeconds.toFixed(1)} s each): ${total.toFixed(1)} h (${forwards.toFixed(1)} h forwards + ${setups.toFixed(1)} h setup) ${verdict(total <= TARGETS.tableHours, `≤ ${TARGETS.tableHours} h, goal 8 h`)}`,
    );
  }
  console.log(
    `GPU memory: xbar's buffers for values at their peak (gpuMemory), in brackets nvidia-smi's memory in use grown over the run; PyTorch: torch.cuda.max_memory_allocated. Images/s and ms/batch: batches streamed as xbar eval runs them (the next submitted before this one is read back); alone ms: one batch submitted and read back before the next. Setup: programming, building, compiling and the first forward. Dispatches: per forward, those that ran of those issued (a cond's branch not taken issues its kernels with no workgroups).`,
  );
}
