/** Directions the cost must move in: more reuse is cheaper, more ADC bits cost more energy, … */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadSpec } from '../../src/analog/presets.js';
import { cost, resolveShape } from '../../src/cost/index.js';

const deit = resolveShape('deit-s');
const fefet = loadSpec('fefet-trex');

function strictlyDown(xs: number[], what: string): void {
  for (let i = 1; i < xs.length; i++)
    assert.ok(xs[i]! < xs[i - 1]!, `${what}: ${xs[i - 1]} → ${xs[i]} at step ${i}`);
}

describe('monotonicity', () => {
  for (const transformationBlocks of [true, false]) {
    it(`more reuse → less delay, area and energy (transformation blocks ${transformationBlocks ? 'on' : 'off'})`, () => {
      const rs = Array.from(
        { length: 12 },
        (_, n) => cost(deit, fefet, { reuse: n, transformationBlocks }).totals,
      );
      strictlyDown(
        rs.map((t) => t.delayMs),
        'delay',
      );
      strictlyDown(
        rs.map((t) => t.areaMm2),
        'area',
      );
      strictlyDown(
        rs.map((t) => t.energyMJ),
        'energy',
      );
      strictlyDown(
        rs.map((t) => t.edap),
        'EDAP',
      );
    });
  }

  it('more ADC bits → more energy and area, on FeFET and PCM', () => {
    for (const hw of ['fefet-trex', 'pcm-lammie']) {
      const rs = [4, 5, 6, 7, 8, 9, 10].map((b) => cost(deit, loadSpec(hw, [`adc.bits=${b}`])).totals);
      strictlyDown(rs.map((t) => t.energyMJ).reverse(), `${hw} energy`);
      strictlyDown(rs.map((t) => t.areaMm2).reverse(), `${hw} area`);
    }
  });

  it('more columns per ADC → fewer ADCs (less area) but longer reads', () => {
    const rs = [1, 2, 4, 8, 16].map((c) => cost(deit, fefet, { architecture: { colsPerAdc: c } }).totals);
    strictlyDown(
      rs.map((t) => t.areaMm2),
      'area',
    );
    strictlyDown(rs.map((t) => t.delayMs).reverse(), 'delay');
  });

  it('more input bits, tokens or weight bits → more energy', () => {
    const e = (hw: string, sets: string[], tokens?: number) =>
      cost(tokens ? resolveShape('deit-s', { tokens }) : deit, loadSpec(hw, sets)).totals.energyMJ;
    strictlyDown(
      [8, 6, 4].map((b) => e('fefet-trex', [`dac.bits=${b}`])),
      'input bits',
    );
    strictlyDown(
      [8, 6, 4].map((b) => e('pcm-lammie', [`dac.bits=${b}`])),
      'PWM input bits',
    );
    strictlyDown(
      [256, 197, 100].map((t) => e('fefet-trex', [], t)),
      'tokens',
    );
    strictlyDown(
      [8, 6, 4].map((b) => e('fefet-trex', [`cells.weightBits=${b}`])),
      'weight bits',
    );
  });

  it('hybrid FeFET/SRAM has a lower EDAP than all-FeFET (TReX §VI)', () => {
    assert.ok(cost(deit, loadSpec('hybrid-trex')).totals.edap < cost(deit, fefet).totals.edap);
  });
});
