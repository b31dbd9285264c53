/** Hardware specs: presets, files, overrides, and error messages that name field, value and range. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadSpec, PRESET_NAMES, specDiff } from '../../src/analog/presets.js';
import { globRegExp, mergeSpec } from '../../src/analog/resolve.js';
import { sliceCount } from '../../src/analog/spec.js';

const file = (name: string, text: string) => {
  const p = join(mkdtempSync(join(tmpdir(), 'xbar-spec-')), name);
  writeFileSync(p, text);
  return p;
};

describe('presets', () => {
  it('every preset resolves, with its attention crossbars', () => {
    for (const n of PRESET_NAMES) {
      assert.equal(loadSpec(n).spec.name, n);
    }
  });

  it('ideal differs from the defaults only in its labels', () => {
    assert.deepEqual(Object.keys(specDiff(loadSpec('ideal').spec)).sort(), ['description', 'name', 'source']);
  });

  it('encode the papers’ settings', () => {
    const rram = loadSpec('rram-clipformer');
    const r = rram.spec;
    assert.deepEqual([r.tile.rows, r.tile.cols, r.tile.split], [64, 64, 'fixed']);
    assert.equal(sliceCount(r.cells), 4); // 8-bit weights over 2-bit cells
    assert.deepEqual(rram.attention!.program, { kind: 'writeSqrt', gamma: 3, sigma: 0.1, per: 'value' });
    assert.deepEqual(r.program, { kind: 'none' }); // static weights carry read noise only
    const h = loadSpec('hybrid-trex').attention!;
    assert.equal(h.technology, 'sram');
    assert.equal(sliceCount(h.cells), 8);
    assert.deepEqual(h.readNoise, { kind: 'none' });
    assert.equal(loadSpec('pcm-aihwkit').attention, null); // aihwkit has no K/V crossbars
  });

  it('pcm-lammie: the paper gives no output σ, so it takes aihwkit’s default, in the same units, and says so', () => {
    const lammie = loadSpec('pcm-lammie').spec;
    const aihwkit = loadSpec('pcm-aihwkit').spec;
    assert.deepEqual(lammie.outputNoise, aihwkit.outputNoise);
    // the same units: pcm-lammie maps the tile's max |W| to G_MAX (aihwkit with weight scaling)
    assert.equal(lammie.mapping.scale, 'tile');
    assert.match(lammie.source, /no σ for inference/);
    assert.match(lammie.source, /out_noise 0\.06/);
    // a calibrated conductance range follows the paper: N = 2 inputs, statistics over the signed I
    const r = loadSpec('pcm-lammie', ['mapping.conductanceRange.kind=calibrated']).spec.mapping
      .conductanceRange;
    assert.deepEqual(r, { kind: 'calibrated', sigmas: 3, samples: 2, current: 'signed' });
  });
});

describe('files, --set and overrides', () => {
  it('a YAML file extends a preset and overrides per layer', () => {
    const p = file(
      'chip.yaml',
      'extends: fefet-trex\nadc: { kind: uniform, bits: 4 }\noverrides:\n  - layers: "*.ffnOut"\n    set: { readNoise: { kind: none } }\n',
    );
    const hw = loadSpec(p, ['attention.device.program.sigma=0.05']);
    assert.equal(hw.spec.adc.kind === 'uniform' && hw.spec.adc.bits, 4);
    assert.deepEqual(hw.crossbar('layer.3.ffnOut').readNoise, { kind: 'none' });
    assert.deepEqual(hw.crossbar('layer.3.ffnIn').readNoise, { kind: 'relative', sigma: 0.1 });
    assert.deepEqual(hw.attention!.program, { kind: 'relative', sigma: 0.05 });
    // resolved once: layers with the same overrides share one validated crossbar
    assert.equal(hw.crossbar('layer.7.ffnOut'), hw.crossbar('layer.3.ffnOut'));
    assert.equal(hw.crossbar('layer.7.query'), hw.crossbar('layer.3.ffnIn'));
  });

  it('a file is labelled with its own name, not the preset it extends', () => {
    const p = file('my-chip.yaml', 'extends: rram-clipformer\nadc: { kind: uniform, bits: 5 }\n');
    assert.equal(loadSpec(p).spec.name, 'my-chip.yaml');
    assert.equal(
      loadSpec(file('named.json', '{"extends": "fefet-trex", "name": "chip B"}')).spec.name,
      'chip B',
    );
    assert.equal(loadSpec('rram-clipformer').spec.name, 'rram-clipformer');
  });

  it('--set assignments apply together, in any order; a field set twice to two values is an error', () => {
    const sets = ['dac.range.percentile=99', 'dac.range.kind=calibrated', 'dac.range.samples=4'];
    const want = { kind: 'calibrated', percentile: 99, samples: 4 };
    for (const order of [sets, [...sets].reverse(), [sets[1]!, sets[0]!, sets[2]!]]) {
      const s = loadSpec('pcm-lammie', order).spec;
      assert.deepEqual(s.dac.kind === 'uniform' && s.dac.range, want, order.join(' '));
    }
    assert.equal(loadSpec('pcm-lammie', ['adc.bits=6', 'adc.bits=6']).spec.adc.kind, 'uniform');
    assert.throws(
      () => loadSpec('pcm-lammie', ['adc.bits=6', 'adc.bits=7']),
      /--set:\n {2}✖ adc\.bits: set to 6 and to 7; set each field once/,
    );
  });

  it('an override that matches none of the model’s layers is an error naming it and the layers', () => {
    const p = file(
      'typo.yaml',
      'extends: fefet-trex\noverrides:\n  - { layers: "layr.9.*", set: { adc: { bits: 4 } } }\n',
    );
    const layers = ['layer.0.query', 'layer.0.ffnIn', 'classifier'];
    assert.throws(
      () => loadSpec(p, [], layers),
      (e: Error) =>
        e.message ===
        `${p}:\n  ✖ overrides[0].layers: 'layr.9.*' matches no layer; the layers are layer.0.query, layer.0.ffnIn, classifier`,
    );
    loadSpec(p, ['overrides=[{layers: "layer.0.*", set: {adc: {bits: 4}}}]'], layers);
    loadSpec(p); // without the model's layers, unchecked
  });

  it('a new kind replaces the old variant instead of merging into it', () => {
    const m = mergeSpec({ dac: { kind: 'uniform', bits: 8 } }, { dac: { kind: 'ideal' } });
    assert.deepEqual(m, { dac: { kind: 'ideal' } });
  });

  it('globs match across dots', () => {
    assert.ok(globRegExp('layer.*.ffnIn').test('layer.11.ffnIn'));
    assert.ok(globRegExp('*').test('embeddings.patch'));
    assert.ok(!globRegExp('layer.1.*').test('layer.11.query'));
  });
});

describe('errors name the field, the value and what is allowed', () => {
  const msg = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return (e as Error).message;
    }
    assert.fail('expected an error');
  };
  it('a value out of range', () => {
    assert.equal(
      msg(() => loadSpec('rram-clipformer', ['adc.bits=0'])),
      'preset rram-clipformer with --set adc.bits=0:\n  ✖ adc.bits: 0 is not allowed, use a whole number 1..16',
    );
  });
  it('an unknown field, with a suggestion', () => {
    assert.match(
      msg(() => loadSpec('pcm-aihwkit', ['tile.rowz=3'])),
      /✖ tile\.rowz: unknown field \(did you mean 'rows'\?\)/,
    );
    assert.match(
      msg(() => loadSpec('pcm-aihwkit', ['adc.bitz=3'])),
      /✖ adc\.bitz: unknown field \(did you mean 'bits'\?\)/,
    );
  });
  it('an unknown variant, listing the allowed ones', () => {
    assert.match(
      msg(() => loadSpec('ideal', ['program.kind=gauss'])),
      /✖ program\.kind: "gauss" is not allowed, use one of 'none', 'relative', 'writeSqrt', 'pcm', 'additive'/,
    );
  });
  it('an unknown preset, with a suggestion', () => {
    assert.match(
      msg(() => loadSpec('pcm-aihwkt')),
      /'pcm-aihwkt' is not a preset \(did you mean 'pcm-aihwkit'\?\)/,
    );
  });
  it('inconsistent conductances and a bad nested attention device', () => {
    assert.match(
      msg(() => loadSpec('fefet-trex', ['mapping.gMinUS=20'])),
      /mapping\.gMinUS: 20 is not allowed, use gMinUS < gMaxUS/,
    );
    assert.match(
      msg(() => loadSpec('fefet-trex', ['attention.device.cells.bitsPerCell=9'])),
      /attention\.device:\n {2}✖ cells\.bitsPerCell: 9 is not allowed, use a whole number 1\.\.8/,
    );
  });
  it('a file that cannot be read or parsed', () => {
    assert.match(
      msg(() => loadSpec('/nowhere/chip.yaml')),
      /\/nowhere\/chip\.yaml: cannot read: ENOENT/,
    );
    assert.match(
      msg(() => loadSpec(file('bad.yaml', 'adc: [1,'))),
      /bad\.yaml:\n {2}✖ not valid YAML\/JSON/,
    );
    assert.match(
      msg(() => loadSpec(file('x.json', '{"extends": "rram"}'))),
      /extends:\n {2}✖ 'rram' is not a preset/,
    );
  });
});
