/** `xbar cost`: JSON keys, text tables, files written by --out, and flag errors. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { registerCost } from '../../src/cli/cost.js';

async function xbar(...args: string[]): Promise<string> {
  const program = new Command().exitOverride();
  registerCost(program);
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(' '));
  try {
    await program.parseAsync(['cost', ...args], { from: 'user' });
  } finally {
    console.log = log;
  }
  return lines.join('\n');
}

describe('xbar cost', () => {
  it('--json has the totals with units in their names', async () => {
    const j = JSON.parse(await xbar('--model', 'deit-s', '--hw', 'fefet-trex', '--json'));
    for (const k of ['energy_mJ', 'delay_ms', 'area_mm2', 'edap', 'tops_per_w', 'tops_per_mm2', 'macs']) {
      assert.equal(typeof j[k], 'number', k);
    }
    assert.equal(j.model.tokens, 198); // HF DeiT: class and distillation tokens
    assert.ok(Math.abs(j.edap - j.energy_mJ * j.delay_ms * j.area_mm2) < 1e-9 * j.edap);
    assert.ok(j.by_stage['K/V write'].delay_ns > 0);
  });

  it('reuse, β and architecture flags reach the model', async () => {
    const base = JSON.parse(await xbar('--model', 'deit-s', '--hw', 'fefet-trex', '--json'));
    const j = JSON.parse(
      await xbar(
        '--model',
        'deit-s',
        '--hw',
        'fefet-trex',
        '--reuse',
        '2,4',
        '--no-tb',
        '--beta',
        '0.25',
        '--arch',
        'crossbarsPerPe=4',
        '--json',
      ),
    );
    assert.deepEqual(j.reuse, [2, 4]);
    assert.equal(j.transformation_blocks, false);
    assert.equal(j.hardware.kvSlices, 3);
    assert.equal(j.architecture.crossbarsPerPe, 4);
    assert.ok(j.delay_ms < base.delay_ms);
  });

  it('text: stage and component tables and totals; --out writes JSON, SVG and PNG', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xbar-cost-'));
    const out = await xbar(
      '--model',
      'bert-base',
      '--hw',
      'pcm-lammie',
      '--seq-len',
      '64',
      '--layers',
      '--out',
      dir,
    );
    assert.match(out, /bert-base \(12 layers, d 768, 12 heads, ffn 3072, 64 tokens\)/);
    assert.match(out, /^stage +energy µJ/m);
    assert.match(out, /^component +energy µJ/m);
    assert.match(out, /^encoder +energy µJ/m);
    assert.match(out, /^EDAP +[\d.]+ +mJ·ms·mm²/m);
    assert.match(out, /^fitted: [\d.]+% of the energy, [\d.]+% of the delay and [\d.]+% of the area/m);
    for (const f of ['cost.json', 'breakdown.vl.json', 'breakdown.svg', 'breakdown.png'])
      assert.ok(existsSync(join(dir, f)), f);
    assert.match(readFileSync(join(dir, 'breakdown.svg'), 'utf8'), /Energy by stage/);
    const spec = JSON.parse(readFileSync(join(dir, 'breakdown.vl.json'), 'utf8'));
    assert.match(spec.$schema, /vega-lite/);
    assert.match(spec.title.text, /^bert-base on /);
  });

  it('--reuse-counts: one row per count in Table IV’s layout; --json: one report per count', async () => {
    const args = [
      '--model',
      'deit-s',
      '--tokens',
      '197',
      '--hw',
      'fefet-trex',
      '--no-tb',
      '--reuse-counts',
      '0,5',
    ];
    const text = await xbar(...args);
    const rows = text.split('\n').filter((l) => /^\s+\d+\s/.test(l));
    assert.deepEqual(
      rows.map((l) => l.trim().split(/\s+/)[0]),
      ['0', '5'],
    );
    assert.match(text, /transformation blocks\s+not costed/);
    const [a, b] = JSON.parse(await xbar(...args, '--json'));
    assert.deepEqual([a.reuse.length, b.reuse.length], [0, 5]);
    assert.ok(rows[1]!.includes(`${(a.edap / b.edap).toFixed(2)}×`));
    await assert.rejects(xbar(...args, '--reuse', '3'), /--reuse-counts.*leave out --reuse/s);
  });

  it('an HF folder is read for its shapes only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xbar-cost-model-'));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        model_type: 'vit',
        hidden_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 128,
        image_size: 32,
        patch_size: 8,
      }),
    );
    const j = JSON.parse(await xbar('--model', dir, '--hw', 'fefet-trex', '--json'));
    assert.equal(j.model.tokens, 17);
    assert.equal(j.model.layers, 2);
  });

  it('--seq-len on a vision model is refused', async () => {
    await assert.rejects(xbar('--model', 'deit-s', '--hw', 'fefet-trex', '--seq-len', '64'), /vision model/);
  });
});
