/**
 * K/V outliers that leave the network's function unchanged: in every attention head, scale the
 * channel of K with the largest weight norm by s and the same channel of Q by 1/s (each score
 * q·k is unchanged), and the same for V with the matching input column of the attention output
 * projection (each output is unchanged). With s a power of two every rescaled number is exact,
 * so the ideal model computes the same logits.
 *
 * Why: ClipFormer's clip (β < 1) is meant for models whose K and V have a few large channels
 * (DeiT-S's do); written into a crossbar scaled to its largest value, the outlier pushes every
 * other value to low conductances, where the write noise weighs most relative to the value. A
 * small model trained on a small task has no such channels. Injecting them this way measures
 * the outlier ratio at which clipping starts to pay without retraining, and without changing
 * what the ideal network computes. On hardware the rescaled Q and output-projection weights
 * are also quantised differently; docs/reproduction.md says what that adds.
 */
import type { HostArray } from '../graph/ndarray.js';
import { InputError } from '../util/errors.js';

export interface KvOutlierOptions {
  /** Factor of the outlier channels, a power of two > 1 (exact rescaling). */
  scale: number;
  /** Outlier channels per head. */
  channels: number;
  /** Which of K and V get the outliers. */
  on: readonly ('key' | 'value')[];
}

/** The channels chosen, per encoder layer: head-relative indices of K's and V's outliers. */
export interface KvOutlierChoice {
  layer: number;
  key: number[][];
  value: number[][];
}

// HF names of the attention tensors, for both families (ViT: attention.attention.*, BERT and
// RoBERTa: attention.self.*); the prefix ends at the layer's `attention`.
const QKV = /^(.*\.encoder\.layer\.(\d+)\.attention)\.(?:attention|self)\.(query|key|value)\.(weight|bias)$/;

/** Checks the options; `where` is the flag or field they came from. */
export function checkKvOutlierOptions(o: KvOutlierOptions, headDim: number, where: string): void {
  const problems: string[] = [];
  if (!(o.scale > 1) || !Number.isInteger(Math.log2(o.scale)))
    problems.push(
      `scale: ${o.scale} is not allowed, use a power of two above 1 (2, 4, 8, …) so that the rescaling is exact`,
    );
  if (!Number.isInteger(o.channels) || o.channels < 1 || o.channels > headDim)
    problems.push(
      `channels: ${o.channels} is not allowed, use a whole number from 1 to the head size ${headDim}`,
    );
  if (o.on.length === 0) problems.push("on: name 'key', 'value' or both");
  if (problems.length > 0) throw new InputError(where, problems);
}

/**
 * A copy of an HF tensor map (names → [out, in] weights) with outliers injected in every layer's
 * K and/or V; `heads` splits the hidden size. The map's other tensors are shared, not copied.
 */
export function injectKvOutliers(
  tensors: Readonly<Record<string, HostArray>>,
  heads: number,
  o: KvOutlierOptions,
  where = 'kv-outliers',
): { tensors: Record<string, HostArray>; chosen: KvOutlierChoice[] } {
  const layers = new Map<number, { prefix: string; names: Map<string, string> }>();
  for (const name of Object.keys(tensors)) {
    const m = QKV.exec(name);
    if (!m) continue;
    const layer = Number(m[2]);
    const entry = layers.get(layer) ?? { prefix: m[1] as string, names: new Map() };
    entry.names.set(`${m[3]}.${m[4]}`, name);
    layers.set(layer, entry);
  }
  if (layers.size === 0)
    throw new InputError(where, ['the model has no attention query/key/value tensors under HF names']);

  const out: Record<string, HostArray> = { ...tensors };
  const chosen: KvOutlierChoice[] = [];
  for (const [layer, { prefix, names }] of [...layers].sort((a, b) => a[0] - b[0])) {
    const nameOf = (key: string): string =>
      key === 'projection' ? `${prefix}.output.dense.weight` : (names.get(key) ?? `${prefix}'s ${key}`);
    const get = (key: string): HostArray => {
      const t = tensors[nameOf(key)];
      if (!t) throw new InputError(where, [`layer ${layer}: tensor ${nameOf(key)} not found`]);
      return t;
    };
    const keyW = get('key.weight');
    const [d, inputs] = keyW.shape as [number, number];
    if (d % heads !== 0)
      throw new InputError(where, [`layer ${layer}: hidden ${d} is not a multiple of ${heads} heads`]);
    const headDim = d / heads;
    checkKvOutlierOptions(o, headDim, where);
    const choice: KvOutlierChoice = { layer, key: [], value: [] };
    for (const kind of ['key', 'value'] as const) {
      if (!o.on.includes(kind)) continue;
      const picks = Array.from({ length: heads }, (_, h) =>
        largestRows(get(`${kind}.weight`), h * headDim, headDim, inputs, o.channels),
      );
      choice[kind] = picks;
      const rows = picks.flatMap((p, h) => p.map((c) => h * headDim + c));
      // the tensor's rows grow by s; its partner (Q's rows, or the projection's input columns)
      // shrinks by 1/s where it meets them. A model without biases has none to scale.
      const rescale = (key: string, f: number, along: typeof scaleRows) => {
        if (key === 'projection' || names.has(key)) out[nameOf(key)] = along(get(key), rows, f);
      };
      rescale(`${kind}.weight`, o.scale, scaleRows);
      rescale(`${kind}.bias`, o.scale, scaleRows);
      if (kind === 'key') {
        rescale('query.weight', 1 / o.scale, scaleRows);
        rescale('query.bias', 1 / o.scale, scaleRows);
      } else rescale('projection', 1 / o.scale, scaleColumns);
    }
    chosen.push(choice);
  }
  return { tensors: out, chosen };
}

/** The `n` rows of [rows, cols] weight `w` from `start` (a head's block) with the largest L2 norms, head-relative. */
function largestRows(w: HostArray, start: number, count: number, cols: number, n: number): number[] {
  const norms = Array.from({ length: count }, (_, r) => {
    let s = 0;
    for (let c = 0; c < cols; c++) {
      const v = Number(w.data[(start + r) * cols + c]);
      s += v * v;
    }
    return s;
  });
  return norms
    .map((s, r) => [s, r] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, n)
    .map(([, r]) => r)
    .sort((a, b) => a - b);
}

/** A copy of [rows, …] `t` (a weight, or a bias of one dimension) with the given rows times f. */
function scaleRows(t: HostArray, rows: readonly number[], f: number): HostArray {
  const width = t.shape.length === 1 ? 1 : (t.shape[1] as number);
  const data = Float32Array.from(t.data as ArrayLike<number>);
  for (const r of rows)
    for (let c = 0; c < width; c++) data[r * width + c] = (data[r * width + c] as number) * f;
  return { dtype: 'float32', shape: [...t.shape], data };
}

/** A copy of [rows, cols] weight `t` with the given columns times f. */
function scaleColumns(t: HostArray, cols: readonly number[], f: number): HostArray {
  const [rows, width] = t.shape as [number, number];
  const data = Float32Array.from(t.data as ArrayLike<number>);
  for (let r = 0; r < rows; r++)
    for (const c of cols) data[r * width + c] = (data[r * width + c] as number) * f;
  return { dtype: 'float32', shape: [...t.shape], data };
}
