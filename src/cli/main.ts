/** The `xbar` command line. Each command lives in its own module and registers here. */

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Command } from 'commander';
import { OPS, type OpName } from '../graph/ops.js';
import { GraphError } from '../graph/shape.js';
import { kernelInfo } from '../runtime/native.js';
import { lockFolder } from '../util/lock.js';
import { registerCost } from './cost.js';
import { registerDemo } from './demo.js';
import { registerEval } from './eval.js';
import { registerExperiment } from './experiment.js';
import { registerHw } from './hw.js';
import { registerMvm } from './mvm.js';
import { registerPredict } from './predict.js';
import { registerTrain } from './train.js';
import { registerTrex, registerTrexExperiment } from './trex.js';
import { registerVocab } from './vocab.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export const program = new Command('xbar')
  .description('Transformers on analog in-memory-computing crossbars: accuracy, cost, and remedies')
  // the version, and which kernel runs the crossbar products here (looked up only when asked)
  .option('-V, --version', 'output the version number and the crossbar kernel')
  .on('option:version', () => {
    const k = kernelInfo();
    const kernel =
      k.kind === 'native'
        ? `native ${k.target} (${basename(k.file)})`
        : k.kind === 'wasm'
          ? `WebAssembly (${basename(k.file)})`
          : `ONNX graphs (${k.reason})`;
    console.log(`${pkg.version}\ncrossbar kernel: ${kernel}`);
    process.exit(0);
  });

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
registerTrexExperiment(registerExperiment(program));
registerTrex(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // a user's mistake gets its message, not a stack trace (XBAR_DEBUG=1 shows it); a misused
  // graph engine is a bug, and its stack says where
  const err = e as Error;
  const stack = process.env['XBAR_DEBUG'] || err instanceof GraphError;
  console.error(stack ? err.stack : `xbar: ${err.message}`);
  process.exitCode = 1;
}
