/**
 * The app: pick a preset or edit the hardware spec in a form made from its schema, with the CLI's
 * validation messages (the spec is checked as `xbar` checks a spec file), YAML export and import,
 * and a link that reproduces the state.
 */
import YAML from 'yaml';
import { z } from 'zod';
import { HardwareSpec } from '../../src/analog/spec.js';
import { PRESET_NAMES, PRESETS, specDiff, specFromPreset, specFromText } from '../../src/analog/spec-text.js';
import { showCost } from './cost.js';
import { type Json, renderForm, type Schema } from './form.js';
import { decodeShared, encodeShared } from './share.js';

declare const __XBAR_VERSION__: string;
const VERSION = __XBAR_VERSION__;
/** The name a spec is checked under: as `xbar hw show spec.yaml` would read the exported file. */
const FILE = 'spec.yaml';

const schema = z.toJSONSchema(HardwareSpec, { io: 'input', unrepresentable: 'any' }) as Schema;
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const form = $<HTMLFormElement>('spec');
const status = $<HTMLElement>('status');
const yamlView = $<HTMLPreElement>('yaml');
const presetSelect = $<HTMLSelectElement>('preset');

let state: Json = {};
let model = 'vit-fmnist';
let seed = 0;

/** The spec as YAML: the fields that differ from the defaults when it is valid, else as typed. */
function specYaml(): string {
  try {
    const resolved = specFromText(YAML.stringify(state), FILE);
    return YAML.stringify({ name: resolved.spec.name, ...specDiff(resolved.spec) });
  } catch {
    return YAML.stringify(state);
  }
}

/** Checks the state as the CLI checks a spec file; shows the message or that it is valid. */
function validate(): boolean {
  try {
    const r = specFromText(YAML.stringify(state), FILE);
    status.className = 'ok';
    status.textContent = `valid: ${r.spec.name}${r.attention ? ', K and V on crossbars' : ', attention digital'}`;
    showCost(r);
    return true;
  } catch (e) {
    status.className = 'error';
    status.textContent = (e as Error).message;
    showCost(null);
    return false;
  }
}

function show(): void {
  renderForm(form, schema, state, { set });
  // the preset it is, by name; a spec of its own otherwise
  presetSelect.value = (PRESET_NAMES as readonly unknown[]).includes(state['name']) ? String(state['name']) : '';
  refresh();
}

function refresh(): void {
  const ok = validate();
  yamlView.textContent = specYaml();
  document.body.dataset['valid'] = String(ok);
}

function set(path: string[], value: unknown): void {
  let at: Json = state;
  for (const key of path.slice(0, -1)) {
    const next = at[key];
    at = at[key] = typeof next === 'object' && next !== null && !Array.isArray(next) ? (next as Json) : {};
  }
  const last = path[path.length - 1] as string;
  if (value === undefined) delete at[last];
  else at[last] = value;
  // a new kind brings its own fields: fill their defaults and draw them
  if (last === 'kind' || (typeof value === 'object' && value !== null && 'kind' in value)) {
    try {
      state = structuredClone(specFromText(YAML.stringify(state), FILE).spec) as Json;
    } catch {
      // left as typed: the message says what is wrong
    }
    show();
  } else refresh();
}

function loadPreset(name: string): void {
  state = structuredClone(specFromPreset(name).spec) as Json;
  show();
}

function loadYaml(text: string, file: string): void {
  try {
    state = structuredClone(specFromText(text, file).spec) as Json;
    show();
  } catch (e) {
    status.className = 'error';
    status.textContent = (e as Error).message;
  }
}

presetSelect.append(new Option('(a spec of its own)', ''));
for (const name of PRESET_NAMES) presetSelect.append(new Option(`${name} — ${PRESETS[name].summary}`, name));
presetSelect.addEventListener('change', () => {
  if (presetSelect.value) loadPreset(presetSelect.value);
});

$<HTMLButtonElement>('export').addEventListener('click', () => {
  const blob = new Blob([specYaml()], { type: 'application/yaml' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `${String(state['name'] ?? 'spec')}.yaml`;
  a.click();
  URL.revokeObjectURL(a.href);
});

$<HTMLInputElement>('import').addEventListener('change', async (ev) => {
  const file = (ev.target as HTMLInputElement).files?.[0];
  if (file) loadYaml(await file.text(), file.name);
});

$<HTMLButtonElement>('share').addEventListener('click', async () => {
  const spec = YAML.parse(specYaml()) as Json;
  const url = `${location.href.split('#')[0]}#${encodeShared({ spec, model, seed, version: VERSION })}`;
  history.replaceState(null, '', url);
  try {
    await navigator.clipboard.writeText(url);
  } catch {
    // no clipboard (an insecure origin): the address bar holds the link
  }
  status.dataset['link'] = url;
});

$<HTMLElement>('version').textContent = `xbar ${VERSION}`;

const shared = decodeShared(location.hash);
if (typeof shared === 'object') {
  model = shared.model;
  seed = shared.seed;
  loadYaml(YAML.stringify(shared.spec), FILE);
  if (shared.version !== VERSION)
    status.textContent += ` (the link was made by xbar ${shared.version}; this is ${VERSION})`;
} else {
  loadPreset('rram-clipformer');
  if (typeof shared === 'string') {
    status.className = 'error';
    status.textContent = shared;
  }
}
