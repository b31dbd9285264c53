/** The checks every runtime makes of a run's feeds against its graph's inputs. */
import type { HostArray } from '../graph/ndarray.js';
import type { GraphInput } from '../graph/onnx.js';
import { type DType, fmtShape, GraphError, sameShape } from '../graph/shape.js';

export const describeInput = (i: { name: string; dtype: DType; shape: readonly number[] }): string =>
  `${i.name}: ${i.dtype} ${fmtShape(i.shape)}`;

/**
 * Throws naming what is wrong when `feeds` name an input the graph lacks, miss one it needs
 * (params and noise have values of their own), or hold a value of another kind, dtype or shape.
 */
export function checkFeeds(inputs: readonly GraphInput[], feeds: Readonly<Record<string, HostArray>>): void {
  const known = new Set(inputs.map((i) => i.name));
  const unknown = Object.keys(feeds).filter((k) => !known.has(k));
  if (unknown.length) {
    throw new GraphError(
      'run',
      `unknown input(s) ${unknown.map((u) => `'${u}'`).join(', ')}; the graph takes:\n  ${inputs.map(describeInput).join('\n  ')}`,
    );
  }
  const missing = inputs.filter((i) => !feeds[i.name] && !i.param && !i.noise);
  if (missing.length) {
    throw new GraphError('run', `missing input(s):\n  ${missing.map(describeInput).join('\n  ')}`);
  }
  for (const i of inputs) {
    const v = feeds[i.name];
    if (!v) continue;
    if (!Array.isArray(v.shape) || !ArrayBuffer.isView(v.data)) {
      throw new GraphError(
        'run',
        `input '${i.name}' is a ${(v as object).constructor?.name ?? typeof v}; feeds are host arrays { dtype, shape, data }, e.g. ${i.dtype === 'int32' ? 'i32' : 'f32'}(${fmtShape(i.shape)}, data)`,
      );
    }
    if (v.dtype !== i.dtype || !sameShape(v.shape, i.shape)) {
      throw new GraphError(
        'run',
        `input '${i.name}' is ${v.dtype} ${fmtShape(v.shape)}, the graph needs ${i.dtype} ${fmtShape(i.shape)}`,
      );
    }
  }
}
