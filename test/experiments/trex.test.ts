/**
 * The TReX experiment as a sweep: each point computes what the experiment's old closures computed
 * at the same seed (Algorithm 1, the brief training, the noise-aware fine-tuning, the ideal
 * accuracy and each Monte Carlo instance on hardware, called here as they were); a tiny run
 * stores every stage's points and reports from them; a rerun runs nothing and writes the same
 * report; a point whose model folder is whole does not train again; other settings are refused.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { analogInstances } from '../../src/analog/instances.js';
import { loadSpec } from '../../src/analog/presets.js';
import { sliceData } from '../../src/eval/data.js';
import { evaluate } from '../../src/eval/evaluate.js';
import { defaultTargets } from '../../src/experiments/trex.js';
import { openTrexData } from '../../src/methods/trex/data.js';
import { noiseAwareFinetune } from '../../src/methods/trex/finetune.js';
import { BRIEF_DEFAULTS, reuseCountFor, trainCandidate } from '../../src/methods/trex/search.js';
import { copyProcessorFiles, loadModel } from '../../src/models/index.js';
import { openStore } from '../../src/sweep/duckdb.js';
import { EXPERIMENT_STORE } from '../../src/sweep/experiment.js';
import { sweepOf } from '../../src/sweep/file.js';
import { createPointRunner } from '../../src/sweep/point.js';
import type { SearchedPattern } from '../../src/sweep/tasks/trex-search.js';
import { runTrex, type TrexOptions } from '../../src/sweep/trex.js';
import { tinyFashionMnist } from '../helpers/data.js';
import { ROOT, savedModel } from '../helpers/models.js';

/** A 3-layer ViT for 28×28 gray images: reuse patterns need encoders to reuse. */
const { model, dir: modelDir } = savedModel({
  model_type: 'vit',
  hidden_size: 16,
  num_hidden_layers: 3,
  num_attention_heads: 2,
  intermediate_size: 32,
  image_size: 28,
  patch_size: 7,
  num_channels: 1,
  num_labels: 10,
});
const dataSpec = `fashion-mnist:${tinyFashionMnist(16)}`;
const HW = ['fefet-trex', 'hybrid-trex'];

const options = (out: string): TrexOptions => ({
  model,
  modelDir,
  dataSpec,
  hardware: HW,
  // the delay of N_reuse = 1 on the first hardware: one search with its patterns
  targets: [defaultTargets(model, HW[0]!)[0]!],
  baselines: [{ name: 'share 2←1', kind: 'weight sharing', variants: { shareWeights: { 2: 1 } } }],
  fraction: 0.5,
  heldOut: 4,
  brief: { ...BRIEF_DEFAULTS, batch: 4 },
  finetune: { epochs: 1, lr: 1e-4, batch: 4 },
  maxLength: 128,
  repeats: 2,
  hwLimit: 6,
  seed: 3,
  evalLimit: 10,
  out,
  quiet: true,
  command: 'xbar experiment trex --model tiny',
});

/** The files of a folder tree with their modification times. */
const mtimes = (dir: string): Record<string, number> =>
  Object.fromEntries(
    readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .filter((f) => statSync(join(dir, f)).isFile() && !f.endsWith('.duckdb') && !f.includes('status'))
      .map((f) => [f, statSync(join(dir, f)).mtimeMs]),
  );

describe('TReX experiment', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'xbar-trex-')), 'trex');
  const first = runTrex(options(out));

  it('stores every stage’s points and reports from them', async () => {
    const e = await first;
    assert.equal(e.storedBefore, 0);
    assert.equal(e.storedNow, e.rows.length);
    assert.ok(e.rows.every((r) => r.result));
    const tasks = e.rows.map((r) => String(r.point.settings['task'] ?? 'eval'));
    // 1 search, 2 patterns + 1 baseline trained, 3 models fine-tuned, then the evaluations
    const search = tasks.filter((t) => t === 'trex-search').length;
    const trainings = e.rows.filter((r) => r.point.settings['trex.train'] === 'brief').length;
    const finetunes = e.rows.filter((r) => r.point.settings['trex.train'] === 'noise-aware').length;
    const patterns = e.report.patterns.length;
    assert.equal(search, 1);
    assert.ok(patterns >= 1);
    assert.equal(trainings, patterns + 1);
    assert.equal(finetunes, 3);
    // each model: its ideal and 2 hardware × 2 instances; each pattern: its ideal
    assert.equal(tasks.filter((t) => t === 'eval').length, 3 * (1 + 2 * 2) + patterns);
    // stages in order: searches, then trainings, then fine-tunings, then evaluations
    const stage = (t: string, train: unknown) =>
      t === 'trex-search' ? 0 : train === 'brief' ? 1 : train === 'noise-aware' ? 2 : 3;
    const order = e.rows.map((r, i) => stage(tasks[i]!, r.point.settings['trex.train']));
    assert.deepEqual(order, [...order].sort());
    for (const f of ['results.md', 'patterns.svg', 'pareto-fefet-trex.png', 'pareto-hybrid-trex.vl.json'])
      assert.ok(existsSync(join(out, f)), f);
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    assert.match(md, /^# TReX on /);
    assert.match(md, /2 instance\(s\) from seed 3/);
    assert.match(md, /noise-aware fine-tuning on/);
    for (const name of ['baseline', 'TReX-D-', 'share 2←1']) assert.ok(md.includes(`| ${name}`), name);
    for (const d of ['patterns', 'baselines', 'finetuned', 'search']) assert.ok(existsSync(join(out, d)), d);
    assert.deepEqual(
      readdirSync(join(out, 'patterns')).filter((f) => f.endsWith('.partial')),
      [],
      'no partial folder is left',
    );
  });

  it('computes what the old experiment computed at the same seed', async () => {
    const e = await first;
    const o = options(out);
    const hw0 = loadSpec(HW[0]!);
    // Algorithm 1 as the search ran it
    const search = e.rows.find((r) => r.point.settings['task'] === 'trex-search')!.result!;
    const choice = reuseCountFor({ model, hw: hw0, targetDelayMs: o.targets![0]! });
    assert.equal(search.metrics['n_reuse'], choice.nReuse);
    assert.equal(choice.nReuse, 1);
    // the data as the old experiment opened it
    const data = openTrexData(model, modelDir, dataSpec, {
      fraction: o.fraction,
      heldOut: o.heldOut,
      maxLength: o.maxLength,
      evalLimit: o.evalLimit!,
    });
    // the winner: every pattern trained briefly as the search trained it, the lowest loss wins
    const mine = mkdtempSync(join(tmpdir(), 'xbar-trex-old-'));
    const trained = [];
    for (const p of JSON.parse(search.labels!['patterns']!) as SearchedPattern[]) {
      const dir = join(mine, `p${trained.length}`);
      const { loss } = await trainCandidate(model, modelDir, { reuse: p.reuse }, dir, {
        ...data,
        brief: o.brief,
      });
      assert.equal(loss, e.report.patterns.find((q) => q.label === p.label)!.loss, p.label);
      trained.push({ label: p.label, loss, dir });
    }
    const winner = trained.reduce((a, b) => (b.loss < a.loss ? b : a));
    assert.ok(e.report.models[1]!.detail.endsWith(winner.label));
    // its noise-aware fine-tuning on the first hardware, then its accuracies as the old cells had them
    await noiseAwareFinetune(loadModel(winner.dir), data.train, hw0, {
      ...o.finetune!,
      out: join(mine, 'finetuned'),
    });
    copyProcessorFiles(modelDir, join(mine, 'finetuned'));
    const tuned = loadModel(join(mine, 'finetuned'));
    const row = e.report.rows[e.report.models[1]!.name]!;
    assert.equal(row.ideal, (await evaluate(tuned, data.eval)).value);
    const hwEval = sliceData(data.eval, 0, o.hwLimit);
    for (const hw of HW) {
      const values = [];
      for (const seed of [o.seed, o.seed + 1]) {
        const matmuls = await analogInstances(tuned, loadSpec(hw))(seed);
        values.push((await evaluate(tuned, hwEval, { matmuls, fresh: true })).value);
      }
      const mean = (values[0]! + values[1]!) / 2;
      assert.equal(row.nonIdeal[hw]!.mean, mean, hw);
    }
  });

  it('runs nothing again on a rerun, and writes the same report', async () => {
    await first;
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    const before = mtimes(out);
    const again = await runTrex(options(out));
    assert.equal(again.storedNow, 0);
    assert.equal(again.storedBefore, again.rows.length);
    assert.equal(readFileSync(join(out, 'results.md'), 'utf8'), md);
    const after = mtimes(out);
    for (const f of Object.keys(before).filter((f) => f.includes('model.safetensors')))
      assert.equal(after[f], before[f], `${f} was written again`);
  });

  it('a training point whose folder is whole does not train it again, and gives its loss', async () => {
    const e = await first;
    const row = e.rows.find((r) => r.point.settings['trex.train'] === 'brief')!;
    const dir = String(row.point.settings['trex.out']);
    const before = mtimes(dir);
    const r = await createPointRunner()(row.point);
    assert.equal(r.metrics['loss'], row.result!.metrics['loss']);
    assert.deepEqual(mtimes(dir), before);
  });

  it('refuses a store of other settings', async () => {
    await first;
    await assert.rejects(runTrex({ ...options(out), hwLimit: 5 }), /may only gain points/);
  });

  it('names what a training point lacks and a setting out of range', () => {
    const point = {
      task: 'trex-train',
      'trex.train': 'brief',
      'trex.out': 'runs/x',
      'trex.fraction': 0.5,
      'trex.heldOut': 4,
      'trex.epochs': 1,
      'trex.lr': 1e-3,
    };
    const sweep = (list: object[]) =>
      sweepOf({ name: 't', model: modelDir, data: dataSpec, maxLength: 128, list }, 'here');
    assert.throws(() => sweep([point]), /no trex\.variant; a brief training needs it/);
    assert.throws(
      () => sweep([{ ...point, 'trex.train': 'noise-aware' }]),
      /no trex\.from; a noise-aware training needs it/,
    );
    assert.throws(() => sweep([{ ...point, 'trex.fraction': 2 }]), /trex\.fraction.*use a fraction/);
    assert.throws(
      () => sweep([{ ...point, 'trex.variant': '[1]' }]),
      /trex\.variant.*use the variant as JSON/,
    );
  });

  it('the committed results of a store name every model of its report', async () => {
    // committed results made before the experiment ran as a sweep (results.json only) are
    // rendered again when rerun; those with a store must have every point done
    for (const name of readdirSync(join(ROOT, 'results')).filter((n) => n.startsWith('trex'))) {
      const file = join(ROOT, 'results', name, EXPERIMENT_STORE);
      if (!existsSync(file)) continue;
      const store = await openStore(file);
      const rows = await store.rows();
      await store.close();
      assert.ok(rows.length && rows.every((r) => r.result), `${name}: every point done`);
      const md = readFileSync(join(ROOT, 'results', name, 'results.md'), 'utf8');
      assert.match(md, /^# TReX on /, name);
    }
  });
});
