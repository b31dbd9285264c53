/** `xbar vocab`: a smaller WordPiece vocabulary for a GLUE task's training text (see io/vocab.ts). */
import { join } from 'node:path';
import type { Command } from 'commander';
import { findGlueFile, glueTask, readGlue } from '../io/glue.js';
import { shrinkVocab } from '../io/vocab.js';
import { InputError } from '../util/errors.js';
import { writeFileAtomic } from '../util/files.js';
import { type DataFlag, flag, wholeNumber } from './flags.js';

export function registerVocab(program: Command): void {
  program
    .command('vocab')
    .description("cut a WordPiece vocabulary (vocab.txt) down to a GLUE task's most used tokens")
    .requiredOption('--from <dir>', 'folder with the large vocab.txt (e.g. bert-base-uncased)')
    .addOption(flag('data', { help: 'glue-TASK:PATH; its training split is the corpus', required: true }))
    .requiredOption('--size <n>', 'tokens to keep', wholeNumber('--size'))
    .addOption(
      flag('out', { help: 'folder to write vocab.txt and tokenizer_config.json to', required: true }),
    )
    .action((o: { from: string; data: DataFlag; size: number; out: string }) => {
      const spec = o.data;
      if (!spec.kind.startsWith('glue-'))
        throw new InputError(`--data ${spec.text}: use a glue-TASK:PATH spec`);
      const task = glueTask(spec.kind.slice('glue-'.length));
      const rows = readGlue(task, findGlueFile(spec.path, task, 'train'));
      const texts = rows.flatMap((r) => (r.textB === undefined ? [r.textA] : [r.textA, r.textB]));
      const v = shrinkVocab(o.from, texts, o.size);
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
