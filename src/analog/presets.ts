/**
 * Hardware specs by name or file: a preset (spec-text.ts holds them and the parsing, with no file
 * access, for the browser too) or a .yaml/.yml/.json file, plus `--set` overrides.
 */
import type { Model } from '../models/index.js';
import { readBytes } from '../util/files.js';
import type { ResolvedSpec } from './resolve.js';
import { specFromPreset, specFromText } from './spec-text.js';

export * from './spec-text.js';

/**
 * Reads a spec: a preset name or a .yaml/.yml/.json file, then `--set` overrides, validated and
 * resolved into crossbars (`resolveSpec`, checking the overrides against the `layers` of a
 * model, when given). A file's spec is named after the file unless it names itself, not after
 * the preset it `extends`.
 */
export function loadSpec(
  nameOrFile: string,
  sets: readonly string[] = [],
  layers?: Model | readonly string[],
): ResolvedSpec {
  return /\.(ya?ml|json)$/i.test(nameOrFile)
    ? specFromText(readBytes(nameOrFile).toString('utf8'), nameOrFile, sets, layers)
    : specFromPreset(nameOrFile, sets, layers);
}
