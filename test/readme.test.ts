/**
 * Every command and example of README.md, run as written: a README command or example that
 * stops working fails here. The user's own files (`in.json`, `x.json`, `layer.safetensors`,
 * `config.json`, `BERT_DIR`, `GLUE/SST-2`) and the full Fashion-MNIST are replaced by small
 * stand-ins, output folders go to a temporary folder, and the slow commands get flags that only
 * shrink their work (fewer examples, instances, epochs).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { hostArray } from '../src/graph/ndarray.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { openStore } from '../src/sweep/duckdb.js';
import { XBAR } from './helpers/cli.js';
import { tinyFashionMnist } from './helpers/data.js';
import { ROOT, vitMnist } from './helpers/models.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The fenced blocks of a language, in order. */
const blocks = (lang: string): string[] =>
  [...README.matchAll(new RegExp(`^\`\`\`${lang}\\n([\\s\\S]*?)^\`\`\`$`, 'gm'))].map((m) => m[1]!);

/** The commands of the sh blocks: continuation lines joined, comments dropped. */
const commands = blocks('sh').flatMap((b) =>
  b
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line !== ''),
);

/** Commands this test does not run, and where they run instead. */
const ELSEWHERE: Record<string, string> = {
  'npm ci': 'CI (.ci/run)',
  'npm test': 'CI (.ci/run)',
  'npm run lint': 'CI (.ci/run)',
  'npx xbar demo': 'scripts/check-package.sh, from the installed package',
  'npm pack': 'scripts/check-package.sh',
  'npm install ./xbar-*.tgz': 'scripts/check-package.sh',
  'scripts/check-package.sh': 'CI (.ci/run)',
  'npm run build:web': 'test/web/app.test.ts, which builds the app the same way into a temporary folder',
  'npx xbar serve': 'test/web/serve.test.ts and test/web/app.test.ts (it serves until stopped)',
  'npm run build:native':
    'by hand after editing native/; test/runtime/prebuilds.test.ts checks its output is committed',
  'npm run build:wasm':
    'by hand after editing native/; test/runtime/wasm.test.ts checks its output is committed',
};

/** Flags appended to a command (by its subcommand) that only make its work smaller. */
function shrink(args: readonly string[]): string[] {
  const sub = args[0] === 'experiment' || args[0] === 'trex' ? `${args[0]} ${args[1]}` : args[0]!;
  const brief = ['--fraction', '0.5', '--held-out', '8', '--epochs', '1', '--batch', '16'];
  switch (sub) {
    case 'eval':
      return args.includes('--hw') ? ['--repeats', '2', '--limit', '8'] : ['--limit', '64'];
    case 'mvm':
      return ['--repeats', '2'];
    case 'train':
      return ['--epochs', '1', '--limit', '32', '--eval-limit', '16', '--batch', '16'];
    case 'trex search':
      return [...brief, '--finetune-epochs', '1'];
    case 'experiment trex':
      return [
        ...brief,
        ...['--no-finetune', '--repeats', '1', '--hw-limit', '4', '--eval-limit', '8'],
        ...['--hw', 'fefet-trex', '--targets', '0.5'],
      ];
    case 'vocab':
      return ['--size', '300'];
    default:
      return [];
  }
}

/** Commands that write an output folder when given no --out. */
const WRITES_BY_DEFAULT = new Set([
  'trex search',
  'experiment clipformer',
  'experiment pto',
  'experiment trex',
  'experiment ablation',
]);

/**
 * Experiments that keep their results in a store (OUT/results.duckdb): a committed folder of one
 * made before it ran as a sweep holds results.json alone, which it does not resume from.
 */
const SWEEP_EXPERIMENTS = new Set(['experiment clipformer', 'experiment pto', 'experiment ablation']);
const beforeItsStore = (args: readonly string[], folder: string) =>
  SWEEP_EXPERIMENTS.has(`${args[0]} ${args[1]}`) && !existsSync(join(ROOT, folder, 'results.duckdb'));

/** Flags that shrink an experiment that cannot resume its committed folder (beforeItsStore). */
const FRESH: Record<string, string[]> = {
  'experiment clipformer': [
    '--repeats',
    '1',
    '--limit',
    '8',
    '--calibration',
    '4',
    '--search-instances',
    '1',
  ],
  'experiment pto': ['--limit', '4', '--repeats', '1', '--time-repeats', '1'],
  'experiment ablation': ['--repeats', '1', '--limit', '8'],
};

/** The checkout's top-level entries and those of its runs/ folder: the test must not add any. */
const checkoutEntries = () =>
  [ROOT, join(ROOT, 'runs')]
    .flatMap((d) => (existsSync(d) ? readdirSync(d).map((e) => join(d, e)) : []))
    .sort();

interface Run {
  command: string;
  args: string[];
  /** The runs (by place) whose outputs it reads. */
  after: number[];
  status: number;
  stderr: string;
}

describe('README.md', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'xbar-readme-'));

  it('runs every xbar command as written', async () => {
    const before = checkoutEntries();
    // the user's own files, small
    writeFileSync(
      join(tmp, 'in.json'),
      JSON.stringify({ pixel_values: [[Array(28).fill(Array(28).fill(0.5))]] }),
    );
    const weight = Float32Array.from({ length: 32 }, (_, i) => Math.sin(i) / 4);
    writeSafetensors(join(tmp, 'layer.safetensors'), {
      weight: hostArray('float32', [4, 8], weight),
      bias: hostArray('float32', [4], Float32Array.of(0.1, 0, -0.1, 0.2)),
    });
    writeFileSync(join(tmp, 'x.json'), JSON.stringify({ x: [Array(8).fill(0.5), Array(8).fill(-0.25)] }));
    copyFileSync(join(vitMnist().dir, 'config.json'), join(tmp, 'config.json')); // a 1-layer ViT for 28×28 gray images
    const ownFiles = new Set(['in.json', 'x.json', 'layer.safetensors', 'config.json']);
    const fashion = tinyFashionMnist(64);
    const arg = (a: string): string => {
      if (ownFiles.has(a)) return join(tmp, a);
      if (a === 'BERT_DIR') return 'models/bert-sst2';
      return a.replace('/usr/share/datasets/fashion-mnist', fashion).replace('GLUE/SST-2', 'data/sst2-demo');
    };

    const runs: Omit<Run, 'status' | 'stderr'>[] = [];
    // committed folders whose command runs afresh (beforeItsStore): their tables are not compared
    const fresh = new Set<string>();
    // what earlier commands write, by the path the README gives: a later command reading it
    // (`xbar report STORE`) reads it from the temporary folder, after that command has ended
    const written = new Map<string, { to: string; by: number }>();
    for (const command of commands) {
      if (command in ELSEWHERE) continue;
      assert.ok(command.startsWith('npx xbar '), `a README command this test does not know: ${command}`);
      const words = command.slice('npx xbar '.length).split(/\s+/);
      const after: number[] = [];
      const args = words.map((w, i) => {
        const flag = words[i - 1];
        if (flag !== '--out' && flag !== '--output' && flag !== '--store') {
          const earlier = written.get(w);
          if (!earlier) return arg(w);
          after.push(earlier.by);
          return earlier.to;
        }
        // outputs go to the temporary folder; committed results are copied there to resume from
        const to = join(tmp, 'out', w);
        if (w.startsWith('results/') && beforeItsStore(words, w)) fresh.add(w);
        else if (w.startsWith('results/')) cpSync(join(ROOT, w), to, { recursive: true });
        written.set(w, { to, by: runs.length });
        return to;
      });
      // a command that writes a folder by default writes it to the temporary folder too
      const out =
        args.includes('--out') || !WRITES_BY_DEFAULT.has(`${args[0]} ${args[1]}`)
          ? []
          : ['--out', join(tmp, 'out', `${runs.length}`)];
      const afresh = words.some((w, i) => words[i - 1] === '--out' && fresh.has(w));
      const smaller = afresh ? FRESH[`${args[0]} ${args[1]}`]! : [];
      runs.push({ command, args: [...args, ...out, ...shrink(args), ...smaller], after });
    }
    assert.ok(runs.length >= 15, `${runs.length} commands found in the README`);

    // two at a time, each in a process of its own, from the checkout's root as the README says
    const results: Run[] = [];
    const queue = runs.map((r, i) => ({ ...r, i }));
    // each run's end, by its place: a run is started before any that reads what it writes
    const ended: Promise<Run>[] = [];
    const worker = async () => {
      for (let r = queue.shift(); r; r = queue.shift()) {
        const { args, after, i } = r;
        let finish!: (run: Run) => void;
        ended[i] = new Promise<Run>((resolve) => {
          finish = resolve;
        });
        await Promise.all(after.map((j) => ended[j]));
        const done = await new Promise<Run>((resolve) =>
          execFile(process.execPath, [XBAR, ...args], { cwd: ROOT, encoding: 'utf8' }, (e, _out, stderr) =>
            resolve({
              command: r!.command,
              args,
              after,
              status: e ? ((e as { code?: number }).code ?? 1) : 0,
              stderr,
            }),
          ),
        );
        results.push(done);
        finish(done);
      }
    };
    await Promise.all([worker(), worker()]);
    for (const r of results)
      assert.equal(r.status, 0, `${r.command}\n  ran as xbar ${r.args.join(' ')}\n${r.stderr}`);

    // the experiment commands that made the committed results find every cell done and write the same tables
    for (const name of ['clipformer', 'pto', 'ablation-rram-clipformer']) {
      if (fresh.has(`results/${name}`)) continue;
      const committed = join(ROOT, 'results', name, 'results.md');
      assert.equal(
        readFileSync(join(tmp, 'out/results', name, 'results.md'), 'utf8'),
        readFileSync(committed, 'utf8'),
      );
    }
    // the TReX experiment is a sweep: its store records the points' settings and the command
    const store = await openStore(join(tmp, 'out/runs/trex/results.duckdb'));
    const trex = JSON.stringify([await store.sweep(), await store.rows()]);
    await store.close();
    assert.ok(!trex.includes(ROOT), 'results record no path of this checkout');
    assert.ok(existsSync(join(tmp, 'out/runs/trex/results.md')));
    assert.ok(existsSync(join(tmp, 'out/runs/cost/cost.json')));
    assert.match(
      readFileSync(join(tmp, 'out/runs/adc-bits/report.md'), 'utf8'),
      /^# adc-bits\n\n6 points: 6 done\./,
    );
    assert.ok(existsSync(join(tmp, 'out/runs/adc-bits/pareto.svg')));
    assert.ok(existsSync(join(tmp, 'out/runs/vit/model.safetensors')));
    assert.deepEqual(checkoutEntries(), before, 'the commands wrote nothing into the checkout');
  });

  it('compiles and runs every TypeScript example against the built package', () => {
    const ts = blocks('ts');
    assert.ok(ts.length >= 2);
    const dir = join(tmp, 'examples');
    mkdirSync(join(dir, 'node_modules'), { recursive: true });
    symlinkSync(ROOT, join(dir, 'node_modules', 'xbar'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          typeRoots: [join(ROOT, 'node_modules/@types')],
          types: ['node'],
        },
        include: ['*.ts'],
      }),
    );
    for (const [i, code] of ts.entries()) writeFileSync(join(dir, `example-${i}.ts`), code);
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], {
      encoding: 'utf8',
    });
    for (const i of ts.keys()) {
      const out = execFileSync(process.execPath, [join(dir, `example-${i}.js`)], { encoding: 'utf8' });
      assert.notEqual(out.trim(), '', `example ${i} printed nothing`);
    }
  });
});
