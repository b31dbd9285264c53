/**
 * The cost equations on a synthetic one-encoder model and a synthetic component library whose
 * numbers make every term countable by hand; and the scaling laws at the reference point.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadSpec } from '../../src/analog/presets.js';
import {
  type CostOptions,
  type CrossbarCost,
  cost,
  crossbarCost,
  fittedShare,
  libraryEntry,
  type ModelShape,
} from '../../src/cost/index.js';
import { resolveShape } from '../../src/cost/shape.js';
import { encoderLayerMacs } from '../../src/models/encoder.js';

/** Totals of a CrossbarCost: E_R,X (pJ), D_R,X (ns), A_X (mm²). */
const crossbarTotals = (c: CrossbarCost) => ({
  readPJ: c.read.arrayPJ + c.read.dacPJ + c.read.adcPJ + c.read.shiftAddPJ,
  readNs: c.readDelay.arrayNs + c.readDelay.adcNs,
  areaMm2: c.area.arrayMm2 + c.area.dacMm2 + c.area.adcMm2 + c.area.shiftAddMm2,
});

const close = (a: number, b: number, rel = 1e-9, what = '') =>
  assert.ok(Math.abs(a - b) <= rel * Math.max(1, Math.abs(b)), `${what}: ${a} ≠ ${b}`);

/** t = 10, d = 64, one head, f = 128: every matrix fits one 64×64 crossbar per slice (K/V too). */
const tiny = (layers = 1): ModelShape => ({
  name: 'tiny',
  family: 'vit',
  layers,
  hidden: 64,
  heads: 1,
  ffn: 128,
  tokens: 10,
  preNorm: true,
  patchEmbedding: null,
  classifier: [],
});

/** E_R,X = 1 pJ, D_R,X = 7 cycles × 1 ns, E_W = 10 pJ, D_W = 100 ns, A_X = 0.01 mm². */
const options = (extra: CostOptions = {}): CostOptions => ({
  architecture: { crossbarsPerPe: 2, pesPerTile: 2 },
  library: {
    fefet: {
      crossbar: {
        arrayEnergyPJ: 1,
        dacEnergyPJ: 0,
        adcEnergyPJ: 0,
        shiftAddEnergyPJ: 0,
        arrayDelayNs: 1,
        adcDelayNs: 0,
        writeEnergyPJ: 10,
        writeDelayNs: 100,
        arrayAreaMm2: 0.01,
        dacAreaMm2: 0,
        adcAreaMm2: 0,
        shiftAddAreaMm2: 0,
      },
      digital: {
        softmax: { energyPJPerElement: 2, delayNsPerElement: 3, areaMm2: 0.5 },
        scoreBuffer: { energyPJPerBit: 0, areaUm2PerBit: 0 },
        layerNorm: { energyPJPerElement: 1, lanes: 1, cycleNs: 1, areaMm2: 0.1 },
        activation: { energyPJPerElement: 0.5, lanes: 2, cycleNs: 1, areaMm2: 0.2 },
      },
    },
  },
  ...extra,
});

describe('equations on a synthetic encoder', () => {
  const spec = loadSpec('fefet-trex'); // 64×64, 2-bit cells, 8-bit weights: 4 slices; 8-bit bit-serial

  it('every stage by hand', () => {
    const r = cost(tiny(), spec, options());
    const stage = (s: string) => r.stages.find((x) => x.stage === s)!;
    const sum = (a: Record<string, number | undefined>) =>
      Object.values(a).reduce<number>((s, v) => s + v!, 0);
    // stage: [crossbars, energy pJ, delay ns, area mm²]
    const want: Record<string, [number, number, number, number]> = {
      norm1: [0, 640, 640, 0.1], // t·d elements, one lane
      qkv: [12, 10 * 12, 10 * 2 * 7, 0.12], // 3 × 4 slices; delay: t × min(2 per PE, 4) × D_R,X
      kvWrite: [0, 8 * 10, 8 * 100, 0], // Kᵀ and V: 4 + 4 crossbars in four PEs of 2, written in turn
      scores: [4, 40, 140, 0.04],
      softmax: [0, 100 * 2, 100 * 3, 0.5], // h·t² scores
      mix: [4, 40, 140, 0.04],
      projection: [4, 40, 140, 0.04],
      norm2: [0, 640, 640, 0.1],
      ffnIn: [8, 80, 140, 0.08],
      activation: [0, 1280 * 0.5, 1280 / 2, 0.2], // t·f elements, two lanes
      ffnOut: [8, 80, 140, 0.08],
    };
    assert.deepEqual(
      r.stages.map((s) => s.stage),
      Object.keys(want),
    );
    for (const [s, [n, e, d, a]] of Object.entries(want)) {
      assert.equal(stage(s).crossbars, n, `${s} crossbars`);
      close(sum(stage(s).energyPJ), e, 1e-9, `${s} energy`);
      close(sum(stage(s).delayNs), d, 1e-9, `${s} delay`);
      close(sum(stage(s).areaMm2), a, 1e-9, `${s} area`);
    }
    const t = r.totals;
    close(t.energyMJ, 2600e-9, 1e-9, 'energy');
    close(t.delayMs, 3860e-6, 1e-9, 'delay');
    close(t.areaMm2, 1.3, 1e-9, 'area');
    assert.equal(t.macs, encoderLayerMacs({ hidden: 64, ffn: 128 }, 10));
    close(t.edap, 2600e-9 * 3860e-6 * 1.3, 1e-9, 'EDAP');
    close(t.topsPerW, t.macs / 2600e-12 / 1e12, 1e-9, 'TOPS/W');
    close(t.topsPerMm2, t.macs / 3860e-9 / 1e12 / 1.3, 1e-9, 'TOPS/mm²');
  });

  it('a reuse encoder drops its attention and gains a transformation block', () => {
    const base = cost(tiny(2), spec, options());
    const noTb = cost(tiny(2), spec, options({ reuse: 1, transformationBlocks: false }));
    const withTb = cost(tiny(2), spec, options({ reuse: [1] }));
    assert.deepEqual(withTb.reuse, [1]);
    assert.deepEqual(cost(tiny(2), spec, options({ reuse: [false, true] })).reuse, [1]);
    const attention = { e: 640 + 120 + 80 + 40 + 200 + 40, d: 640 + 140 + 800 + 140 + 300 + 140, a: 0.8 };
    const tb = { e: 640 + 40 + 640 * 0.5, d: 640 + 140 + 640 / 2, a: 0.1 + 0.04 + 0.2 };
    close(base.totals.energyMJ - noTb.totals.energyMJ, attention.e * 1e-9, 1e-9, 'energy saved');
    close(base.totals.delayMs - noTb.totals.delayMs, attention.d * 1e-6, 1e-9, 'delay saved');
    close(base.totals.areaMm2 - noTb.totals.areaMm2, attention.a, 1e-9, 'area saved');
    close(withTb.totals.energyMJ - noTb.totals.energyMJ, tb.e * 1e-9, 1e-9, 'TB energy');
    close(withTb.totals.delayMs - noTb.totals.delayMs, tb.d * 1e-6, 1e-9, 'TB delay');
    close(withTb.totals.areaMm2 - noTb.totals.areaMm2, tb.a, 1e-9, 'TB area');
    // MACs: attention's 3td² + 2t²d go, the TB's td² comes
    assert.equal(base.totals.macs - noTb.totals.macs, 10 * 3 * 64 * 64 + 2 * 100 * 64);
    assert.equal(withTb.totals.macs - noTb.totals.macs, 10 * 64 * 64);
  });

  it('PEs written two at a time halve the K/V write delay', () => {
    const one = cost(tiny(), spec, options());
    const two = cost(tiny(), spec, options({ architecture: { crossbarsPerPe: 2, concurrentWritePes: 2 } }));
    const w = (r: typeof one) => r.stages.find((s) => s.stage === 'kvWrite')!.delayNs.write!;
    assert.equal(w(one), 800);
    assert.equal(w(two), 400);
  });
});

describe('component library', () => {
  it('the split parts add up to the papers’ per-crossbar totals at the reference', () => {
    const cases = [
      ['fefet', 25, 20, 0.03],
      ['sram', 29, 18, 0.07],
      ['rram', 25, 20, 0.03],
      ['pcm', 13_400, 133, 0.62],
    ] as const;
    for (const [tech, pj, ns, mm2] of cases) {
      const lib = libraryEntry(tech);
      const t = crossbarTotals(crossbarCost(lib.crossbar, lib.crossbar.reference));
      close(t.readPJ, pj, 1e-12, `${tech} E_R,X`);
      close(t.readNs, ns, 1e-12, `${tech} D_R,X`);
      close(t.areaMm2, mm2, 1e-12, `${tech} A_X`);
    }
  });

  it('scaling laws: flash ADC energy doubles per bit, array energy follows cells', () => {
    const x = libraryEntry('fefet').crossbar;
    const at = (over: Partial<typeof x.reference>) => crossbarCost(x, { ...x.reference, ...over });
    const ref = at({});
    close(at({ adcBits: 7 }).read.adcPJ, 2 * ref.read.adcPJ);
    close(at({ adcBits: 7 }).area.adcMm2, 2 * ref.area.adcMm2);
    close(at({ rows: 128, cols: 128 }).read.arrayPJ, 4 * ref.read.arrayPJ);
    close(at({ rows: 128 }).read.dacPJ, 2 * ref.read.dacPJ);
    close(at({ colsPerAdc: 16 }).area.adcMm2, ref.area.adcMm2 / 2); // half the ADCs
    close(at({ colsPerAdc: 16 }).readDelay.adcNs, 2 * ref.readDelay.adcNs); // twice the conversions each
    close(at({ inputBits: 5 }).readDelay.arrayNs, (4 / 7) * ref.readDelay.arrayNs); // 4 magnitude bits
  });

  it('fittedShare: what each total loses when the FITTED constants are 0', () => {
    const zero = {
      softmax: { energyPJPerElement: 0, delayNsPerElement: 0 },
      scoreBuffer: { areaUm2PerBit: 0 },
    };
    for (const [hw, tech] of [
      ['fefet-trex', 'fefet'],
      ['pcm-lammie', 'pcm'],
    ] as const) {
      const shape = resolveShape('deit-s');
      const a = cost(shape, loadSpec(hw));
      const b = cost(shape, loadSpec(hw), { library: { [tech]: { digital: zero } } }).totals;
      const f = fittedShare(a);
      close(f.energy, 1 - b.energyMJ / a.totals.energyMJ, 1e-9, `${hw} energy`);
      close(f.delay, 1 - b.delayMs / a.totals.delayMs, 1e-9, `${hw} delay`);
      close(f.area, 1 - b.areaMm2 / a.totals.areaMm2, 1e-9, `${hw} area`);
      assert.ok(f.energy > 0 && f.delay > 0 && f.area > 0);
    }
  });
});
