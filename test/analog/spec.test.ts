/** Hardware specs: presets, files, overrides, and error messages that name field, value and range. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  attentionCrossbar,
  crossbarFor,
  globMatch,
  loadSpec,
  mergeSpec,
  PRESET_NAMES,
  specDiff,
} from '../../src/analog/presets.js';
import { sliceCount } from '../../src/analog/spec.js';

const file = (name: string, text: string) => {
  const p = join(mkdtempSync(join(tmpdir(), 'xbar-spec-')), name);
  writeFileSync(p, text);
  return p;
};

describe('presets', () => {
  it('every preset resolves, with its attention crossbars', () => {
    for (const n of PRESET_NAMES) {
      const s = loadSpec(n);
      assert.equal(s.name, n);
      attentionCrossbar(s);
    }
  });

  it('ideal differs from the defaults only in its labels', () => {
    assert.deepEqual(Object.keys(specDiff(loadSpec('ideal'))).sort(), ['description', 'name', 'source']);
  });

  it('encode the papers’ settings', () => {
    const r = loadSpec('rram-clipformer');
    assert.deepEqual([r.tile.rows, r.tile.cols, r.tile.split], [64, 64, 'fixed']);
    assert.equal(sliceCount(r.cells), 4); // 8-bit weights over 2-bit cells
    assert.deepEqual(attentionCrossbar(r)!.program, { kind: 'writeSqrt', gamma: 3, sigma: 0.1 });
    assert.deepEqual(r.program, { kind: 'none' }); // static weights carry read noise only
    const h = attentionCrossbar(loadSpec('hybrid-trex'))!;
    assert.equal(h.technology, 'sram');
    assert.equal(sliceCount(h.cells), 8);
    assert.deepEqual(h.readNoise, { kind: 'none' });
    assert.equal(attentionCrossbar(loadSpec('pcm-aihwkit')), null); // aihwkit has no K/V crossbars
  });
});

describe('files, --set and overrides', () => {
  it('a YAML file extends a preset and overrides per layer', () => {
    const p = file(
      'chip.yaml',
      'extends: fefet-trex\nadc: { kind: uniform, bits: 4 }\noverrides:\n  - layers: "*.ffnOut"\n    set: { readNoise: { kind: none } }\n',
    );
    const s = loadSpec(p, ['attention.device.program.sigma=0.05']);
    assert.equal(s.adc.kind === 'uniform' && s.adc.bits, 4);
    assert.deepEqual(crossbarFor(s, 'layer.3.ffnOut').readNoise, { kind: 'none' });
    assert.deepEqual(crossbarFor(s, 'layer.3.ffnIn').readNoise, { kind: 'relative', sigma: 0.1 });
    assert.deepEqual(attentionCrossbar(s)!.program, { kind: 'relative', sigma: 0.05 });
  });

  it('a new kind replaces the old variant instead of merging into it', () => {
    const m = mergeSpec({ dac: { kind: 'uniform', bits: 8 } }, { dac: { kind: 'ideal' } });
    assert.deepEqual(m, { dac: { kind: 'ideal' } });
  });

  it('globs match across dots', () => {
    assert.ok(globMatch('layer.*.ffnIn', 'layer.11.ffnIn'));
    assert.ok(globMatch('*', 'embeddings.patch'));
    assert.ok(!globMatch('layer.1.*', 'layer.11.query'));
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
      /\/nowhere\/chip\.yaml:\n {2}✖ cannot read: ENOENT/,
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
