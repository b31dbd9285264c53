/** The `xbar` command line. Each command lives in its own module and registers here. */

import { basename } from 'node:path';
import { Command } from 'commander';
import { OPS, type OpName } from '../graph/ops.js';
import { GraphError } from '../graph/shape.js';
import { kernelInfo } from '../runtime/native.js';
import { describeAdapter } from '../runtime/webgpu/device.js';
import { lockFolder } from '../util/lock.js';
import { XBAR_VERSION } from '../util/version.js';
import { registerCost } from './cost.js';
import { registerDemo } from './demo.js';
import { registerEval } from './eval.js';
import { registerExperiment } from './experiment.js';
import { registerHw } from './hw.js';
import { registerKvOutliers } from './kv-outliers.js';
import { registerMvm } from './mvm.js';
import { registerPredict } from './predict.js';
import { registerReport } from './report.js';
import { registerServe } from './serve.js';
import { registerSweep } from './sweep.js';
import { registerTrain } from './train.js';
import { registerTrex, registerTrexExperiment } from './trex.js';
import { registerVocab } from './vocab.js';
import { registerWorker } from './worker.js';

export const program = new Command('xbar')
  .description('Transformers on analog in-memory-computing crossbars: accuracy, cost, and remedies')
  // printed before parsing (printVersion): finding the GPU takes a moment, and parsing goes on
  .option('-V, --version', 'output the version number, the crossbar kernel and the GPU');

/** The version, which kernel runs the crossbar products here and which GPU `--provider webgpu` would use. */
async function printVersion(): Promise<void> {
  const k = kernelInfo();
  const kernel =
    k.kind === 'native'
      ? `native ${k.target} (${basename(k.file)})`
      : k.kind === 'wasm'
        ? `WebAssembly (${basename(k.file)})`
        : `ONNX graphs (${k.reason})`;
  const gpu = await describeAdapter().then(
    (a) =>
      `${[a.vendor, a.device || a.architecture, a.description].filter(Boolean).join(' ')} (${a.backend})`,
    (e: Error) => `none (${e.message})`,
  );
  console.log(`${XBAR_VERSION}\ncrossbar kernel: ${kernel}\ngpu: ${gpu}`);
}

program
  .command('ops')
  .description('list the primitive ops of the graph engine')
  .action(() => {
    for (const op of Object.keys(OPS) as OpName[]) {
      const d = OPS[op];
      const kind = 'leaf' in d ? 'leaf' : d.vjp ? 'differentiable' : 'no gradient';
      console.log(`${op.padEnd(14)} ${kind}`);
    }
  });

// a command that writes an output folder holds it while it runs (see util/lock.ts)
program.hook('preAction', (_, command) => {
  const out = command.opts()['out'];
  if (typeof out === 'string') lockFolder(out, '--out');
});

registerPredict(program);
registerEval(program);
registerHw(program);
registerMvm(program);
registerTrain(program);
registerCost(program);
registerDemo(program);
registerVocab(program);
registerKvOutliers(program);
registerTrexExperiment(registerExperiment(program));
registerTrex(program);
registerSweep(program);
registerWorker(program);
registerReport(program);
registerServe(program);

try {
  const [first] = process.argv.slice(2);
  if (first === '-V' || first === '--version') {
    await printVersion();
    process.exit(0);
  }
  await program.parseAsync(process.argv);
} catch (e) {
  // a user's mistake gets its message, not a stack trace (XBAR_DEBUG=1 shows it); a misused
  // graph engine is a bug, and its stack says where
  const err = e as Error;
  const stack = process.env['XBAR_DEBUG'] || err instanceof GraphError;
  console.error(stack ? err.stack : `xbar: ${err.message}`);
  process.exitCode = 1;
}
