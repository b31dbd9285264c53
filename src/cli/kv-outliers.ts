/** `xbar kv-outliers`: a copy of a model with function-preserving K/V outlier channels (methods/kv-outliers.ts). */
import { join } from 'node:path';
import type { Command } from 'commander';
import { writeSafetensors } from '../io/safetensors.js';
import { injectKvOutliers, type KvOutlierOptions } from '../methods/kv-outliers.js';
import { copyProcessorFiles, loadModel, toHfConfig } from '../models/index.js';
import { ensureDir, writeFileAtomic } from '../util/files.js';
import { flag, opt, withOptions } from './flags.js';

interface Flags {
  model: string;
  out: string;
  scale: number;
  channels: number;
  on: 'key' | 'value' | 'both';
}

export function registerKvOutliers(program: Command): void {
  withOptions(
    program
      .command('kv-outliers')
      .description(
        'copy a model with outlier channels in K and V that leave its function unchanged (K·s with Q/s, V·s with the output projection /s)',
      ),
    flag('model', { required: true }),
    flag('out', { help: 'model folder to write (HF format)', required: true }),
    opt('--scale <s>', 'outlier factor, a power of two above 1 (exact rescaling)', { gt: 1 }, 8),
    opt('--channels <n>', 'outlier channels per head: those of largest weight norm', 1, 1),
    opt('--on <which>', 'key, value or both', ['key', 'value', 'both'], 'both'),
  ).action((o: Flags) => {
    const model = loadModel(o.model);
    const options: KvOutlierOptions = {
      scale: o.scale,
      channels: o.channels,
      on: o.on === 'both' ? ['key', 'value'] : [o.on],
    };
    const { tensors, chosen } = injectKvOutliers(
      model.store.toHf(),
      model.config.heads,
      options,
      '--scale/--channels/--on',
    );
    ensureDir(o.out);
    writeSafetensors(join(o.out, 'model.safetensors'), tensors);
    copyProcessorFiles(o.model, o.out);
    writeFileAtomic(join(o.out, 'config.json'), `${JSON.stringify(toHfConfig(model.config), null, 2)}\n`);
    writeFileAtomic(
      join(o.out, 'kv_outliers.json'),
      `${JSON.stringify({ from: o.model, ...options, channelsChosen: chosen }, null, 2)}\n`,
    );
    console.log(
      `${o.out}: ${o.model} with ${options.channels} outlier channel(s) per head ×${options.scale} in ${options.on.join(' and ')} (${chosen.length} layers); the ideal model computes the same outputs`,
    );
  });
}
