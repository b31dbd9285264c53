/** The `xbar` command line. Each command lives in its own module and registers here. */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { OPS, type OpName } from '../graph/ops.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export const program = new Command('xbar')
  .description('Transformers on analog in-memory-computing crossbars: accuracy, cost, and remedies')
  .version(pkg.version);

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

await program.parseAsync(process.argv);
