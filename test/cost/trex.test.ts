/**
 * TReX Table IV (DeiT-S, 64×64 FeFET) as xbar counts it, with `transformationBlocks: false`
 * (the table's Eq. 5 leaves them out). Three constants (FITTED) were solved from this table, so
 * agreement with it is a regression check of the fit and the arithmetic, not evidence for the
 * model: test/cost/held-out.test.ts holds the checks against figures the fit did not use.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadSpec } from '../../src/analog/presets.js';
import { type CostOptions, cost, FITTED, resolveShape } from '../../src/cost/index.js';
import { TABLE_IV, within } from '../helpers/trex-table.js';

/** TReX's DeiT-S is the non-distilled model: class token + 196 patches. */
const shape = resolveShape('deit-s', { tokens: 197 });
const spec = loadSpec('fefet-trex');
const run = (reuse: number, o: CostOptions = {}) =>
  cost(shape, spec, { reuse, transformationBlocks: false, ...o }).totals;
/** The model with one CMOS number of the FeFET library set to 0. */
const without = (digital: Record<string, Record<string, number>>): CostOptions => ({
  library: { fefet: { digital } },
});

describe('TReX Table IV: the fit is reproducible (a regression check, not evidence)', () => {
  const { heads: h, tokens: t, layers } = shape;
  const scores = h * t * t;
  // each constant is quoted to two decimals: re-solved, it must round to the quoted value
  const reSolved = (fitted: number, solved: number, what: string) =>
    assert.ok(Math.abs(solved - fitted) <= 0.005, `${what}: re-solved ${solved}, FITTED ${fitted}`);

  it('softmax delay per score: the baseline delay less every other stage, over 12·t² scores', () => {
    const rest = run(0, without({ softmax: { delayNsPerElement: 0 } })).delayMs;
    const solved = ((TABLE_IV.baseline.delayMs - rest) * 1e6) / (layers * t * t);
    reSolved(FITTED.softmaxDelayNsPerScore.value, solved, 'softmax ns per score');
  });

  it('softmax energy per score: the energy saved per removed attention block, less its other parts', () => {
    const o = without({ softmax: { energyPJPerElement: 0 } });
    const rest = (run(0, o).energyMJ - run(5, o).energyMJ) / 5;
    const solved = ((TABLE_IV.energySavedPerReuseMJ - rest) * 1e9) / scores;
    reSolved(FITTED.softmaxEnergyPJPerScore.value, solved, 'softmax pJ per score');
  });

  it('score-buffer area per bit: the area saved per removed attention block, less its other parts', () => {
    const o = without({ scoreBuffer: { areaUm2PerBit: 0 } });
    const rest = (run(0, o).areaMm2 - run(5, o).areaMm2) / 5;
    const solved = ((TABLE_IV.areaSavedPerReuseMm2 - rest) * 1e6) / (scores * 8);
    reSolved(FITTED.scoreBufferAreaUm2PerBit.value, solved, 'score buffer µm² per bit');
  });

  it('the structural reading of the delay (K/V PEs written in turn): writes are 70% of it', () => {
    // chosen so that writes dominate as the paper says (~80%); this guards the choice, it does not test it
    const r = cost(shape, spec);
    const of = (stage: string) =>
      r.stages
        .filter((s) => s.stage === stage)
        .reduce((a, s) => a + Object.values(s.delayNs).reduce((x, y) => x + y), 0);
    within(of('kvWrite') / (r.totals.delayMs * 1e6), 0.7, 0.02, 'writes / delay');
  });
});

describe('TReX Table IV: what the fit did not fix', () => {
  it('EDAP of TReX-D-9, -6, -4 (printed, unused by the fit) within 2%', () => {
    // E, D and A are linear in N_reuse, so these follow from the baseline and the per-block savings:
    // they check the held-out parts (test/cost/held-out.test.ts) over the rows, not more
    for (const [n, edap] of [
      [3, TABLE_IV.d9.edap],
      [7, TABLE_IV.d6.edap],
      [9, TABLE_IV.d4.edap],
    ] as const) {
      within(run(n).edap, edap, 0.02, `EDAP at N_reuse ${n}`);
    }
  });

  it('TOPS/W of the TReX rows rises only 1.03–1.11× (the paper’s range)', () => {
    const base = run(0).topsPerW;
    within(run(3).topsPerW / base, 1.03, 0.01, 'TReX-D-9');
    within(run(9).topsPerW / base, 1.11, 0.01, 'TReX-D-4');
  });

  it('baseline TOPS/W and TOPS/mm² within 1% (one MAC = one operation, the encoders’ 4.54 GMAC)', () => {
    const t = run(0);
    within(t.topsPerW, 34.45, 0.01, 'TOPS/W');
    within(t.topsPerMm2, 0.00054, 0.01, 'TOPS/mm² (printed to two figures)');
    within(t.macs, 4.54e9, 0.001, 'MACs of the 12 encoders');
  });

  it('TReX-D-7 TOPS/mm²: 1.66× where the paper prints 1.85× (not reached, docs/cost-model.md §3)', () => {
    // The paper's own E, D, A and the MAC count its TOPS/W range implies (the reused attention's
    // MACs removed) give (3.956/4.541)·(10.92·775.2)/(6.82·651.7) = 1.66×; 1.85× needs the
    // baseline's MACs, which contradicts its TOPS/W range. We count the MACs actually run.
    const ratio = run(5).topsPerMm2 / run(0).topsPerMm2;
    within(ratio, 1.66, 0.03, 'TOPS/mm² ratio');
    assert.ok(ratio < 1.85 * 0.95);
  });
});
