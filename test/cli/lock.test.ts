/** Output folders are held by one run at a time: a second run is refused, naming the first; stale locks are taken over. */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LOCK_FILE } from '../../src/util/lock.js';
import { XBAR, xbar, xbarAsync } from '../helpers/cli.js';
import { tinyFashionMnist } from '../helpers/data.js';
import { ROOT, vitMnist } from '../helpers/models.js';

/** A process that takes the lock of `dir` as xbar does and holds it until its stdin closes. */
async function holder(dir: string): Promise<ChildProcess> {
  const lock = join(ROOT, 'dist/src/util/lock.js');
  const p = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const { lockFolder } = await import(${JSON.stringify(lock)});
       lockFolder(${JSON.stringify(dir)}, '--out');
       console.log('held');
       process.stdin.resume();
       process.stdin.on('end', () => process.exit(0));`,
      'xbar',
      'experiment',
      'holding',
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    p.stdout!.once('data', () => resolve());
    p.once('exit', (code) => reject(new Error(`holder exited with ${code}`)));
  });
  return p;
}

const ended = (p: ChildProcess) => new Promise((resolve) => p.once('exit', resolve));

describe('output folder lock', () => {
  it('every command that writes an --out folder is refused while another process holds it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xbar-held-'));
    const p = await holder(dir);
    try {
      const commands = [
        ['cost', '--model', 'deit-s', '--hw', 'fefet-trex', '--out', dir],
        ['experiment', 'clipformer', '--model', 'm', '--out', dir],
        ['experiment', 'pto', '--model', 'm', '--out', dir],
        ['experiment', 'trex', '--model', 'm', '--out', dir],
        [
          'trex',
          'search',
          '--model',
          'm',
          '--data',
          'mnist:d',
          '--hw',
          'fefet-trex',
          '--target-delay',
          '1',
          '--out',
          dir,
        ],
        ['train', '--model', 'm', '--data', 'mnist:d', '--out', dir],
        ['vocab', '--from', 'm', '--data', 'glue-sst2:d', '--size', '9', '--out', dir],
      ];
      const runs = await Promise.all(commands.map((c) => xbarAsync(c)));
      for (const [i, r] of runs.entries()) {
        const what = commands[i]!.slice(0, 2).join(' ');
        assert.equal(r.status, 1, what);
        assert.match(
          r.stderr,
          new RegExp(
            `^xbar: --out ${dir}: another xbar is writing there \\(pid ${p.pid}, \`xbar experiment holding\`, started \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\); wait for it to finish`,
          ),
          what,
        );
      }
    } finally {
      p.stdin!.end();
      await ended(p);
    }
    assert.ok(!existsSync(join(dir, LOCK_FILE)), 'the holder removed its lock when it ended');
    const r = xbar(['cost', '--model', 'deit-s', '--hw', 'fefet-trex', '--out', dir]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(dir, 'cost.json')));
    assert.ok(!existsSync(join(dir, LOCK_FILE)));
  });

  it('a lock whose process has ended is taken over, with a note naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xbar-stale-'));
    const gone = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    const pid = Number(gone.stdout.trim());
    const stale = {
      pid,
      host: hostname(),
      command: 'xbar cost --out x',
      started: '2020-01-01T00:00:00.000Z',
    };
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify(stale));
    const r = xbar(['cost', '--model', 'deit-s', '--hw', 'fefet-trex', '--out', dir, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `--out ${dir}: taking over the lock of a process that has ended \\(pid ${pid}, \`xbar cost --out x\``,
      ),
    );
    assert.ok(existsSync(join(dir, 'cost.json')));
    assert.ok(!existsSync(join(dir, LOCK_FILE)));
  });

  it('of two training runs started on one folder, the second is refused and the first finishes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xbar-two-'));
    const config = join(vitMnist().dir, 'config.json');
    const data = `fashion-mnist:${tinyFashionMnist(64)}`;
    const args = ['train', '--model', config, '--data', data, '--out', dir, '--epochs', '2', '--batch', '16'];
    const first = spawn(process.execPath, [XBAR, ...args], { stdio: 'ignore' });
    const done = ended(first);
    // the second starts once the first holds the folder; the first is paused meanwhile, so that
    // it cannot finish before the second looks
    const lock = join(dir, LOCK_FILE);
    while (!existsSync(lock)) await new Promise((r) => setTimeout(r, 5));
    first.kill('SIGSTOP');
    const second = xbar(args);
    first.kill('SIGCONT');
    assert.equal(await done, 0);
    assert.equal(second.status, 1);
    assert.match(
      second.stderr,
      new RegExp(`another xbar is writing there \\(pid ${first.pid}, \`xbar train --model`),
    );
    const state = JSON.parse(readFileSync(join(dir, 'trainer_state.json'), 'utf8'));
    assert.equal(state.epoch, 2);
  });
});
