/** Results record paths relative to the working directory, and the command as typed. */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { openStore } from '../../src/sweep/duckdb.js';
import { typedCommand } from '../../src/util/command.js';
import { portablePath } from '../../src/util/files.js';
import { ROOT } from '../helpers/models.js';

/** Every string in a JSON value. */
const strings = (v: unknown): string[] =>
  typeof v === 'string'
    ? [v]
    : v && typeof v === 'object'
      ? Object.values(v as Record<string, unknown>).flatMap(strings)
      : [];

describe('paths in results', () => {
  it('the committed results name no absolute path', async () => {
    for (const name of readdirSync(join(ROOT, 'results'))) {
      const json = join(ROOT, 'results', name, 'results.json');
      // an experiment that runs as a sweep (the ablation, PTO) keeps its results in a store; a
      // folder made by its old runner still holds results.json until it is rerun
      const duckdb = join(ROOT, 'results', name, 'results.duckdb');
      const file = existsSync(duckdb) ? duckdb : json;
      let record: { command?: string | undefined };
      if (file === json) record = JSON.parse(readFileSync(file, 'utf8'));
      else {
        const store = await openStore(file);
        const sweep = await store.sweep();
        const rows = await store.rows();
        await store.close();
        record = {
          command: /^description: (.*(?:\n {2}.*)*)/m.exec(sweep.source)?.[1]?.replace(/\n {2}/g, ' '),
        };
        Object.assign(record, { sweep, results: rows.map((r) => r.result) });
      }
      // the system's datasets (dataset-* packages: /usr/share/datasets, the same path on every
      // machine, as `fashion-mnist:/usr/share/datasets/…` in a sweep's points) are no checkout's
      const absolute = strings(record).filter((s) =>
        /(^|[\s:=`'"])\/[^\s/]/.test(s.replace(/(^|[\s:=`'"])\/usr\/share\/datasets\//g, '$1')),
      );
      assert.deepEqual(absolute, [], file);
      if (record.command !== undefined) assert.match(record.command, /^xbar experiment /, file);
      const md = readFileSync(join(ROOT, 'results', name, 'results.md'), 'utf8');
      assert.doesNotMatch(md, /(^|[\s:=`'"(])\/(work|home|root|tmp|Users)\//m, `${name}/results.md`);
    }
  });

  it('a path inside the working directory is recorded relative to it, one outside as given', () => {
    assert.equal(portablePath(join(process.cwd(), 'data', 'x')), join('data', 'x'));
    assert.equal(portablePath('models/vit-fmnist'), join('models', 'vit-fmnist'));
    assert.equal(portablePath(process.cwd()), '.');
    assert.equal(portablePath('/usr/share/datasets/fashion-mnist'), '/usr/share/datasets/fashion-mnist');
    assert.equal(
      portablePath(resolve(process.cwd(), '..', 'elsewhere')),
      resolve(process.cwd(), '..', 'elsewhere'),
    );
  });

  it('an experiment records the command as typed, without the path to the program', () => {
    const argv = process.argv;
    process.argv = [
      '/usr/bin/node',
      join(ROOT, 'bin/xbar.js'),
      'experiment',
      'clipformer',
      '--out',
      'runs/x',
    ];
    try {
      assert.equal(typedCommand(), 'xbar experiment clipformer --out runs/x');
    } finally {
      process.argv = argv;
    }
  });
});
