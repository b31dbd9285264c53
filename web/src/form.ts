/**
 * A form generated from the hardware spec's schema (the zod schema as JSON Schema): every field
 * with its description (which carries the unit), its default, and a control for its type. A
 * field whose variants are told apart by `kind` gets a select of the kinds and the fields of the
 * one chosen; a field the form has no control for (lists, per-layer overrides) is edited as YAML.
 */
import YAML from 'yaml';

export type Json = Record<string, unknown>;
export interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  oneOf?: Schema[];
  anyOf?: Schema[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The variants of a field told apart by a `kind` constant, or undefined. */
function kinds(s: Schema): Map<string, Schema> | undefined {
  const options = s.oneOf ?? s.anyOf;
  if (!options?.length) return undefined;
  const out = new Map<string, Schema>();
  for (const o of options) {
    const k = o.properties?.['kind']?.const;
    if (typeof k !== 'string') return undefined;
    out.set(k, o);
  }
  return out;
}

/** What the number may be, in words (the schema's bounds). */
function bounds(s: Schema): string {
  const lo = s.exclusiveMinimum !== undefined ? `> ${s.exclusiveMinimum}` : s.minimum !== undefined ? `≥ ${s.minimum}` : '';
  const hi = s.exclusiveMaximum !== undefined ? `< ${s.exclusiveMaximum}` : s.maximum !== undefined ? `≤ ${s.maximum}` : '';
  const kind = s.type === 'integer' ? 'whole number' : 'number';
  return [kind, lo, hi].filter(Boolean).join(' ');
}

/** The value typed into a number field: a number where it reads as one, else the text (validation names it). */
const numberOf = (text: string): unknown => (text.trim() !== '' && Number.isFinite(Number(text)) ? Number(text) : text);

export interface FormHandlers {
  /** A field changed: its path and new value (undefined removes it). */
  set(path: string[], value: unknown): void;
}

/** Renders `value` (a spec object) under `schema` into `root`, replacing what was there. */
export function renderForm(root: HTMLElement, schema: Schema, value: Json, on: FormHandlers): void {
  root.replaceChildren(...fields(schema, value, [], on));
}

function fields(schema: Schema, value: Json, path: string[], on: FormHandlers): HTMLElement[] {
  const out: HTMLElement[] = [];
  for (const [key, s] of Object.entries(schema.properties ?? {})) {
    if (key === 'kind' && path.length > 0) continue; // the variant's select shows it
    out.push(field(key, s, value[key], [...path, key], on));
  }
  return out;
}

function describe(el: HTMLElement, s: Schema, extra = ''): void {
  const parts = [s.description, extra, s.default !== undefined && !isObject(s.default) ? `default ${JSON.stringify(s.default)}` : '']
    .filter(Boolean)
    .join(' · ');
  if (!parts) return;
  const p = document.createElement('small');
  p.textContent = parts;
  el.append(p);
}

function field(key: string, s: Schema, v: unknown, path: string[], on: FormHandlers): HTMLElement {
  const id = path.join('.');
  const variants = kinds(s);
  if (variants || (s.type === 'object' && s.properties)) {
    const set = document.createElement('fieldset');
    set.dataset['path'] = id;
    const legend = document.createElement('legend');
    legend.textContent = key;
    set.append(legend);
    describe(set, s);
    const obj = isObject(v) ? v : {};
    if (variants) {
      const select = document.createElement('select');
      select.dataset['path'] = `${id}.kind`;
      select.setAttribute('aria-label', `${id}.kind`);
      for (const k of variants.keys()) select.append(new Option(k, k, false, obj['kind'] === k));
      select.addEventListener('change', () => on.set(path, { kind: select.value }));
      const label = document.createElement('label');
      label.append('kind ', select);
      set.append(label);
      const chosen = variants.get(String(obj['kind']));
      if (chosen) {
        describe(set, chosen);
        set.append(...fields(chosen, obj, path, on));
      }
    } else set.append(...fields(s, obj, path, on));
    return set;
  }
  const label = document.createElement('label');
  label.className = 'field';
  const name = document.createElement('span');
  name.textContent = key;
  label.append(name);
  let control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
  if (s.enum) {
    const select = document.createElement('select');
    for (const e of s.enum) select.append(new Option(String(e), String(e), false, v === e));
    select.addEventListener('change', () => on.set(path, select.value));
    control = select;
  } else if (s.type === 'number' || s.type === 'integer') {
    const input = document.createElement('input');
    input.type = 'text';
    input.inputMode = 'decimal';
    input.value = v === undefined ? '' : String(v);
    input.addEventListener('change', () => on.set(path, input.value === '' ? undefined : numberOf(input.value)));
    control = input;
  } else if (s.type === 'boolean') {
    const input = document.createElement('input');
    input.type = 'checkbox';
    input.checked = v === true;
    input.addEventListener('change', () => on.set(path, input.checked));
    control = input;
  } else if (s.type === 'string') {
    const input = document.createElement('input');
    input.type = 'text';
    input.value = typeof v === 'string' ? v : '';
    input.addEventListener('change', () => on.set(path, input.value));
    control = input;
  } else {
    // lists, maps and unions the form has no control for: YAML, parsed on change
    const area = document.createElement('textarea');
    area.rows = 2;
    area.value = v === undefined ? '' : YAML.stringify(v).trimEnd();
    area.addEventListener('change', () => {
      try {
        on.set(path, area.value.trim() === '' ? undefined : YAML.parse(area.value));
      } catch {
        on.set(path, area.value); // validation then names the field and the text
      }
    });
    control = area;
  }
  control.dataset['path'] = id;
  control.setAttribute('aria-label', id);
  label.append(control);
  describe(label, s, s.type === 'number' || s.type === 'integer' ? bounds(s) : '');
  return label;
}
