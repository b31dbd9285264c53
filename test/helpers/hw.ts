/** Hardware specs for tests: a preset or spec file with `--set`s, resolved into crossbars. */
import { loadSpec } from '../../src/analog/presets.js';
import { type ResolvedSpec, resolveSpec } from '../../src/analog/resolve.js';

/** `loadSpec` then `resolveSpec` (without a model's layers). */
export const resolved = (nameOrFile: string, sets: readonly string[] = []): ResolvedSpec =>
  resolveSpec(loadSpec(nameOrFile, sets));
