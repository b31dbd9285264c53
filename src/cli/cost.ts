/** `xbar cost`: energy, delay and area of a model on a hardware spec, from its shapes alone. */
import { join } from 'node:path';
import type { Command } from 'commander';
import YAML from 'yaml';
import { loadSpec } from '../analog/presets.js';
import type { ArchitectureInput } from '../cost/components.js';
import { type CostOptions, cost } from '../cost/cost.js';
import { breakdownChart, costJson, formatCost, reuseTable } from '../cost/report.js';
import { resolveShape, SHAPE_NAMES } from '../cost/shape.js';
import { toPng, toSvg } from '../report/render.js';
import { InputError } from '../util/errors.js';
import { writeFileAtomic } from '../util/files.js';
import { collect, flag, numberList, opt, wholeNumber, withOptions } from './flags.js';

interface CostFlags {
  model: string;
  hw: string;
  set: string[];
  reuse?: number | number[];
  reuseCounts?: number[];
  tb: boolean;
  beta?: number;
  tokens?: number;
  seqLen?: number;
  arch: string[];
  json?: boolean;
  out?: string;
  layers?: boolean;
}

/** '5' (the last five encoders) or '2,4,6' (those encoders). */
function parseReuse(v: string): number | number[] {
  if (/^\d+$/.test(v.trim())) return wholeNumber('--reuse', 0)(v);
  if (!/^\s*\d+\s*(,\s*\d+\s*)*$/.test(v))
    throw new InputError('--reuse', [`'${v}': expected a count (e.g. 5) or encoder indices (e.g. 2,4,6)`]);
  return v.split(',').map((s) => Number(s.trim()));
}

/** `key=value` pairs into architecture fields (validated by the cost model's schema). */
function parseArch(pairs: readonly string[]): ArchitectureInput {
  const out: Record<string, unknown> = {};
  for (const p of pairs) {
    const at = p.indexOf('=');
    if (at <= 0) throw new InputError('--arch', [`'${p}': expected field=value, e.g. crossbarsPerPe=4`]);
    out[p.slice(0, at).trim()] = YAML.parse(p.slice(at + 1));
  }
  return out as ArchitectureInput;
}

export function registerCost(program: Command): void {
  withOptions(
    program
      .command('cost')
      .description('energy, delay, area, EDAP, TOPS/W and TOPS/mm² of a model on crossbars (shapes only)'),
    flag('model', {
      help: `a model folder (config.json) or one of ${SHAPE_NAMES.join(', ')}`,
      required: true,
    }),
    flag('hw', { required: true }),
    flag('set'),
    opt('--reuse <n|list>', 'TReX attention reuse: the last n encoders, or indices, e.g. 2,4,6', parseReuse),
    opt(
      '--reuse-counts <list>',
      "one row per count of reusing encoders, in TReX Table IV's layout, e.g. 0,3,5,7,9",
      numberList('--reuse-counts', { min: 0 }),
    ),
    opt('--no-tb', 'leave the transformation blocks of reuse encoders uncosted (TReX Table IV)'),
    opt('--beta <β>', "ClipFormer's K/V clip β: β = 0.25 saves one 2-bit K/V slice", { gt: 0, max: 1 }),
    opt('--tokens <n>', 'tokens per sequence (default: from image and patch size, or --seq-len)', 1),
    opt('--seq-len <n>', 'tokens of a text model (default 128)', 1),
    opt('--arch <field=value>', 'cost architecture, e.g. crossbarsPerPe=4 (repeatable)', collect).default([]),
    opt('--layers', 'also print a table per encoder'),
    flag('json', {
      help: 'print JSON (energy_mJ, delay_ms, area_mm2, edap, tops_per_w, tops_per_mm2, macs, …)',
    }),
    flag('out', { help: 'write cost.json and the breakdown chart (breakdown.vl.json, .svg, .png) there' }),
  ).action(async (o: CostFlags) => {
    const tokens = o.tokens ?? o.seqLen;
    const shape = resolveShape(o.model, tokens === undefined ? {} : { tokens });
    if (o.seqLen !== undefined && o.tokens === undefined && shape.patchEmbedding) {
      throw new InputError('--seq-len', [
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
    if (o.reuseCounts) {
      const clash = (['reuse', 'out', 'layers'] as const).find((k) => o[k] !== undefined);
      if (clash) throw new InputError('--reuse-counts', [`prints one row per count; leave out --${clash}`]);
      const reports = o.reuseCounts.map((reuse) => cost(shape, spec, { ...options, reuse }));
      console.log(o.json ? JSON.stringify(reports.map(costJson)) : reuseTable(reports));
      return;
    }
    const report = cost(shape, spec, options);
    const json = costJson(report);
    if (o.out) {
      const chart = breakdownChart(report);
      const svg = await toSvg(chart);
      writeFileAtomic(join(o.out, 'cost.json'), `${JSON.stringify(json, null, 2)}\n`);
      writeFileAtomic(join(o.out, 'breakdown.vl.json'), `${JSON.stringify(chart, null, 1)}\n`);
      writeFileAtomic(join(o.out, 'breakdown.svg'), svg);
      writeFileAtomic(join(o.out, 'breakdown.png'), toPng(svg));
    }
    if (o.json) console.log(JSON.stringify(json));
    else {
      console.log(formatCost(report, { layers: !!o.layers }));
      if (o.out)
        console.log(
          `\nwrote ${['cost.json', 'breakdown.vl.json', 'breakdown.svg', 'breakdown.png'].map((f) => join(o.out!, f)).join(', ')}`,
        );
    }
  });
}
