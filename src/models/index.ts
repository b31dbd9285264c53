/**
 * Models and their loading from folders (the families and configs are families.ts, re-exported
 * here). A Model is a config plus its weights; `graph()` builds the forward
 * graph for a batch shape, with crossbar products computed by `m` (exact by default, the
 * analog model's when it rewrites them).
 */
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { HostArray } from '../graph/ndarray.js';
import type { Tensor } from '../graph/tensor.js';
import { readCheckpoint } from '../io/safetensors.js';
import { TOKENIZER_FILES } from '../io/tokenizer.js';
import { InputError } from '../util/errors.js';
import { ensureDir, readJson } from '../util/files.js';
import { Rng } from '../util/math.js';
import { digital, type Matmuls } from './encoder.js';
import { familyOf, type ModelConfig, parseModelConfig } from './families.js';
import type { GraphShape, ModelGraph, ModelInput, ModelInputs } from './family.js';
import { ParamStore, type TensorSource } from './params.js';

export * from './families.js';

export function loadModelConfig(dir: string): ModelConfig {
  const file = join(dir, 'config.json');
  if (!existsSync(file))
    throw new InputError(file, ['not found: a model folder needs config.json (Hugging Face format)']);
  return parseModelConfig(readJson(file), file);
}

export class Model {
  /** Builds the graph once, so the store holds (or reports missing) every weight the model uses. */
  constructor(
    readonly config: ModelConfig,
    readonly store: ParamStore,
  ) {
    this.graph({ batch: 1, seqLen: 8 });
  }

  /** The forward graph for a batch shape; params are shared between graphs of one model. */
  graph(shape: GraphShape, m: Matmuls = digital): ModelGraph {
    return familyOf(this.config).build(this.config, this.store, m, shape);
  }

  /** What the model reads: images of one size, or token ids up to a length. */
  input(): ModelInput {
    return familyOf(this.config).input(this.config);
  }

  /** The graph's feeds for a batch (defaults completed, checked against the config) and its shape. */
  feeds(x: ModelInputs): { feeds: Record<string, HostArray>; shape: GraphShape } {
    return familyOf(this.config).feeds(this.config, x);
  }

  /** Every weight, in the order the model uses them. */
  params(): Tensor[] {
    return this.store.params();
  }

  /** The products `Matmuls.linear` computes (the layers a crossbar may hold), in graph order, with their weights [in, out]. */
  linearLayers(): { name: string; weight: Tensor }[] {
    const found: { name: string; weight: Tensor }[] = [];
    this.graph(
      { batch: 1, seqLen: 8 },
      {
        ...digital,
        linear: (name, x, w, b) => {
          found.push({ name, weight: w });
          return digital.linear(name, x, w, b);
        },
      },
    );
    return found;
  }
}

/** HF renamed LayerNorm gamma/beta to weight/bias; older checkpoints still use them. */
const modernName = (n: string): string =>
  n.replace(/LayerNorm\.gamma$/, 'LayerNorm.weight').replace(/LayerNorm\.beta$/, 'LayerNorm.bias');

/** Loads a Hugging Face model folder (config.json + model.safetensors, or sharded). */
export function loadModel(dir: string): Model {
  const config = loadModelConfig(dir);
  const ckpt = readCheckpoint(dir);
  const byName = new Map([...ckpt.tensors.entries()].map(([n, t]) => [modernName(n), t]));
  const source: TensorSource = {
    file: ckpt.file,
    names: () => [...byName.keys()],
    get: (n) => byName.get(n)?.toHost(),
  };
  const model = new Model(config, new ParamStore(source));
  model.store.check(familyOf(config).unused);
  return model;
}

/** Tokenizer and preprocessor files a model folder holds beside its config and weights. */
const PROCESSOR_FILES = [...Object.values(TOKENIZER_FILES), 'preprocessor_config.json'];

/** Copies the tokenizer and preprocessor files of model folder `from` that folder `to` lacks. */
export function copyProcessorFiles(from: string, to: string): void {
  ensureDir(to);
  for (const f of PROCESSOR_FILES)
    if (existsSync(join(from, f)) && !existsSync(join(to, f))) copyFileSync(join(from, f), join(to, f));
}

/** A model of a config with random weights (N(0, std²) matrices), for cost and speed work; std 0 gives zeros fast. */
export function randomModel(config: ModelConfig, seed = 0, std = 0.02): Model {
  return new Model(config, new ParamStore({ rng: new Rng(seed), std }));
}
