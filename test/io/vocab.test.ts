/** A vocabulary cut from bert-base-uncased for a corpus: size, order, and unchanged tokenization of covered words. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadTokenizer } from '../../src/io/tokenizer.js';
import { shrinkVocab } from '../../src/io/vocab.js';
import { FIXTURES } from '../helpers/models.js';

const BERT = join(FIXTURES, 'vocab/bert-base-uncased');
const corpus = [
  'a gorgeous , witty , seductive movie .',
  'the film is strictly routine .',
  'unflinchingly bleak and desperate',
  'a gorgeous movie , a witty film .',
];

describe('shrinkVocab', () => {
  it('keeps specials first, the corpus characters, then frequent tokens, and tokenizes kept words as before', () => {
    const v = shrinkVocab(BERT, corpus, 1000);
    // a small corpus uses fewer tokens than asked for: all of them are kept
    const all = v.tokens.length;
    assert.ok(all < 1000 && all > 40, String(all));
    assert.equal(shrinkVocab(BERT, corpus, all - 3).tokens.length, all - 3);
    assert.deepEqual(v.tokens.slice(0, 5), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
    assert.equal(new Set(v.tokens).size, v.tokens.length);
    for (const c of 'gorgeous') assert.ok(v.tokens.includes(c) && v.tokens.includes(`##${c}`), c);
    const dir = mkdtempSync(join(tmpdir(), 'xbar-vocab-'));
    writeFileSync(join(dir, 'vocab.txt'), `${v.tokens.join('\n')}\n`);
    const small = loadTokenizer(dir);
    const big = loadTokenizer(BERT);
    const text = (t: ReturnType<typeof loadTokenizer>, s: string, vocab: string[]) =>
      t.encode(s).inputIds.map((id) => vocab[id]);
    // the large vocabulary's tokens by id, to compare strings rather than ids
    const bigVocab = readFileSync(join(BERT, 'vocab.txt'), 'utf8').split('\n');
    for (const s of corpus) assert.deepEqual(text(small, s, v.tokens), text(big, s, bigVocab), s);
    assert.equal(v.coverage, 1);
  });

  it('falls back to pieces when a word is cut, and reports the coverage it loses', () => {
    const chars = shrinkVocab(BERT, corpus, 1000).tokens.filter((t) => t.replace(/^##/, '').length === 1);
    const v = shrinkVocab(BERT, corpus, 5 + chars.length + 2);
    assert.ok(v.coverage < 1 && v.coverage > 0, String(v.coverage));
    const dir = mkdtempSync(join(tmpdir(), 'xbar-vocab-'));
    writeFileSync(join(dir, 'vocab.txt'), `${v.tokens.join('\n')}\n`);
    const ids = loadTokenizer(dir).encode('seductive').inputIds;
    assert.ok(!ids.includes(1), 'no [UNK]: every character is kept');
    assert.throws(() => shrinkVocab(BERT, corpus, 10), /below the \d+ special and character tokens/);
  });
});
