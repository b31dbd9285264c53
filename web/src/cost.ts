/**
 * The cost panel: energy, delay, area and their breakdown for a standard model's shapes on the
 * spec in the form, by the functions `xbar cost` uses (cost, costJson, breakdownChart) and drawn
 * from the same Vega-Lite figure the CLI writes as SVG.
 */
import type { ResolvedSpec } from '../../src/analog/resolve.js';
import { cost } from '../../src/cost/cost.js';
import { noCostReason } from '../../src/cost/mapping.js';
import { breakdownChart, costJson } from '../../src/cost/report.js';
import { namedShape, SHAPE_NAMES } from '../../src/cost/shapes.js';
import { toSvg } from '../../src/report/svg.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const modelSelect = $<HTMLSelectElement>('cost-model');
const tokensInput = $<HTMLInputElement>('cost-tokens');
const status = $<HTMLElement>('cost-status');
const totals = $<HTMLTableElement>('cost-totals');
const chart = $<HTMLElement>('cost-chart');

let spec: ResolvedSpec | null = null;
/** The cost pinned as A ("compare with this"): its spec's name and totals, for the same model. */
let pinned: { name: string; model: string; tokens: string; json: Record<string, unknown> } | null = null;
let current: Record<string, unknown> | null = null;
let svg = '';
let drawn = 0;

const ROWS: [key: string, label: string][] = [
  ['energy_mJ', 'energy (mJ)'],
  ['delay_ms', 'delay (ms)'],
  ['area_mm2', 'area (mm²)'],
  ['edap', 'EDAP (mJ·ms·mm²)'],
  ['tops_per_w', 'TOPS/W'],
  ['tops_per_mm2', 'TOPS/mm²'],
  ['crossbars', 'crossbars'],
];

const fmt = (v: unknown): string =>
  typeof v === 'number' ? (Number.isInteger(v) ? v.toLocaleString('en') : v.toPrecision(4)) : String(v);

function message(text: string, kind: 'error' | 'note'): void {
  current = null;
  status.className = kind;
  status.textContent = text;
  totals.replaceChildren();
  chart.replaceChildren();
  svg = '';
  delete chart.dataset['json'];
}

async function draw(): Promise<void> {
  const turn = ++drawn;
  if (!spec) return message('the spec above is not valid', 'note');
  const why = noCostReason(spec);
  if (why) return message(`no cost: ${why}`, 'note');
  const text = tokensInput.value.trim();
  const tokens = Number(text);
  if (text !== '' && !(Number.isSafeInteger(tokens) && tokens >= 1))
    return message(`tokens: ${JSON.stringify(text)} is not allowed, use a whole number ≥ 1`, 'error');
  try {
    const shape = namedShape(modelSelect.value, text === '' ? {} : { tokens });
    if (!shape) return message(`no model ${modelSelect.value}`, 'error');
    const report = cost(shape, spec);
    const json = costJson(report);
    status.className = '';
    status.textContent = `${shape.name}, ${shape.tokens} tokens, on ${spec.spec.name}`;
    current = json;
    // A beside B where a spec is pinned for this model and token count: the ratio B / A per row
    const a = pinned && pinned.model === modelSelect.value && pinned.tokens === text ? pinned : null;
    const cells = (...texts: string[]) =>
      texts.map((t, i) => {
        const c = document.createElement(i === 0 ? 'th' : 'td');
        c.textContent = t;
        return c;
      });
    const head = document.createElement('tr');
    head.append(...cells('', ...(a ? [`A: ${a.name}`, `B: ${spec.spec.name}`, 'B / A'] : [spec.spec.name])));
    totals.replaceChildren(
      head,
      ...ROWS.map(([key, label]) => {
        const tr = document.createElement('tr');
        const b = json[key];
        const was = a?.json[key];
        tr.append(
          ...cells(
            label,
            ...(a
              ? [fmt(was), fmt(b), typeof b === 'number' && typeof was === 'number' && was !== 0 ? `${(b / was).toFixed(3)}×` : '']
              : [fmt(b)]),
          ),
        );
        return tr;
      }),
    );
    const drawnSvg = await toSvg(breakdownChart(report));
    if (turn !== drawn) return; // a later change has drawn since
    svg = drawnSvg;
    chart.innerHTML = svg;
    chart.dataset['json'] = JSON.stringify(json);
  } catch (e) {
    message((e as Error).message, 'error');
  }
}

/** The panel on `spec` (null while the form's spec is not valid). */
export function showCost(next: ResolvedSpec | null): void {
  spec = next;
  void draw();
}

for (const name of SHAPE_NAMES) modelSelect.append(new Option(name, name, false, name === 'deit-s'));
modelSelect.addEventListener('change', () => void draw());
tokensInput.addEventListener('change', () => void draw());
$<HTMLButtonElement>('pin').addEventListener('click', () => {
  if (!current || !spec) return;
  pinned = { name: spec.spec.name, model: modelSelect.value, tokens: tokensInput.value.trim(), json: current };
  void draw();
});
/** Offers `blob` as a download named `name`. */
function save(blob: Blob, name: string): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.click();
  URL.revokeObjectURL(a.href);
}

/** The per-stage rows of a cost report (costJson's `stages`) as CSV. */
function stagesCsv(json: Record<string, unknown>): string {
  const rows = json['stages'] as Record<string, unknown>[];
  const keys = ['layer', 'stage', 'macs', 'crossbars', 'energy_pJ', 'delay_ns', 'area_mm2'];
  const cell = (v: unknown) => (v === null || v === undefined ? '' : /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
  return `${keys.join(',')}\n${rows.map((r) => keys.map((k) => cell(r[k])).join(',')).join('\n')}\n`;
}

const base = () => `cost-${modelSelect.value}-${spec?.spec.name ?? 'spec'}`;
$<HTMLButtonElement>('export-svg').addEventListener('click', () => {
  if (svg) save(new Blob([svg], { type: 'image/svg+xml' }), `${base()}.svg`);
});
$<HTMLButtonElement>('export-png').addEventListener('click', async () => {
  if (!svg) return;
  // the SVG drawn onto a canvas at twice its size, as the CLI's PNGs are
  const image = new Image();
  image.src = URL.createObjectURL(new Blob([svg], { type: 'image/svg+xml' }));
  await image.decode();
  const canvas = document.createElement('canvas');
  canvas.width = image.width * 2;
  canvas.height = image.height * 2;
  const ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
  URL.revokeObjectURL(image.src);
  canvas.toBlob((png) => png && save(png, `${base()}.png`), 'image/png');
});
$<HTMLButtonElement>('export-json').addEventListener('click', () => {
  if (current) save(new Blob([`${JSON.stringify(current, null, 2)}\n`], { type: 'application/json' }), `${base()}.json`);
});
$<HTMLButtonElement>('export-csv').addEventListener('click', () => {
  if (current) save(new Blob([stagesCsv(current)], { type: 'text/csv' }), `${base()}.csv`);
});
