/** `xbar vocab`: a smaller WordPiece vocabulary for a GLUE task's training text (see io/vocab.ts). */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { parseDataSpec } from '../eval/data.js';
import { findGlueFile, glueTask, readGlue } from '../io/glue.js';
import { shrinkVocab } from '../io/vocab.js';
import { InputError } from '../util/errors.js';
import { writeFileAtomic } from '../util/files.js';
import { positiveInt } from './eval.js';

export function registerVocab(program: Command): void {
  program
    .command('vocab')
    .description("cut a WordPiece vocabulary (vocab.txt) down to a GLUE task's most used tokens")
    .requiredOption('--from <dir>', 'folder with the large vocab.txt (e.g. bert-base-uncased)')
    .requiredOption('--data <spec>', 'glue-TASK:PATH; its training split is the corpus')
    .requiredOption('--size <n>', 'tokens to keep', positiveInt('--size'))
    .requiredOption('--out <dir>', 'folder to write vocab.txt and tokenizer_config.json to')
    .action((o: { from: string; data: string; size: number; out: string }) => {
      const spec = parseDataSpec(o.data);
      if (!spec.kind.startsWith('glue-')) throw new InputError(`--data ${o.data}: use a glue-TASK:PATH spec`);
      const task = glueTask(spec.kind.slice('glue-'.length));
      const rows = readGlue(task, findGlueFile(spec.path, task, 'train'));
      const texts = rows.flatMap((r) => (r.textB === undefined ? [r.textA] : [r.textA, r.textB]));
      const v = shrinkVocab(o.from, texts, o.size);
      mkdirSync(o.out, { recursive: true });
      writeFileAtomic(join(o.out, 'vocab.txt'), `${v.tokens.join('\n')}\n`);
      writeFileAtomic(
        join(o.out, 'tokenizer_config.json'),
        `${JSON.stringify({ tokenizer_class: 'BertTokenizer', do_lower_case: true, model_max_length: 512 }, null, 2)}\n`,
      );
      console.log(
        `${v.tokens.length} tokens → ${join(o.out, 'vocab.txt')}; they cover ${(100 * v.coverage).toFixed(2)} % of the ${texts.length.toLocaleString('en')} training texts' tokens`,
      );
    });
}
