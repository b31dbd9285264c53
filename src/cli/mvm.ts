/**
 * `xbar mvm`: one analog linear layer, y = x·Wᵀ + b with W [out, in] as torch.nn.Linear stores
 * it, for unit checks and comparisons with other simulators.
 */
import type { Command } from 'commander';
import { AnalogModel } from '../analog/analog-model.js';
import { loadSpec } from '../analog/presets.js';
import { hostArray } from '../graph/ndarray.js';
import { input, param } from '../graph/tensor.js';
import { readSafetensors } from '../io/safetensors.js';
import { transpose2d } from '../models/params.js';
import { compile } from '../runtime/session.js';
import { InputError } from '../util/errors.js';
import { readJson, writeFileAtomic } from '../util/files.js';
import { type Duration, flag, hardwareSets } from './flags.js';
import { finiteArray, nestedToArray } from './predict.js';

interface MvmFlags {
  weights: string;
  inputs: string;
  hw: string;
  set: string[];
  repeats: number;
  seed: number;
  time?: Duration;
  output?: string;
}

export function registerMvm(program: Command): void {
  program
    .command('mvm')
    .description('one analog linear layer: y = x·Wᵀ + b on the given hardware, per Monte Carlo instance')
    .requiredOption(
      '--weights <file>',
      "safetensors with 'weight' [out, in] (torch.nn.Linear layout) and optional 'bias' [out]",
    )
    .requiredOption('--inputs <file>', "safetensors or JSON with 'x' [n, in]")
    .addOption(flag('hw', { required: true }))
    .addOption(flag('set'))
    .addOption(flag('repeats', { help: 'Monte Carlo instances', value: 1 }))
    .addOption(flag('seed', { value: 0 }))
    .addOption(flag('time'))
    .addOption(flag('output'))
    .action(async (o: MvmFlags) => {
      const ck = readSafetensors(o.weights);
      const wt = ck.tensors.get('weight')?.toHost();
      if (wt?.shape.length !== 2)
        throw new InputError(`${o.weights}: needs a tensor 'weight' of shape [out, in]`);
      const [out, inp] = wt.shape as [number, number];
      const bias = ck.tensors.get('bias')?.toHost();
      if (bias && (bias.shape.length !== 1 || bias.shape[0] !== out))
        throw new InputError(`${o.weights}: 'bias' must be [${out}]`);
      const json = o.inputs.endsWith('.json') ? (readJson(o.inputs) as { x?: unknown }) : null;
      if (json && json.x === undefined)
        throw new InputError(`${o.inputs}: needs a field 'x', a nested array of shape [n, ${inp}]`);
      const x = json
        ? nestedToArray(json.x, 'float32', o.inputs, 'x')
        : readSafetensors(o.inputs).tensors.get('x')?.toHost();
      if (x?.shape.length !== 2 || x.shape[1] !== inp) {
        throw new InputError(
          `${o.inputs}: needs 'x' of shape [n, ${inp}], got ${x ? `[${x.shape}]` : 'nothing'}`,
        );
      }
      finiteArray(wt, o.weights, 'weight');
      if (bias) finiteArray(bias, o.weights, 'bias');
      finiteArray(x, o.inputs, 'x');
      const spec = loadSpec(o.hw, hardwareSets(o));
      const analog = new AnalogModel(spec, o.seed);
      const w = param('weight', transpose2d(wt));
      const b = bias ? param('bias', bias) : undefined;
      const xin = input('x', x.shape);
      const g = await compile(
        { y: analog.linear('mvm', xin, w, b), ideal: b ? xin.matmul(w).add(b) : xin.matmul(w) },
        { cache: false },
      );
      const rows = (a: Float32Array) =>
        Array.from({ length: x.shape[0]! }, (_, i) => Array.from(a.subarray(i * out, (i + 1) * out)));
      const instances: number[][][] = [];
      let ideal: number[][] = [];
      for (let i = 0; i < o.repeats; i++) {
        analog.program(o.seed + i);
        const r = await g.run({ x: hostArray('float32', x.shape, x.data) });
        instances.push(rows(r['y']!.data as Float32Array));
        ideal = rows(r['ideal']!.data as Float32Array);
      }
      const text = `${JSON.stringify({ hw: spec.spec.name, timeS: spec.spec.timeS, seeds: instances.map((_, i) => o.seed + i), ideal, y: instances })}\n`;
      if (o.output) writeFileAtomic(o.output, text);
      else process.stdout.write(text);
    });
}
