/** `xbar cost`: energy, delay and area of a model on a hardware spec, from its shapes alone. */
import { join } from 'node:path';
import type { Command } from 'commander';
import YAML from 'yaml';
import { loadSpec } from '../analog/presets.js';
import type { ArchitectureInput } from '../cost/components.js';
import { type CostOptions, cost } from '../cost/cost.js';
import { breakdownSvg, costJson, formatCost } from '../cost/report.js';
import { resolveShape, SHAPE_NAMES } from '../cost/shape.js';
import { toPng } from '../report/svg.js';
import { writeFileAtomic } from '../util/files.js';
import { ConfigError } from '../util/validate.js';

interface CostFlags {
  model: string;
  hw: string;
  set: string[];
  reuse?: number | number[];
  tb: boolean;
  beta?: number;
  tokens?: number;
  seqLen?: number;
  arch: string[];
  json?: boolean;
  out?: string;
  layers?: boolean;
}

const collect = (v: string, prev: string[]) => [...prev, v];

const whole = (flag: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new ConfigError(flag, [`'${v}': expected a whole number ≥ ${min}`]);
  return n;
};

/** '5' (the last five encoders) or '2,4,6' (those encoders). */
function parseReuse(v: string): number | number[] {
  if (/^\d+$/.test(v.trim())) return Number(v);
  const list = v.split(',').map((s) => Number(s.trim()));
  if (list.some((n) => !Number.isInteger(n))) {
    throw new ConfigError('--reuse', [`'${v}': expected a count (e.g. 5) or encoder indices (e.g. 2,4,6)`]);
  }
  return list;
}

function parseBeta(v: string): number {
  const b = Number(v);
  if (!(b > 0 && b <= 1)) throw new ConfigError('--beta', [`'${v}' is not allowed, use a number in (0, 1]`]);
  return b;
}

/** `key=value` pairs into architecture fields (validated by the cost model's schema). */
function parseArch(pairs: readonly string[]): ArchitectureInput {
  const out: Record<string, unknown> = {};
  for (const p of pairs) {
    const at = p.indexOf('=');
    if (at <= 0) throw new ConfigError('--arch', [`'${p}': expected field=value, e.g. crossbarsPerPe=4`]);
    out[p.slice(0, at).trim()] = YAML.parse(p.slice(at + 1));
  }
  return out as ArchitectureInput;
}

export function registerCost(program: Command): void {
  program
    .command('cost')
    .description('energy, delay, area, EDAP, TOPS/W and TOPS/mm² of a model on crossbars (shapes only)')
    .requiredOption('--model <name|dir>', `a model folder (config.json) or one of ${SHAPE_NAMES.join(', ')}`)
    .requiredOption('--hw <spec>', 'a hardware preset (xbar hw list) or a YAML/JSON spec file')
    .option('--set <field=value>', 'override a hardware field, e.g. adc.bits=4 (repeatable)', collect, [])
    .option(
      '--reuse <n|list>',
      'TReX attention reuse: a count (the last n encoders) or indices, e.g. 2,4,6',
      parseReuse,
    )
    .option('--no-tb', 'leave the transformation blocks of reuse encoders uncosted (TReX Table IV)')
    .option('--beta <β>', "ClipFormer's K/V clip β in (0, 1]: β = 0.25 saves one 2-bit K/V slice", parseBeta)
    .option(
      '--tokens <n>',
      'tokens per sequence (default: from image and patch size, or --seq-len)',
      whole('--tokens', 1),
    )
    .option('--seq-len <n>', 'tokens of a text model (default 128)', whole('--seq-len', 1))
    .option(
      '--arch <field=value>',
      'cost architecture, e.g. crossbarsPerPe=4, colsPerAdc=16 (repeatable)',
      collect,
      [],
    )
    .option('--layers', 'also print a table per encoder')
    .option('--json', 'print JSON (energy_mJ, delay_ms, area_mm2, edap, tops_per_w, tops_per_mm2, macs, …)')
    .option('--out <dir>', 'write cost.json, breakdown.svg and breakdown.png there')
    .action((o: CostFlags) => {
      const tokens = o.tokens ?? o.seqLen;
      const shape = resolveShape(o.model, tokens === undefined ? {} : { tokens });
      if (o.seqLen !== undefined && o.tokens === undefined && shape.family === 'vit') {
        throw new ConfigError('--seq-len', [
          `${o.model} is a vision model: its tokens come from image and patch size; use --tokens to override`,
        ]);
      }
      const spec = loadSpec(o.hw, o.set);
      const options: CostOptions = {
        transformationBlocks: o.tb,
        architecture: parseArch(o.arch),
        ...(o.reuse === undefined ? {} : { reuse: o.reuse }),
        ...(o.beta === undefined ? {} : { beta: o.beta }),
      };
      const report = cost(shape, spec, options);
      const json = costJson(report);
      if (o.out) {
        const svg = breakdownSvg(report);
        writeFileAtomic(join(o.out, 'cost.json'), `${JSON.stringify(json, null, 2)}\n`);
        writeFileAtomic(join(o.out, 'breakdown.svg'), svg);
        writeFileAtomic(join(o.out, 'breakdown.png'), toPng(svg));
      }
      if (o.json) console.log(JSON.stringify(json));
      else {
        console.log(formatCost(report, { layers: !!o.layers }));
        if (o.out)
          console.log(
            `\nwrote ${['cost.json', 'breakdown.svg', 'breakdown.png'].map((f) => join(o.out!, f)).join(', ')}`,
          );
      }
    });
}
