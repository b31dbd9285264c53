/**
 * Tokenizers against transformers' fast tokenizers: every entry of
 * test/fixtures/tokenizers/reference.json (made by scripts/reference/tokenizers.py), and ids
 * checked by hand against transformers 5.18 / tokenizers 0.23.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  legacyTokenizerJson,
  loadTokenizer,
  longestFirstLengths,
  type TextTokenizer,
} from '../../src/io/tokenizer.js';
import { FIXTURES } from '../helpers/models.js';

const BERT_DIR = join(FIXTURES, 'vocab/bert-base-uncased');
const ROBERTA_DIR = join(FIXTURES, 'vocab/roberta-base');
const GLUE_DIR = join(FIXTURES, 'glue');
const REFERENCE = join(FIXTURES, 'tokenizers/reference.json');

const bert = loadTokenizer(BERT_DIR);
const roberta = loadTokenizer(ROBERTA_DIR);

/** Rows of a GLUE .tsv as objects by header name (MRPC starts with a BOM; sentences hold bare quotes). */
function tsvRows(file: string): Record<string, string>[] {
  const [header, ...lines] = readFileSync(file, 'utf8')
    .replace(/^\uFEFF/, '')
    .split('\n');
  const names = header!.split('\t');
  return lines
    .filter((l) => l.trim())
    .map((l) => Object.fromEntries(l.split('\t').map((v, i) => [names[i], v])));
}

/** A temp folder with copies of `files` from `from` and the given JSON files. */
function folder(from: string, files: string[], json: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'xbar-tok-'));
  for (const f of files) copyFileSync(join(from, f), join(dir, f));
  for (const [name, value] of Object.entries(json)) writeFileSync(join(dir, name), JSON.stringify(value));
  return dir;
}

describe('legacy vocabulary files', () => {
  it('bert-base-uncased: WordPiece, [PAD] = 0, 30522 tokens', () => {
    assert.equal(bert.kind, 'wordpiece');
    assert.equal(bert.padId, 0);
    assert.equal(bert.vocabSize, 30522);
  });

  it('roberta-base: byte-level BPE, <pad> = 1, 50265 tokens', () => {
    assert.equal(roberta.kind, 'bpe');
    assert.equal(roberta.padId, 1);
    assert.equal(roberta.vocabSize, 50265);
  });

  it("BERT 'Hello, world!' → [CLS] hello , world ! [SEP]", () => {
    assert.deepEqual(bert.encode('Hello, world!'), {
      inputIds: [101, 7592, 1010, 2088, 999, 102],
      attentionMask: [1, 1, 1, 1, 1, 1],
      tokenTypeIds: [0, 0, 0, 0, 0, 0],
    });
  });

  it("RoBERTa 'Hello world' → <s> Hello Ġworld </s>", () => {
    assert.deepEqual(roberta.encode('Hello world').inputIds, [0, 31414, 232, 2]);
    assert.deepEqual(roberta.tokens([0, 31414, 232, 2]), ['<s>', 'Hello', 'Ġworld', '</s>']);
  });

  it('BERT lowercases, strips accents, splits WordPiece and CJK (beyond the BMP too)', () => {
    assert.deepEqual(bert.encode('Café naïve RÉSUMÉ').inputIds, [101, 7668, 15743, 13746, 102]);
    assert.deepEqual(bert.encode('unaffable').inputIds, [101, 14477, 20961, 3468, 102]);
    // 𠀀 (U+20000) is padded as an ideograph and becomes [UNK], leaving 'a' a word of its own
    assert.deepEqual(bert.encode('北京𠀀a').inputIds, [101, 1781, 1755, 100, 1037, 102]);
  });

  it("RoBERTa splits on Unicode White_Space as the Rust tokenizer does (U+0085 is space, U+FEFF isn't)", () => {
    assert.deepEqual(
      roberta.encode(' \uFEFFhi\u0085there').inputIds,
      [0, 33549, 2023, 9470, 3592, 4056, 5782, 8585, 2],
    );
  });

  it('RoBERTa <mask> takes the space before it (lstrip, as transformers 4 and the hub tokenizer.json)', () => {
    assert.deepEqual(roberta.encode('a <mask> b').inputIds, [0, 102, 50264, 741, 2]);
    assert.deepEqual(roberta.encode('a<mask> b').inputIds, [0, 102, 50264, 741, 2]);
  });

  it('an empty text is only the special tokens', () => {
    assert.deepEqual(bert.encode('').inputIds, [101, 102]);
    assert.deepEqual(roberta.encode('').inputIds, [0, 2]);
  });

  it('pairs: BERT types the second segment 1, RoBERTa types everything 0', () => {
    assert.deepEqual(bert.encode('Hello', 'world'), {
      inputIds: [101, 7592, 102, 2088, 102],
      attentionMask: [1, 1, 1, 1, 1],
      tokenTypeIds: [0, 0, 0, 1, 1],
    });
    assert.deepEqual(roberta.encode('Hello', 'world'), {
      inputIds: [0, 31414, 2, 2, 8331, 2],
      attentionMask: [1, 1, 1, 1, 1, 1],
      tokenTypeIds: [0, 0, 0, 0, 0, 0],
    });
  });

  it('do_lower_case false keeps case and accents; strip_accents false keeps accents only', () => {
    const cased = loadTokenizer(
      folder(BERT_DIR, ['vocab.txt'], { 'tokenizer_config.json': { do_lower_case: false } }),
    );
    assert.deepEqual(cased.encode('Hello café').inputIds, [101, 100, 100, 102]);
    const accents = loadTokenizer(
      folder(BERT_DIR, ['vocab.txt'], { 'tokenizer_config.json': { strip_accents: false } }),
    );
    assert.deepEqual(accents.encode('Hello café').inputIds, [101, 7592, 100, 102]);
  });

  it('add_prefix_space true gives RoBERTa a leading Ġ', () => {
    const dir = folder(ROBERTA_DIR, ['vocab.json', 'merges.txt'], {
      'tokenizer_config.json': { tokenizer_class: 'RobertaTokenizer', add_prefix_space: true },
    });
    assert.deepEqual(loadTokenizer(dir).encode('Hello world').inputIds, [0, 20920, 232, 2]);
  });

  it('pad_token from tokenizer_config.json, overridden by special_tokens_map.json', () => {
    const dir = folder(BERT_DIR, ['vocab.txt'], {
      'tokenizer_config.json': { pad_token: { content: '[MASK]' } },
    });
    assert.equal(loadTokenizer(dir).padId, 103);
    writeFileSync(join(dir, 'special_tokens_map.json'), JSON.stringify({ pad_token: '[UNK]' }));
    assert.equal(loadTokenizer(dir).padId, 100);
  });
});

describe('truncation', () => {
  it("longestFirstLengths follows the Rust tokenizer's cases (budget 7)", () => {
    const cases: [number, number, number, number][] = [
      [0, 0, 0, 0],
      [0, 8, 0, 7],
      [2, 8, 2, 5],
      [4, 2, 4, 2],
      [4, 4, 3, 4],
      [4, 8, 3, 4],
      [8, 0, 7, 0],
      [8, 2, 5, 2],
      [8, 4, 4, 3],
      [8, 8, 3, 4],
    ];
    for (const [n1, n2, w1, w2] of cases)
      assert.deepEqual(longestFirstLengths(n1, n2, 7), [w1, w2], `${n1}, ${n2}`);
    assert.deepEqual(longestFirstLengths(5, 9, 0), [0, 0]);
  });

  it('a single text is cut to maxLength, special tokens kept', () => {
    const got = bert.encode('one two three four five six seven eight nine ten', undefined, { maxLength: 6 });
    assert.deepEqual(got.inputIds, [101, 2028, 2048, 2093, 2176, 102]);
    const long = 'word '.repeat(600);
    assert.equal(bert.encode(long).inputIds.length, 512);
    assert.equal(roberta.encode(long, undefined, { maxLength: 128 }).inputIds.length, 128);
    assert.equal(roberta.encode(long, undefined, { maxLength: 128 }).inputIds.at(-1), 2);
  });

  it("pairs are cut 'longest_first' as transformers does", () => {
    const ids = (a: string, b: string, maxLength: number, t: TextTokenizer = bert) =>
      t.encode(a, b, { maxLength }).inputIds;
    assert.deepEqual(
      ids('a b c d e f g h i j', 'k l m', 10),
      [101, 1037, 1038, 1039, 1040, 102, 1047, 1048, 1049, 102],
    );
    assert.deepEqual(
      ids('a b c', 'd e f g h i j k l m', 10),
      [101, 1037, 1038, 1039, 102, 1040, 1041, 1042, 1043, 102],
    );
    // both over half: the first gets budget/2, the second the rest
    assert.deepEqual(
      ids('a b c d e f g h', 'i j k l m n o p', 10),
      [101, 1037, 1038, 1039, 102, 1045, 1046, 1047, 1048, 102],
    );
    assert.deepEqual(
      ids('one two three four five six seven', 'eight nine', 9, roberta),
      [0, 1264, 80, 130, 2, 2, 19491, 1117, 2],
    );
    assert.deepEqual(
      bert.encode('a b c d e f g h', 'i j k l m n o p', { maxLength: 10 }).tokenTypeIds,
      [0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
    );
  });

  it('maxLength below the special tokens is refused, naming the limit', () => {
    assert.throws(() => bert.encode('a', 'b', { maxLength: 2 }), /maxLength 2 .*integer ≥ 3 .*pair/);
    assert.throws(() => roberta.encode('a', undefined, { maxLength: 1.5 }), /maxLength 1.5 .*integer ≥ 2/);
    assert.deepEqual(bert.encode('a', 'b', { maxLength: 3 }).inputIds, [101, 102, 102]);
  });
});

describe('batches', () => {
  const sst2 = tsvRows(join(GLUE_DIR, 'SST-2/dev.tsv')).slice(0, 8);
  const mrpc = tsvRows(join(GLUE_DIR, 'MRPC/dev.tsv')).slice(0, 4);

  it('SST-2 sentences: rows equal single encodings, padded to the longest with the pad id', () => {
    for (const t of [bert, roberta]) {
      const texts = sst2.map((r) => r['sentence']!);
      const rows = texts.map((s) => t.encode(s));
      const seqLen = Math.max(...rows.map((r) => r.inputIds.length));
      const batch = t.encodeBatch(texts);
      assert.deepEqual(batch.shape, [8, seqLen]);
      rows.forEach((r, i) => {
        const row = (a: Int32Array) => [...a.subarray(i * seqLen, (i + 1) * seqLen)];
        const pad = seqLen - r.inputIds.length;
        assert.deepEqual(row(batch.inputIds), [...r.inputIds, ...Array(pad).fill(t.padId)]);
        assert.deepEqual(row(batch.attentionMask), [...r.attentionMask, ...Array(pad).fill(0)]);
        assert.deepEqual(row(batch.tokenTypeIds), [...r.tokenTypeIds, ...Array(pad).fill(0)]);
      });
    }
  });

  it('MRPC pairs: the second segment is typed 1 up to its [SEP], padding 0', () => {
    assert.equal(Object.keys(mrpc[0]!)[0], 'Quality'); // the BOM is not part of the first name
    const pairs = mrpc.map((r) => [r['#1 String']!, r['#2 String']!] as const);
    const batch = bert.encodeBatch(pairs, { maxLength: 64, padTo: 64 });
    assert.deepEqual(batch.shape, [4, 64]);
    pairs.forEach(([a, b], i) => {
      const want = bert.encode(a, b, { maxLength: 64 });
      const types = [...batch.tokenTypeIds.subarray(i * 64, (i + 1) * 64)];
      assert.deepEqual(types, [...want.tokenTypeIds, ...Array(64 - want.inputIds.length).fill(0)]);
      const firstSep = want.inputIds.indexOf(102);
      assert.ok(types.slice(0, firstSep + 1).every((x) => x === 0) && types[firstSep + 1] === 1);
    });
  });

  it('mixed texts and pairs; a fixed padTo; padTo below the longest row is refused', () => {
    const batch = roberta.encodeBatch(['Hello world', ['Hello', 'world']], { padTo: 8 });
    assert.deepEqual([...batch.inputIds], [0, 31414, 232, 2, 1, 1, 1, 1, 0, 31414, 2, 2, 8331, 2, 1, 1]);
    assert.deepEqual([...batch.attentionMask], [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0]);
    assert.throws(() => bert.encodeBatch(['Hello, world!'], { padTo: 4 }), /padTo 4 .*≥ 6/);
    assert.deepEqual(bert.encodeBatch([]).shape, [0, 0]);
  });
});

describe('tokenizer.json folders', () => {
  const sample = [
    ...tsvRows(join(GLUE_DIR, 'SST-2/dev.tsv'))
      .slice(0, 20)
      .map((r) => [r['sentence']!] as const),
    ...tsvRows(join(GLUE_DIR, 'MRPC/dev.tsv'))
      .slice(0, 10)
      .map((r) => [r['#1 String']!, r['#2 String']!] as const),
    ['Café 北京 😀 <mask> [MASK]'] as const,
  ];

  for (const [name, dir, t] of [
    ['BERT', BERT_DIR, bert],
    ['RoBERTa', ROBERTA_DIR, roberta],
  ] as const) {
    it(`${name}: the in-memory tokenizer.json, saved, loads to the same ids`, () => {
      const saved = folder(dir, [], { 'tokenizer.json': legacyTokenizerJson(dir) });
      const fromJson = loadTokenizer(saved);
      assert.equal(fromJson.kind, t.kind);
      assert.equal(fromJson.padId, t.padId);
      assert.equal(fromJson.vocabSize, t.vocabSize);
      for (const [a, b] of sample)
        assert.deepEqual(fromJson.encode(a, b, { maxLength: 64 }), t.encode(a, b, { maxLength: 64 }));
    });
  }

  it('tokenizer.json wins over legacy files in the same folder', () => {
    const dir = folder(BERT_DIR, ['vocab.txt'], { 'tokenizer.json': legacyTokenizerJson(ROBERTA_DIR) });
    assert.equal(loadTokenizer(dir).kind, 'bpe');
  });
});

describe('errors name the file, the field, the value and what is allowed', () => {
  it('a folder with no tokenizer lists the files looked for', () => {
    const dir = folder(BERT_DIR, []);
    assert.throws(
      () => loadTokenizer(dir),
      (e: Error) => {
        assert.ok(e.message.startsWith(dir), e.message);
        for (const f of ['tokenizer.json', 'vocab.txt', 'vocab.json', 'merges.txt'])
          assert.ok(e.message.includes(f), e.message);
        return true;
      },
    );
  });

  it('an unknown tokenizer_class', () => {
    const dir = folder(BERT_DIR, ['vocab.txt'], {
      'tokenizer_config.json': { tokenizer_class: 'XLNetTokenizer' },
    });
    assert.throws(
      () => loadTokenizer(dir),
      /tokenizer_config\.json: tokenizer_class: 'XLNetTokenizer' .*allowed: BertTokenizer/,
    );
  });

  it('a tokenizer_class whose files are missing', () => {
    const dir = folder(BERT_DIR, ['vocab.txt'], {
      'tokenizer_config.json': { tokenizer_class: 'RobertaTokenizer' },
    });
    assert.throws(() => loadTokenizer(dir), /'RobertaTokenizer' needs vocab\.json \+ merges\.txt/);
  });

  it('a mistyped tokenizer_config.json field', () => {
    const dir = folder(BERT_DIR, ['vocab.txt'], { 'tokenizer_config.json': { do_lower_case: 'yes' } });
    assert.throws(() => loadTokenizer(dir), /tokenizer_config\.json:[\s\S]*do_lower_case: .*received "yes"/);
  });

  it('a special token missing from vocab.txt', () => {
    const dir = folder(BERT_DIR, ['vocab.txt'], { 'tokenizer_config.json': { cls_token: '[BOS]' } });
    assert.throws(() => loadTokenizer(dir), /vocab\.txt: cls_token '\[BOS\]' is not in the vocabulary/);
  });

  it('a malformed merges.txt line', () => {
    const dir = folder(ROBERTA_DIR, ['vocab.json']);
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\nĠ t\nĠta\n');
    assert.throws(() => loadTokenizer(dir), /merges\.txt: line 3: "Ġta" is not allowed; allowed: two tokens/);
  });

  it('a tokenizer.json of an unsupported model type', () => {
    const json = { ...legacyTokenizerJson(BERT_DIR), model: { type: 'Unigram', vocab: [['a', 0]] } };
    const dir = folder(BERT_DIR, [], { 'tokenizer.json': json });
    assert.throws(
      () => loadTokenizer(dir),
      /tokenizer\.json: model\.type: 'Unigram' is not supported; allowed: 'WordPiece'/,
    );
  });
});

describe('reference.json from transformers (scripts/reference/tokenizers.py)', () => {
  interface Entry {
    textA: string;
    textB?: string;
    input_ids: number[];
    token_type_ids: number[];
    attention_mask: number[];
  }
  const ref = JSON.parse(readFileSync(REFERENCE, 'utf8')) as {
    max_length: number;
    bert: Entry[];
    roberta: Entry[];
  };

  it('covers the first 200 SST-2 and 100 MRPC dev rows of the GLUE fixtures, for both tokenizers', () => {
    const sst2 = tsvRows(join(GLUE_DIR, 'SST-2/dev.tsv')).map((r) => [r['sentence']]);
    const mrpc = tsvRows(join(GLUE_DIR, 'MRPC/dev.tsv')).map((r) => [r['#1 String'], r['#2 String']]);
    assert.deepEqual([sst2.length, mrpc.length], [200, 100]);
    for (const name of ['bert', 'roberta'] as const) {
      const texts = ref[name]
        .slice(0, 300)
        .map((e) => (e.textB === undefined ? [e.textA] : [e.textA, e.textB]));
      assert.deepEqual(texts, [...sst2, ...mrpc], name);
    }
  });

  for (const [name, t] of [
    ['bert', bert],
    ['roberta', roberta],
  ] as const) {
    it(`every ${name} entry matches`, () => {
      const entries = ref[name];
      assert.ok(entries.length > 0, `${REFERENCE}: no ${name} entries`);
      const wrong = entries.flatMap((e, i) => {
        const got = t.encode(e.textA, e.textB, { maxLength: ref.max_length });
        const want = {
          inputIds: e.input_ids,
          attentionMask: e.attention_mask,
          tokenTypeIds: e.token_type_ids,
        };
        if (JSON.stringify(got) === JSON.stringify(want)) return [];
        return [
          `#${i} ${JSON.stringify(e.textA).slice(0, 60)}: got ${t.tokens(got.inputIds).join(' ')}; want ${t.tokens(e.input_ids).join(' ')}`,
        ];
      });
      assert.equal(
        wrong.length,
        0,
        `${wrong.length} of ${entries.length} differ:\n${wrong.slice(0, 5).join('\n')}`,
      );
    });
  }
});
