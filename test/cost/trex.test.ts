/**
 * TReX Table IV (DeiT-S, 64×64 FeFET) reproduced from the paper's per-crossbar numbers and three
 * CMOS constants solved from the table (docs/cost-model.md §3). TReX's Eq. 5 leaves the
 * transformation blocks out, so the rows are compared with `transformationBlocks: false`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadSpec } from '../../src/analog/presets.js';
import { cost, resolveShape } from '../../src/cost/index.js';

/** TReX's DeiT-S is the non-distilled model: class token + 196 patches. */
const shape = resolveShape('deit-s', { tokens: 197 });
const spec = loadSpec('fefet-trex');
const run = (reuse: number) => cost(shape, spec, { reuse, transformationBlocks: false }).totals;

/**
 * Paper rows. E is EDAP/(D·A) where the table prints it rounded (0.13, 0.11); D and A of the rows
 * the text gives only EDAP for follow from "each removed attention block saves about 0.82 ms and
 * 24.7 mm²" (METHODS.md §2), which also fixes N_reuse = 3, 5, 7, 9.
 */
const ROWS = [
  {
    name: 'baseline',
    reuse: 0,
    edap: 1115.23,
    delayMs: 10.92,
    areaMm2: 775.2,
    energyMJ: 1115.23 / (10.92 * 775.2),
  },
  { name: 'TReX-D-9', reuse: 3, edap: 700.2, delayMs: 10.92 - 3 * 0.82, areaMm2: 775.2 - 3 * 24.7 },
  {
    name: 'TReX-D-7',
    reuse: 5,
    edap: 484.15,
    delayMs: 6.82,
    areaMm2: 651.7,
    energyMJ: 484.15 / (6.82 * 651.7),
  },
  { name: 'TReX-D-6', reuse: 7, edap: 311.43, delayMs: 10.92 - 7 * 0.82, areaMm2: 775.2 - 7 * 24.7 },
  { name: 'TReX-D-4', reuse: 9, edap: 177.6, delayMs: 10.92 - 9 * 0.82, areaMm2: 775.2 - 9 * 24.7 },
];

const within = (ours: number, paper: number, tol: number, what: string) => {
  const rel = ours / paper - 1;
  assert.ok(
    Math.abs(rel) <= tol,
    `${what}: ours ${ours.toPrecision(5)}, paper ${paper} (${(100 * rel).toFixed(1)}%)`,
  );
};

describe('TReX Table IV, DeiT-S on fefet-trex', () => {
  for (const row of ROWS) {
    it(`${row.name} (N_reuse ${row.reuse}): energy, delay, area and EDAP within 5%`, () => {
      const t = run(row.reuse);
      within(t.delayMs, row.delayMs, 0.05, 'delay');
      within(t.areaMm2, row.areaMm2, 0.05, 'area');
      within(t.edap, row.edap, 0.05, 'EDAP');
      if (row.energyMJ) within(t.energyMJ, row.energyMJ, 0.05, 'energy');
    });
  }

  it('baseline TOPS/W and TOPS/mm² within 5% (one MAC = one operation)', () => {
    const t = run(0);
    within(t.topsPerW, 34.45, 0.05, 'TOPS/W');
    within(t.topsPerMm2, 0.00054, 0.05, 'TOPS/mm²');
    within(t.macs, 4.54e9, 0.01, 'MACs of the 12 encoders');
  });

  it('TOPS/W of the TReX rows rises only 1.03–1.11× (the paper’s range)', () => {
    const base = run(0).topsPerW;
    const ratios = [3, 5, 7, 9].map((n) => run(n).topsPerW / base);
    within(ratios[0]!, 1.03, 0.01, 'TReX-D-9');
    within(ratios[3]!, 1.11, 0.01, 'TReX-D-4');
  });

  it('TReX-D-7 TOPS/mm²: 1.66× where the paper prints 1.85× (not reached, see below)', () => {
    // The paper's own E, D, A and the MAC count its TOPS/W range implies (the reused attention's
    // MACs removed) give (3.956/4.541)·(10.92·775.2)/(6.82·651.7) = 1.66×; 1.85× needs the
    // baseline's MACs, which contradicts its TOPS/W range. We count the MACs actually run.
    const ratio = run(5).topsPerMm2 / run(0).topsPerMm2;
    within(ratio, 1.66, 0.03, 'TOPS/mm² ratio');
    assert.ok(ratio < 1.85 * 0.95);
  });

  it('the three solved constants reproduce their anchors', () => {
    const [base, d7] = [run(0), run(5)];
    within(base.delayMs, 10.92, 0.001, 'baseline delay (softmax delay per score)');
    within(
      (base.energyMJ - d7.energyMJ) / 5,
      (ROWS[0]!.energyMJ! - ROWS[2]!.energyMJ!) / 5,
      0.005,
      'ΔE per reuse',
    );
    within((base.areaMm2 - d7.areaMm2) / 5, 24.7, 0.001, 'ΔA per reuse (score buffer area per bit)');
  });

  it('writes dominate: ~70% of the delay, ~78% of an attention block’s', () => {
    const r = cost(shape, spec);
    const of = (stage: string) =>
      r.stages
        .filter((s) => s.stage === stage)
        .reduce((a, s) => a + Object.values(s.delayNs).reduce((x, y) => x + y), 0);
    const writes = of('kvWrite');
    const attention = ['norm1', 'qkv', 'kvWrite', 'scores', 'softmax', 'mix'].reduce((a, s) => a + of(s), 0);
    within(writes / (r.totals.delayMs * 1e6), 0.7, 0.02, 'writes / delay');
    within(writes / attention, 0.78, 0.02, 'writes / attention delay');
    within(attention / (r.totals.delayMs * 1e6), 0.9, 0.02, 'attention / delay');
  });
});
