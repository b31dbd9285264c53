/**
 * Every hardware preset on the WebGPU runtime against the CPU: one Monte Carlo instance of a
 * 1-layer ViT, the same batch, logits compared sample by sample. A sample agrees within 1e-4 of
 * its largest logit (float32 sums in another order err relative to the terms summed, not to a
 * logit that happens to be near 0) until a converter code flips at a rounding boundary (a last-bit difference in what
 * feeds a DAC or ADC); the flip then carries through the layers after it, so a sample either
 * agrees or diverges. Most samples must agree, and the CPU-GPU gap of a diverged one must stay
 * below the gap between two instances on the CPU (a flip moves a logit by far less than the
 * noise does).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AnalogModel } from '../../src/analog/analog-model.js';
import { loadSpec, PRESETS } from '../../src/analog/presets.js';
import { Predictor } from '../../src/eval/predict.js';
import { hostArray } from '../../src/graph/ndarray.js';
import type { Provider } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/math.js';
import { vitMnist } from '../helpers/models.js';
import { webgpuSkip } from '../helpers/webgpu.js';

const SAMPLES = 8;

describe('every preset on the WebGPU runtime', { skip: webgpuSkip }, () => {
  const { model } = vitMnist();
  const x = {
    pixel_values: hostArray(
      'float32',
      [SAMPLES, 1, 28, 28],
      new Rng(5).fillNormal(new Float32Array(SAMPLES * 784)),
    ),
  };
  const logits = async (hw: string, seed: number, provider: Provider) => {
    const analog = new AnalogModel(loadSpec(hw, [], model), seed);
    await analog.prepare(model);
    const p = new Predictor(model, { provider, matmuls: analog.matmuls(), fresh: true });
    try {
      return (await p.logits(x, 0)).data as Float32Array;
    } finally {
      await p.release();
    }
  };
  for (const hw of Object.keys(PRESETS)) {
    it(`${hw}: the CPU's logits, sample by sample, but where a converter code flips`, async () => {
      const cpu = await logits(hw, 0, 'cpu');
      const gpu = await logits(hw, 0, 'webgpu');
      const other = await logits(hw, 1, 'cpu');
      const k = cpu.length / SAMPLES;
      let agree = 0;
      let gap = 0;
      let spread = 0;
      for (let s = 0; s < SAMPLES; s++) {
        const row = (a: Float32Array) => a.subarray(s * k, (s + 1) * k);
        const [c, g, o] = [row(cpu), row(gpu), row(other)];
        const scale = Math.max(...c.map(Math.abs));
        const same = c.every((v, j) => Math.abs(g[j]! - v) <= 1e-4 * scale + 1e-6);
        if (same) agree++;
        else {
          // a diverged sample: how far from the CPU, against how far another instance is
          gap = Math.max(gap, ...c.map((v, j) => Math.abs(g[j]! - v)));
          spread = Math.max(spread, ...c.map((v, j) => Math.abs(o[j]! - v)));
        }
      }
      assert.ok(agree >= SAMPLES / 2, `${hw}: ${agree} of ${SAMPLES} samples agree`);
      if (hw === 'ideal') assert.equal(agree, SAMPLES);
      assert.ok(gap <= spread, `${hw}: diverged samples ${gap} from the CPU, another instance ${spread}`);
    });
  }
});
