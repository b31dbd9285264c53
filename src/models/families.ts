/**
 * The model families and their configs, with no file access (a browser uses them too): FAMILIES
 * is the registry, a family being one file exporting a descriptor (family.ts). index.ts loads
 * models from folders.
 */
import { InputError } from '../util/errors.js';
import { type BertConfig, bert } from './bert.js';
import { baseConfigToHf } from './config.js';
import type { ModelFamily } from './family.js';
import { type VitConfig, vit } from './vit.js';

export type ModelConfig = VitConfig | BertConfig;

/** Every family xbar reads; a new one is a file with its descriptor, listed here. */
export const FAMILIES: readonly ModelFamily<ModelConfig>[] = [vit, bert];

/** The family of a normalised config. */
export const familyOf = (c: ModelConfig): ModelFamily<ModelConfig> =>
  FAMILIES.find((f) => c.modelType in f.modelTypes)!;

/** Normalises a parsed config.json object (`file` names it in errors). */
export function parseModelConfig(json: unknown, file: string): ModelConfig {
  const type = (json as { model_type?: unknown })?.model_type;
  const family = FAMILIES.find((f) => typeof type === 'string' && Object.hasOwn(f.modelTypes, type));
  if (!family) {
    const types = FAMILIES.flatMap((f) => Object.keys(f.modelTypes));
    throw new InputError(file, [
      `model_type: ${JSON.stringify(type)} is not supported; xbar reads ${types.join(', ')}`,
    ]);
  }
  return family.parse({ ...family.modelTypes[type as string], ...(json as object) }, file);
}

/** The config back in HF form (for save_pretrained-compatible folders). */
export const toHfConfig = (c: ModelConfig): Record<string, unknown> => ({
  ...baseConfigToHf(c),
  ...familyOf(c).toHf(c),
});

/** The standard sizes, as HF configures them (shapes only; weights are random). */
export const MODEL_SIZES: Record<string, ModelConfig> = Object.fromEntries(
  FAMILIES.flatMap((f) =>
    Object.entries(f.sizes).map(([name, json]) => [name, parseModelConfig(json, `(built-in ${name})`)]),
  ),
);
