/** The cost model's shapes (shapes.ts, re-exported here) and a model folder's. */
import { existsSync, statSync } from 'node:fs';
import { loadModelConfig } from '../models/index.js';
import { InputError } from '../util/errors.js';
import { closest } from '../util/validate.js';
import { type ModelShape, modelShape, namedShape, SHAPE_NAMES, type ShapeOptions } from './shapes.js';

export * from './shapes.js';

/** A built-in size name, a cost-only shape name, or an HF folder with config.json. */
export function resolveShape(nameOrDir: string, o: ShapeOptions = {}): ModelShape {
  const named = namedShape(nameOrDir, o);
  if (named) return named;
  if (existsSync(nameOrDir) && statSync(nameOrDir).isDirectory()) {
    return modelShape(loadModelConfig(nameOrDir), { name: nameOrDir, ...o });
  }
  const near = closest(nameOrDir, SHAPE_NAMES);
  throw new InputError('--model', [
    `'${nameOrDir}' is neither a folder nor a model name${near ? ` (did you mean '${near}'?)` : ''}; ` +
      `names: ${SHAPE_NAMES.join(', ')}`,
  ]);
}
