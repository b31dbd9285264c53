/**
 * A smaller WordPiece vocabulary for a corpus, cut from a larger one (e.g. bert-base-uncased's
 * 30,522 tokens) so a small model's embedding table fits. Kept: the special tokens, every single
 * character (with and without `##`) the corpus uses, then the corpus's most frequent tokens.
 * A word whose tokens were all kept tokenizes exactly as before: greedy longest-match picks the
 * same pieces, since no longer piece was in the larger vocabulary either. Other words fall
 * back to shorter pieces, down to characters.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../util/errors.js';
import { loadTokenizer } from './tokenizer.js';

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];

export interface ShrunkVocab {
  /** Tokens in id order ([PAD] first, so pad id 0 as in BERT). */
  tokens: string[];
  /** Share of the corpus's tokens (under the large vocabulary) that the small one keeps. */
  coverage: number;
}

/** At most `size` tokens (all the corpus uses, if fewer): the most useful ones of the WordPiece vocabulary in `dir` for `texts`. */
export function shrinkVocab(dir: string, texts: readonly string[], size: number): ShrunkVocab {
  const vocab = readFileSync(join(dir, 'vocab.txt'), 'utf8').split('\n');
  if (vocab.at(-1) === '') vocab.pop();
  const inVocab = new Set(vocab);
  const tok = loadTokenizer(dir);
  const counts = new Map<number, number>();
  let total = 0;
  for (const t of texts) {
    const ids = tok.encode(t, undefined, { maxLength: 100_000 }).inputIds;
    for (const id of ids.slice(1, -1)) {
      counts.set(id, (counts.get(id) ?? 0) + 1);
      total++;
    }
  }
  const kept = new Set<string>(SPECIALS);
  const tokens = [...SPECIALS];
  const add = (t: string) => {
    if (!kept.has(t) && inVocab.has(t)) {
      kept.add(t);
      tokens.push(t);
    }
  };
  // every character the corpus's tokens contain, as a word start and as a continuation
  const chars = new Set<string>();
  for (const id of counts.keys()) for (const c of vocab[id]!.replace(/^##/, '')) chars.add(c);
  for (const c of [...chars].sort()) {
    add(c);
    add(`##${c}`);
  }
  if (tokens.length > size) {
    throw new InputError(
      `vocabulary size ${size} is below the ${tokens.length} special and character tokens`,
    );
  }
  const byCount = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  for (const [id] of byCount) {
    if (tokens.length >= size) break;
    add(vocab[id]!);
  }
  let covered = 0;
  for (const [id, n] of counts) if (kept.has(vocab[id]!)) covered += n;
  return { tokens, coverage: total ? covered / total : 1 };
}
