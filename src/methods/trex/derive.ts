/**
 * A variant (TReX reuse, weight sharing, token pruning) of a trained model, initialised from
 * its weights: every tensor the variant uses comes from the original; a new transformation
 * block starts as LayerNorm(1, 0) → identity → GELU, so the reuse encoder's projection first
 * sees the reused attention output normalised and rectified (the closest TB form to "pass
 * it through"); training then adapts it.
 */
import { type HostArray, hostArray } from '../../graph/ndarray.js';
import { Model, type ModelConfig } from '../../models/index.js';
import { ParamStore, type TensorSource } from '../../models/params.js';
import { parseVariants, type Variants, variantsToHf } from '../../models/variants.js';

/** The initial value of a transformation-block tensor, by its HF name; undefined for others. */
function transformationInit(name: string, hidden: number): HostArray | undefined {
  const m = /\.attention\.transformation\.(layernorm|dense)\.(weight|bias)$/.exec(name);
  if (!m) return undefined;
  if (m[1] === 'dense' && m[2] === 'weight') {
    const eye = new Float32Array(hidden * hidden);
    for (let i = 0; i < hidden; i++) eye[i * hidden + i] = 1;
    return hostArray('float32', [hidden, hidden], eye);
  }
  return hostArray(
    'float32',
    [hidden],
    new Float32Array(hidden).fill(m[1] === 'layernorm' && m[2] === 'weight' ? 1 : 0),
  );
}

/** A config with `variants` in place of its own (checked as config.json's fields would be). */
export function variantConfig(c: ModelConfig, variants: Variants): ModelConfig {
  const checked = parseVariants(variantsToHf(variants), c.layers, '(variant)');
  const config: ModelConfig = { ...c };
  delete config.variants;
  if (Object.keys(checked).length) config.variants = checked;
  return config;
}

/**
 * `model` with `variants` in place of its own (checked as config.json's fields would be);
 * the original's weights are copied, so training the variant leaves the original untouched.
 */
export function deriveVariant(model: Model, variants: Variants): Model {
  const c = model.config;
  const config = variantConfig(c, variants);
  const weights = model.store.toHf();
  const source: TensorSource = {
    file: '(derived variant)',
    // only what the variant asks for counts: the dropped Q/K/V of reuse encoders are not "unexpected"
    names: () => [],
    get: (name) => {
      const w = weights[name];
      if (w) return { ...w, data: (w.data as Float32Array).slice() };
      return transformationInit(name, c.hidden);
    },
  };
  const derived = new Model(config, new ParamStore(source));
  derived.store.check();
  return derived;
}
