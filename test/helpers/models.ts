/** Small random models saved as Hugging Face folders, for tests that load models as users do. */
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { type Model, parseModelConfig, randomModel, toHfConfig } from '../../src/models/index.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Slices of GLUE and MNIST and the vocabularies the tests read (test/fixtures/README.md). */
export const FIXTURES = join(ROOT, 'test/fixtures');

/** Saves a random model (weights N(0, 0.5²)) of HF config fields; extra files are copied in. */
export function savedModel(
  hf: Record<string, unknown>,
  extraFiles: Record<string, string> = {},
  seed = 3,
): { dir: string; model: Model } {
  const model = randomModel(parseModelConfig(hf, 'test'), seed, 0.5);
  const dir = mkdtempSync(join(tmpdir(), 'xbar-model-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(toHfConfig(model.config)));
  writeSafetensors(join(dir, 'model.safetensors'), model.store.toHf());
  for (const [name, from] of Object.entries(extraFiles)) copyFileSync(from, join(dir, name));
  return { dir, model };
}

/** A 1-layer ViT for 28×28 gray images and 10 classes (MNIST-like data). */
export const vitMnist = (seed = 3) =>
  savedModel(
    {
      model_type: 'vit',
      hidden_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 32,
      image_size: 28,
      patch_size: 7,
      num_channels: 1,
      num_labels: 10,
    },
    {},
    seed,
  );

/** A 1-layer BERT with the bert-base-uncased vocabulary and 2 classes (SST-2-like data). */
export const bertSst2 = () =>
  savedModel(
    {
      model_type: 'bert',
      vocab_size: 30522,
      hidden_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 32,
      num_labels: 2,
    },
    { 'vocab.txt': join(FIXTURES, 'vocab/bert-base-uncased/vocab.txt') },
  );
