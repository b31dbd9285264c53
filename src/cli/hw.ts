/** `xbar hw list` and `xbar hw show NAME|FILE`: the hardware presets and resolved specs. */
import type { Command } from 'commander';
import YAML from 'yaml';
import { loadSpec, PRESET_NAMES, PRESETS, specDiff } from '../analog/presets.js';
import { flag } from './flags.js';

export function registerHw(program: Command): void {
  const hw = program.command('hw').description('hardware specs: presets and files');
  hw.command('list')
    .description('the presets, one line each')
    .action(() => {
      const w = Math.max(...PRESET_NAMES.map((n) => n.length));
      for (const n of PRESET_NAMES) console.log(`${n.padEnd(w)}  ${PRESETS[n].summary}`);
    });
  hw.command('show <spec>')
    .description(
      'a preset or YAML/JSON spec file, resolved (fields that differ from the defaults; --all for every field)',
    )
    .addOption(flag('set'))
    .option('--all', 'print every field, defaults included')
    .option('--json', 'print JSON instead of YAML')
    .action((name: string, o: { set: string[]; all?: boolean; json?: boolean }) => {
      const { spec } = loadSpec(name, o.set);
      const shown = o.all ? spec : specDiff(spec);
      console.log(o.json ? JSON.stringify(shown, null, 2) : YAML.stringify(shown).trimEnd());
    });
}
