/** `xbar predict`: logits of a model for inputs given as nested JSON arrays. */
import type { Command } from 'commander';
import { predictLogits } from '../eval/predict.js';
import { type HostArray, hostArray } from '../graph/ndarray.js';
import type { ModelInputs } from '../models/family.js';
import { loadModel } from '../models/index.js';
import { InputError } from '../util/errors.js';
import { readJson, writeFileAtomic } from '../util/files.js';
import { flag } from './flags.js';

type Nested = number | Nested[];

/** A rectangular nested array as a host array; errors name the file and field. */
export function nestedToArray(
  v: unknown,
  dtype: 'float32' | 'int32',
  file: string,
  field: string,
): HostArray {
  const shape: number[] = [];
  for (let x = v; Array.isArray(x); x = x[0]) shape.push(x.length);
  const out: number[] = [];
  const walk = (x: unknown, depth: number, at: string): void => {
    if (depth === shape.length) {
      if (typeof x !== 'number' || !Number.isFinite(x) || (dtype === 'int32' && !Number.isInteger(x))) {
        throw new InputError(
          file,
          `${field}${at}: ${JSON.stringify(x)} is not ${dtype === 'int32' ? 'an integer' : 'a finite number'}`,
        );
      }
      out.push(x);
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[depth]) {
      throw new InputError(
        file,
        `${field}${at}: expected an array of ${shape[depth]} (a rectangular nested array of shape [${shape}])`,
      );
    }
    for (const [i, y] of x.entries()) walk(y, depth + 1, `${at}[${i}]`);
  };
  walk(v, 0, '');
  return hostArray(dtype, shape, dtype === 'float32' ? Float32Array.from(out) : Int32Array.from(out));
}

/** Throws naming the file, the field and the index of a value that is not a finite number. */
export function finiteArray(a: HostArray, file: string, field: string): void {
  const at = (a.data as Float32Array).findIndex((v) => !Number.isFinite(v));
  if (at < 0) return;
  const index = a.shape.map(
    (_, d) => Math.floor(at / a.shape.slice(d + 1).reduce((p, n) => p * n, 1)) % a.shape[d]!,
  );
  throw new InputError(file, `${field}[${index.join('][')}]: ${a.data[at]} is not a finite number`);
}

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description('logits of a model for inputs in a JSON file')
    .addOption(flag('model', { required: true }))
    .requiredOption(
      '--inputs <file>',
      'JSON with pixel_values, or input_ids [+ attention_mask, token_type_ids]',
    )
    .addOption(flag('output', { help: 'write {"logits": [...]} here (default: standard output)' }))
    .action(async (o: { model: string; inputs: string; output?: string }) => {
      const model = loadModel(o.model);
      const json = readJson(o.inputs) as Record<string, Nested>;
      if (typeof json !== 'object' || json === null || Array.isArray(json)) {
        throw new InputError(o.inputs, 'expected an object with pixel_values or input_ids');
      }
      const known = ['pixel_values', 'input_ids', 'attention_mask', 'token_type_ids'];
      const unknown = Object.keys(json).filter((k) => !known.includes(k));
      if (unknown.length)
        throw new InputError(
          o.inputs,
          `unknown field(s) ${unknown.join(', ')}; allowed: ${known.join(', ')}`,
        );
      const inputs: ModelInputs = {};
      for (const k of known as (keyof ModelInputs)[]) {
        if (json[k] !== undefined)
          inputs[k] = nestedToArray(json[k], k === 'pixel_values' ? 'float32' : 'int32', o.inputs, k);
      }
      const logits = await predictLogits(model, inputs);
      const rows = Array.from({ length: logits.shape[0]! }, (_, i) =>
        Array.from((logits.data as Float32Array).subarray(i * logits.shape[1]!, (i + 1) * logits.shape[1]!)),
      );
      const text = `${JSON.stringify({ logits: rows })}\n`;
      if (o.output) writeFileAtomic(o.output, text);
      else process.stdout.write(text);
    });
}
