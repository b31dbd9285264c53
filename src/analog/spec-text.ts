/**
 * Named hardware specs, each a cited diff from the defaults, and user specs from text: a preset
 * name, or YAML/JSON (which may `extends` a preset), plus `--set` overrides. No file access here,
 * so a browser uses the same presets, parsing and messages; presets.ts reads spec files.
 * resolve.ts turns a spec into crossbars.
 */
import YAML from 'yaml';
import type { Model } from '../models/index.js';
import { InputError } from '../util/errors.js';
import { closest, parseWith } from '../util/validate.js';
import { isObject, type Json, mergeSpec, type ResolvedSpec, resolveSpec } from './resolve.js';
import { HardwareSpec, type HardwareSpecInput } from './spec.js';

interface Preset {
  /** One line for `xbar hw list`. */
  summary: string;
  spec: HardwareSpecInput;
}

/** The 32 nm crossbars of the ClipFormer and TReX papers: 64×64, 2-bit cells for 8-bit weights, 8-bit bit-serial inputs, 6-bit ADC. */
const crossbar32nm = {
  tile: { rows: 64, cols: 64, split: 'fixed' },
  mapping: { gMinUS: 0.1, gMaxUS: 10 },
  cells: { kind: 'quantized', bitsPerCell: 2, weightBits: 8 },
  dac: { kind: 'uniform', bits: 8, mode: 'bitSerial', range: { kind: 'dynamic' } },
  adc: { kind: 'uniform', bits: 6, range: { kind: 'full' } },
} as const;

const rramClipformer: HardwareSpecInput = {
  ...crossbar32nm,
  name: 'rram-clipformer',
  description: 'RRAM 32 nm crossbars with K and V written per input (ClipFormer)',
  source: 'ClipFormer, Bhattacharjee et al., TCAD 2024 (arXiv 2402.02586), §IV-A',
  technology: 'rram',
  readNoise: { kind: 'relative', sigma: 0.05 },
  attention: { kind: 'crossbar', device: { program: { kind: 'writeSqrt', gamma: 3, sigma: 0.1 } } },
};

const fefetTrex: HardwareSpecInput = {
  ...crossbar32nm,
  name: 'fefet-trex',
  description: 'FeFET crossbars for every matrix, K and V written per input (TReX baseline)',
  source:
    'TReX, Moitra et al., TETC 2024 (arXiv 2408.12742), §V: 32 nm, 64×64, 2 bits/cell, R_on/R_off 100 kΩ/10 MΩ',
  technology: 'fefet',
  program: { kind: 'relative', sigma: 0.2 },
  readNoise: { kind: 'relative', sigma: 0.1 },
  attention: { kind: 'crossbar', device: {} },
};

/** 1-bit SRAM cells: only ADC quantisation is non-ideal. */
const sramCrossbar = {
  technology: 'sram',
  mapping: { gMinUS: 0, gMaxUS: 10 },
  cells: { kind: 'quantized', bitsPerCell: 1, weightBits: 8 },
  program: { kind: 'none' },
  readNoise: { kind: 'none' },
} as const;

/** The PCM statistical model on 512×512 tiles (aihwkit's), shared by the PCM presets. */
const pcmBase = {
  technology: 'pcm',
  tile: { rows: 512, cols: 512, split: 'even' },
  mapping: { gMinUS: 0, gMaxUS: 25, scale: 'tile' },
  cells: { kind: 'analog' },
  program: { kind: 'pcm' },
  drift: { kind: 'pcm' },
  driftCompensation: 'global',
} as const;

export const PRESETS = {
  ideal: {
    summary: 'every non-ideality off: must equal the floating-point model',
    spec: { name: 'ideal', description: 'no non-idealities', source: 'reference' },
  },
  'rram-clipformer': {
    summary: 'RRAM 64×64, 2 b/cell, 8-bit bit-serial inputs, 6-bit ADC, read σ 5%, K/V write noise γ=3',
    spec: rramClipformer,
  },
  'fefet-trex': {
    summary: 'FeFET 64×64, 2 b/cell, read σ 10%, write σ 20%, K/V on crossbars (TReX baseline)',
    spec: fefetTrex,
  },
  'sram-trex': {
    summary: 'SRAM 64×64, 1 b/cell, ADC quantisation only (TReX)',
    spec: {
      ...fefetTrex,
      ...sramCrossbar,
      name: 'sram-trex',
      description: 'SRAM crossbars for every matrix (TReX)',
    },
  },
  'hybrid-trex': {
    summary: 'FeFET for weights, SRAM for QKᵀ and S·V (TReX hybrid)',
    spec: {
      ...fefetTrex,
      name: 'hybrid-trex',
      description: 'FeFET crossbars for static weights; QKᵀ and S·V on 1-bit SRAM crossbars (TReX hybrid)',
      attention: { kind: 'crossbar', device: sramCrossbar },
    },
  },
  'pcm-aihwkit': {
    summary:
      'PCM as aihwkit 1.x InferenceRPUConfig (iterative bound management) + PCMLikeNoiseModel + global drift compensation',
    spec: {
      ...pcmBase,
      name: 'pcm-aihwkit',
      description: 'aihwkit 1.x defaults for inference on PCM; attention products digital as in aihwkit',
      source:
        'IBM aihwkit 1.0 (InferenceRPUConfig, PCMLikeNoiseModel, GlobalDriftCompensation); Nandakumar et al. 2019. ' +
        'weight_scaling_omega 0 (its default): the MVM sees W unscaled; forward.bound_management ITERATIVE with max_bm_factor 1000, max_bm_res 0.25',
      mapping: { gMinUS: 0, gMaxUS: 25, scale: 'none' },
      outputNoise: { kind: 'gaussian', sigma: 0.06 },
      dac: { kind: 'uniform', bits: 7, mode: 'pwm', range: { kind: 'dynamic' } },
      adc: {
        kind: 'uniform',
        bits: 9,
        range: { kind: 'fixed', max: 12 },
        boundManagement: { kind: 'iterative', maxFactor: 1000, minInputLevels: 4 },
      },
    },
  },
  'pcm-lammie': {
    summary:
      'PCM 512×512, 8-bit PWM inputs, 8-bit ADC saturating at 10 devices, t = 1 h (post-training paper)',
    spec: {
      ...pcmBase,
      name: 'pcm-lammie',
      description: 'the post-training optimisation paper’s PCM setting (IR drop not modelled)',
      source:
        'Lammie et al., ISCAS 2024 (arXiv 2401.09859), §III. The paper names output noise but gives no σ for inference, ' +
        'nor input noise (its Eq. 1 has σ_inp); assumed here: aihwkit’s InferenceRPUConfig defaults, the simulator of its ' +
        'PCM model, out_noise 0.06 in units of one device at G_MAX at full input (its tile max maps to G_MAX) and inp_noise 0',
      outputNoise: { kind: 'gaussian', sigma: 0.06 },
      dac: { kind: 'uniform', bits: 8, mode: 'pwm', range: { kind: 'dynamic' } },
      adc: { kind: 'uniform', bits: 8, range: { kind: 'fixed', max: 10 } },
      timeS: 3600,
    },
  },
} as const satisfies Record<string, Preset>;

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

/** `path=value` with value read as YAML (numbers, booleans, strings, inline objects). */
function parseSet(assignment: string): Json {
  const at = assignment.indexOf('=');
  if (at <= 0) throw new InputError('--set', [`'${assignment}': expected field.path=value, e.g. adc.bits=6`]);
  const path = assignment.slice(0, at).trim().split('.');
  let value: unknown = YAML.parse(assignment.slice(at + 1));
  for (const key of path.reverse()) value = { [key]: value };
  return value as Json;
}

/**
 * The `--set` assignments as one object, applied to the spec together: their order does not
 * matter (`dac.range.percentile=99` may come before `dac.range.kind=calibrated`), so a field set
 * twice to different values is an error.
 */
function combineSets(sets: readonly string[]): Json {
  const combine = (into: Json, add: Json, path: string): void => {
    for (const [k, v] of Object.entries(add)) {
      const was = into[k];
      if (isObject(was) && isObject(v)) combine(was, v, `${path}${k}.`);
      else if (was === undefined || JSON.stringify(was) === JSON.stringify(v)) into[k] = v;
      else
        throw new InputError('--set', [
          `${path}${k}: set to ${JSON.stringify(was)} and to ${JSON.stringify(v)}; set each field once`,
        ]);
    }
  };
  const out: Json = {};
  for (const s of sets) combine(out, parseSet(s), '');
  return out;
}

export function presetOrThrow(name: string, where: string): Json {
  const p = (PRESETS as Record<string, Preset>)[name];
  if (!p) {
    const near = closest(name, PRESET_NAMES);
    throw new InputError(where, [
      `'${name}' is not a preset${near ? ` (did you mean '${near}'?)` : ''}; presets: ${PRESET_NAMES.join(', ')}`,
    ]);
  }
  return p.spec as Json;
}

/**
 * A spec from YAML/JSON text (a spec file's contents; `file` names it in messages and, unless the
 * spec names itself, names the spec), then `--set` overrides, validated and resolved.
 */
export function specFromText(
  text: string,
  file: string,
  sets: readonly string[] = [],
  layers?: Model | readonly string[],
): ResolvedSpec {
  let parsed: unknown;
  try {
    parsed = YAML.parse(text);
  } catch (e) {
    throw new InputError(file, [`not valid YAML/JSON: ${(e as Error).message}`]);
  }
  if (!isObject(parsed)) throw new InputError(file, ['expected a mapping of spec fields']);
  const { extends: base, ...rest } = parsed;
  const raw = base === undefined ? rest : mergeSpec(presetOrThrow(String(base), `${file}: extends`), rest);
  raw['name'] = rest['name'] ?? file.split(/[\\/]/).pop();
  return withSets(raw, file, sets, layers);
}

/** A preset by name, then `--set` overrides, validated and resolved. */
export function specFromPreset(
  name: string,
  sets: readonly string[] = [],
  layers?: Model | readonly string[],
): ResolvedSpec {
  return withSets(presetOrThrow(name, '--hw'), `preset ${name}`, sets, layers);
}

function withSets(raw: Json, where: string, sets: readonly string[], layers?: Model | readonly string[]) {
  let spec = raw;
  let at = where;
  if (sets.length) {
    spec = mergeSpec(spec, combineSets(sets));
    at += ` with --set ${sets.join(' ')}`;
  }
  return resolveSpec(parseWith(HardwareSpec, spec, at), layers, at);
}

/** The fields of `spec` that differ from the defaults (what `xbar hw show` prints). */
export function specDiff(spec: HardwareSpec): Json {
  const defaults = HardwareSpec.parse({}) as Json;
  const diff = (a: unknown, d: unknown): unknown => {
    if (isObject(a) && isObject(d) && a['kind'] === d['kind']) {
      const out: Json = {};
      for (const [k, v] of Object.entries(a)) {
        const sub = diff(v, d[k]);
        if (sub !== undefined) out[k] = sub;
      }
      return Object.keys(out).length
        ? a['kind'] !== undefined
          ? { kind: a['kind'], ...out }
          : out
        : undefined;
    }
    return JSON.stringify(a) === JSON.stringify(d) ? undefined : a;
  };
  return (diff(spec, defaults) as Json) ?? {};
}
