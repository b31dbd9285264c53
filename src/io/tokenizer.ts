/**
 * Text → input_ids / attention_mask / token_type_ids for BERT (WordPiece) and RoBERTa (byte-level
 * BPE) model folders, as transformers' fast tokenizers give them. Tokenizing is
 * @huggingface/tokenizers'; this module adds what it lacks: loading legacy vocabulary files,
 * truncation ('longest_first', as the Rust tokenizer does it) and padded batches.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { z } from 'zod';
import { InputError } from '../util/errors.js';
import { readBytes, readJson } from '../util/files.js';
import { parseWith } from '../util/validate.js';

export type TokenizerKind = 'wordpiece' | 'bpe';

/** Truncation length when none is given (BERT's and RoBERTa's position limit). */
const DEFAULT_MAX_LENGTH = 512;

export interface Encoding {
  inputIds: number[];
  attentionMask: number[];
  tokenTypeIds: number[];
}

/** Row-major [batch, seqLen] arrays, rows padded on the right. */
export interface BatchEncoding {
  inputIds: Int32Array;
  attentionMask: Int32Array;
  tokenTypeIds: Int32Array;
  shape: [batch: number, seqLen: number];
}

/** One text, or a sentence pair. */
export type TextInput = string | readonly [textA: string, textB?: string];

export interface EncodeOptions {
  /** Length after adding special tokens; longer inputs are truncated (default 512). */
  maxLength?: number;
}

export interface BatchOptions extends EncodeOptions {
  /** Row length: the longest row (default) or a fixed length ≥ every row. */
  padTo?: 'longest' | number;
}

/** The tokenizer.json object (the subset we build and read). */
export interface TokenizerJson {
  version?: string;
  truncation?: unknown;
  padding?: { pad_token?: string } | null;
  added_tokens: AddedTokenJson[];
  normalizer: object | null;
  pre_tokenizer: object | null;
  post_processor: object | null;
  decoder: object | null;
  model: { type?: string; [key: string]: unknown };
}

/** What we use of tokenizers.js (its .d.ts files do not resolve under NodeNext, so it types as any). */
interface HfTokenizer {
  encode(text: string, opts: { add_special_tokens: boolean }): { ids: (number | undefined)[] };
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  get_vocab(withAddedTokens: boolean): Map<string, number>;
  post_processor: {
    post_process(tokens: string[], pair: string[] | null, addSpecialTokens: boolean): PostProcessed;
  } | null;
  normalizer: { config?: { type?: string }; tokenize_chinese_chars?: (text: string) => string } | null;
  pre_tokenizer: { config?: { type?: string }; pattern?: RegExp } | null;
}

interface PostProcessed {
  tokens: string[];
  /** Left unmerged by the ByteLevel post-processor. */
  tokens_pair?: string[] | null;
  token_type_ids?: number[];
}

interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** The files a tokenizer may come from in a model folder. */
export const TOKENIZER_FILES = {
  tokenizer: 'tokenizer.json',
  config: 'tokenizer_config.json',
  specialMap: 'special_tokens_map.json',
  wordpieceVocab: 'vocab.txt',
  bpeVocab: 'vocab.json',
  bpeMerges: 'merges.txt',
} as const;

const LOOKED_FOR =
  `${TOKENIZER_FILES.tokenizer}, ${TOKENIZER_FILES.wordpieceVocab} (BERT WordPiece), ` +
  `${TOKENIZER_FILES.bpeVocab} + ${TOKENIZER_FILES.bpeMerges} (RoBERTa byte-level BPE)`;

/** transformers tokenizer classes whose legacy files we can read. */
const LEGACY_CLASSES: Record<string, TokenizerKind> = {
  BertTokenizer: 'wordpiece',
  BertTokenizerFast: 'wordpiece',
  DistilBertTokenizer: 'wordpiece',
  DistilBertTokenizerFast: 'wordpiece',
  RobertaTokenizer: 'bpe',
  RobertaTokenizerFast: 'bpe',
};

const SPECIAL_NAMES = ['unk', 'sep', 'pad', 'cls', 'mask', 'bos', 'eos'] as const;
type SpecialName = (typeof SPECIAL_NAMES)[number];
type SpecialTokens = Partial<Record<SpecialName, string>>;

const DEFAULT_SPECIALS: Record<TokenizerKind, Record<SpecialName, string>> = {
  wordpiece: {
    unk: '[UNK]',
    sep: '[SEP]',
    pad: '[PAD]',
    cls: '[CLS]',
    mask: '[MASK]',
    bos: '[CLS]',
    eos: '[SEP]',
  },
  bpe: { unk: '<unk>', sep: '</s>', pad: '<pad>', cls: '<s>', mask: '<mask>', bos: '<s>', eos: '</s>' },
};

// special tokens are saved as strings or as AddedToken objects; null means "none"
const TokenText = z.union([z.string(), z.object({ content: z.string() }).loose()]).nullable();
const specialFields = Object.fromEntries(SPECIAL_NAMES.map((n) => [`${n}_token`, TokenText.optional()]));

const TokenizerConfigJson = z
  .object({
    tokenizer_class: z.string().nullable().optional(),
    do_lower_case: z.boolean().optional(),
    strip_accents: z.boolean().nullable().optional(),
    tokenize_chinese_chars: z.boolean().optional(),
    add_prefix_space: z.boolean().optional(),
    ...specialFields,
  })
  .loose();
type TokenizerConfig = z.output<typeof TokenizerConfigJson>;

const SpecialTokensMapJson = z.object(specialFields).loose();

const TokenizerJsonShape = z
  .object({
    added_tokens: z.array(z.object({ id: z.number().int().min(0), content: z.string() }).loose()),
    model: z.object({ type: z.string().optional() }).loose(),
  })
  .loose();

const BpeVocabJson = z.record(z.string(), z.number().int().min(0));

/** Loads the tokenizer of a Hugging Face model folder (tokenizer.json, else legacy vocabulary files). */
export function loadTokenizer(dir: string): TextTokenizer {
  const config = readTokenizerConfig(dir);
  const names = readSpecialTokens(dir);
  const jsonFile = join(dir, TOKENIZER_FILES.tokenizer);
  if (existsSync(jsonFile)) {
    const json = parseWith(TokenizerJsonShape, readJson(jsonFile), jsonFile) as unknown as TokenizerJson;
    return new TextTokenizer(json, config, jsonFile, names.pad);
  }
  return new TextTokenizer(legacyTokenizerJson(dir), config, dir, names.pad);
}

/** The tokenizer.json that transformers converts the legacy vocabulary files of `dir` to. */
export function legacyTokenizerJson(dir: string): TokenizerJson {
  const config = readTokenizerConfig(dir);
  const names = readSpecialTokens(dir);
  const kind = legacyKind(dir, config);
  if (kind === 'wordpiece') {
    const file = join(dir, TOKENIZER_FILES.wordpieceVocab);
    return wordPieceJson(file, readWordPieceVocab(file), names, {
      lowercase: config.do_lower_case ?? true,
      stripAccents: config.strip_accents ?? null,
      chineseChars: config.tokenize_chinese_chars ?? true,
    });
  }
  const vocabFile = join(dir, TOKENIZER_FILES.bpeVocab);
  const mergesFile = join(dir, TOKENIZER_FILES.bpeMerges);
  const vocab = parseWith(BpeVocabJson, readJson(vocabFile), vocabFile);
  return byteLevelBpeJson(vocabFile, vocab, readMerges(mergesFile), names, config.add_prefix_space ?? false);
}

/**
 * Token lengths [n1, n2] that a pair of n1 and n2 tokens is cut to so that it fits `budget`,
 * by the Rust tokenizer's 'longest_first' rule (which transformers' fast tokenizers use).
 */
export function longestFirstLengths(n1: number, n2: number, budget: number): [number, number] {
  if (n1 + n2 <= budget) return [n1, n2];
  const swap = n1 > n2;
  let short = Math.min(n1, n2);
  // cut the longer one to what the shorter leaves; if the shorter alone is over half, halve both
  let long = short > budget ? short : Math.max(short, budget - short);
  if (short + long > budget) {
    short = Math.floor(budget / 2);
    long = short + (budget % 2);
  }
  return swap ? [long, short] : [short, long];
}

export class TextTokenizer {
  readonly kind: TokenizerKind;
  /** Id of the padding token (BERT [PAD] = 0, RoBERTa <pad> = 1). */
  readonly padId: number;
  /** Tokens in the vocabulary, added tokens included (transformers' len(tokenizer)). */
  readonly vocabSize: number;
  private readonly tokenizer: HfTokenizer;
  private readonly specialCount: { single: number; pair: number };
  // Rust's RobertaProcessing gives every token type id 0; tokenizers.js gives the second segment 1
  private readonly zeroTypeIds: boolean;

  /** From a tokenizer.json object; `source` names it in errors. */
  constructor(
    json: TokenizerJson,
    config: object,
    private readonly source: string,
    padToken?: string,
  ) {
    this.kind = kindOf(json, source);
    try {
      this.tokenizer = new Tokenizer(json, config) as HfTokenizer;
    } catch (e) {
      throw new InputError(source, `not a tokenizer tokenizers.js can build: ${(e as Error).message}`);
    }
    matchRustTokenizers(this.tokenizer);
    this.zeroTypeIds = hasRobertaProcessing(json.post_processor);
    this.specialCount = {
      single: this.assemble([], null).ids.length,
      pair: this.assemble([], []).ids.length,
    };
    this.vocabSize = this.tokenizer.get_vocab(true).size;
    const pad = padToken ?? json.padding?.pad_token ?? DEFAULT_SPECIALS[this.kind].pad;
    const padId = this.tokenizer.token_to_id(pad);
    if (padId === undefined) {
      throw new InputError(
        source,
        `pad token '${pad}' is not in the vocabulary; set pad_token in ${TOKENIZER_FILES.config}`,
      );
    }
    this.padId = padId;
  }

  /** Encodes one text or a pair with special tokens, truncated to `maxLength` ('longest_first' for pairs). */
  encode(textA: string, textB?: string, opts: EncodeOptions = {}): Encoding {
    const pair = textB !== undefined; // '' is an empty second segment, as in transformers' batch calls
    const maxLength = opts.maxLength ?? DEFAULT_MAX_LENGTH;
    const specials = pair ? this.specialCount.pair : this.specialCount.single;
    if (!Number.isInteger(maxLength) || maxLength < specials) {
      throw new InputError(
        `${this.source}: encode: maxLength ${maxLength} is not allowed; allowed: an integer ≥ ${specials} ` +
          `(the special tokens of a ${pair ? 'pair' : 'single text'})`,
      );
    }
    let a = this.textIds(textA);
    let b = pair ? this.textIds(textB) : null;
    const budget = maxLength - specials;
    if (b) {
      const [n1, n2] = longestFirstLengths(a.length, b.length, budget);
      a = a.slice(0, n1);
      b = b.slice(0, n2);
    } else {
      a = a.slice(0, budget);
    }
    const { ids, typeIds } = this.assemble(a, b);
    return { inputIds: ids, attentionMask: ids.map(() => 1), tokenTypeIds: typeIds };
  }

  /** Encodes texts or pairs into [batch, seqLen] arrays padded with `padId` (mask 0, type id 0). */
  encodeBatch(inputs: readonly TextInput[], opts: BatchOptions = {}): BatchEncoding {
    const rows = inputs.map((x) =>
      typeof x === 'string' ? this.encode(x, undefined, opts) : this.encode(x[0], x[1], opts),
    );
    const longest = rows.reduce((m, r) => Math.max(m, r.inputIds.length), 0);
    const padTo = opts.padTo ?? 'longest';
    if (padTo !== 'longest' && (!Number.isInteger(padTo) || padTo < longest)) {
      throw new InputError(
        `${this.source}: encodeBatch: padTo ${JSON.stringify(padTo)} is not allowed; allowed: 'longest' or an ` +
          `integer ≥ ${longest}, the longest row (pass maxLength ≤ padTo to truncate to it)`,
      );
    }
    const seqLen = padTo === 'longest' ? longest : padTo;
    const inputIds = new Int32Array(rows.length * seqLen).fill(this.padId);
    const attentionMask = new Int32Array(rows.length * seqLen);
    const tokenTypeIds = new Int32Array(rows.length * seqLen);
    rows.forEach((r, i) => {
      inputIds.set(r.inputIds, i * seqLen);
      attentionMask.set(r.attentionMask, i * seqLen);
      tokenTypeIds.set(r.tokenTypeIds, i * seqLen);
    });
    return { inputIds, attentionMask, tokenTypeIds, shape: [rows.length, seqLen] };
  }

  /** The token strings of `ids` (for inspecting an encoding). */
  tokens(ids: readonly number[]): string[] {
    return ids.map((id) => this.tokenizer.id_to_token(id) ?? `<id ${id}?>`);
  }

  private textIds(text: string): number[] {
    const ids = this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    if (ids.some((id) => id === undefined)) {
      throw new InputError(
        this.source,
        `${JSON.stringify(text)} has a token outside the vocabulary and no unk_token`,
      );
    }
    return ids as number[];
  }

  /** Lays out the segments with special tokens as the post-processor says, and their type ids. */
  private assemble(a: readonly number[], b: readonly number[] | null): { ids: number[]; typeIds: number[] } {
    const post = this.tokenizer.post_processor;
    if (!post) {
      return { ids: [...a, ...(b ?? [])], typeIds: [...a.map(() => 0), ...(b ?? []).map(() => 1)] };
    }
    // markers let the post-processor place the segments without us parsing its template
    const mark = (seg: 'A' | 'B', n: number) => Array.from({ length: n }, (_, i) => `\u0000${seg}${i}`);
    const out = post.post_process(mark('A', a.length), b && mark('B', b.length), true);
    const tokens = out.tokens_pair ? [...out.tokens, ...out.tokens_pair] : out.tokens;
    const ids = tokens.map((t) => {
      if (t.startsWith('\u0000A')) return a[Number(t.slice(2))]!;
      if (t.startsWith('\u0000B')) return b![Number(t.slice(2))]!;
      const id = this.tokenizer.token_to_id(t);
      if (id === undefined) {
        throw new InputError(this.source, `post_processor: token '${t}' is not in the vocabulary`);
      }
      return id;
    });
    const typeIds = this.zeroTypeIds
      ? ids.map(() => 0)
      : (out.token_type_ids ?? [...out.tokens.map(() => 0), ...(out.tokens_pair ?? []).map(() => 1)]);
    return { ids, typeIds };
  }
}

/** CJK ideographs that BERT pads with spaces (its _is_chinese_char ranges), beyond the BMP too. */
const CJK_IDEOGRAPH =
  /[\u{3400}-\u{4DBF}\u{4E00}-\u{9FFF}\u{F900}-\u{FAFF}\u{20000}-\u{2A6DF}\u{2A700}-\u{2CEAF}\u{2F800}-\u{2FA1F}]/gu;

/** GPT-2's split pattern with Oniguruma's \s (Unicode White_Space: has U+0085, lacks U+FEFF, unlike JS). */
const BYTE_LEVEL_SPLIT =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;

/**
 * Two places where tokenizers.js 0.2.0 departs from the Rust tokenizers that transformers runs:
 * BertNormalizer pads CJK ideographs per UTF-16 unit (so misses those beyond the BMP), and the
 * ByteLevel pre-tokenizer splits on JS's \s. Both are replaced on the built instance.
 */
function matchRustTokenizers(tokenizer: HfTokenizer): void {
  const norm = tokenizer.normalizer;
  if (norm?.config?.type === 'BertNormalizer' && typeof norm.tokenize_chinese_chars === 'function') {
    norm.tokenize_chinese_chars = (text) => text.replace(CJK_IDEOGRAPH, ' $& ');
  }
  const pre = tokenizer.pre_tokenizer;
  if (pre?.config?.type === 'ByteLevel' && pre.pattern instanceof RegExp) pre.pattern = BYTE_LEVEL_SPLIT;
}

function kindOf(json: TokenizerJson, source: string): TokenizerKind {
  const type =
    json.model.type ??
    ('merges' in json.model ? 'BPE' : 'continuing_subword_prefix' in json.model ? 'WordPiece' : '');
  if (type === 'WordPiece') return 'wordpiece';
  if (type === 'BPE') return 'bpe';
  throw new InputError(
    source,
    `model.type: '${type}' is not supported; allowed: 'WordPiece' (BERT), 'BPE' (RoBERTa)`,
  );
}

function hasRobertaProcessing(post: object | null): boolean {
  const p = post as { type?: string; processors?: object[] } | null;
  return p?.type === 'RobertaProcessing' || (p?.processors ?? []).some(hasRobertaProcessing);
}

function readTokenizerConfig(dir: string): TokenizerConfig {
  const file = join(dir, TOKENIZER_FILES.config);
  return existsSync(file) ? parseWith(TokenizerConfigJson, readJson(file), file) : {};
}

/** Special-token names from tokenizer_config.json, overridden by special_tokens_map.json (as transformers does). */
function readSpecialTokens(dir: string): SpecialTokens {
  const mapFile = join(dir, TOKENIZER_FILES.specialMap);
  const fromMap = existsSync(mapFile) ? parseWith(SpecialTokensMapJson, readJson(mapFile), mapFile) : {};
  const fromConfig = readTokenizerConfig(dir);
  const names: SpecialTokens = {};
  for (const n of SPECIAL_NAMES) {
    const v =
      (fromMap as Record<string, unknown>)[`${n}_token`] ??
      (fromConfig as Record<string, unknown>)[`${n}_token`];
    if (typeof v === 'string') names[n] = v;
    else if (v && typeof v === 'object') names[n] = (v as { content: string }).content;
  }
  return names;
}

function legacyKind(dir: string, config: TokenizerConfig): TokenizerKind {
  const has = (f: string) => existsSync(join(dir, f));
  const wordpiece = has(TOKENIZER_FILES.wordpieceVocab);
  const bpe = has(TOKENIZER_FILES.bpeVocab) && has(TOKENIZER_FILES.bpeMerges);
  const cls = config.tokenizer_class;
  if (cls) {
    const kind = LEGACY_CLASSES[cls];
    if (!kind) {
      throw new InputError(
        join(dir, TOKENIZER_FILES.config),
        `tokenizer_class: '${cls}' has no loader for legacy files; allowed: ${Object.keys(LEGACY_CLASSES).join(', ')} ` +
          `(or provide ${TOKENIZER_FILES.tokenizer})`,
      );
    }
    if (kind === 'wordpiece' ? !wordpiece : !bpe) {
      const needs =
        kind === 'wordpiece'
          ? TOKENIZER_FILES.wordpieceVocab
          : `${TOKENIZER_FILES.bpeVocab} + ${TOKENIZER_FILES.bpeMerges}`;
      throw new InputError(
        dir,
        `tokenizer_class '${cls}' needs ${needs}, not found; looked for ${LOOKED_FOR}`,
      );
    }
    return kind;
  }
  if (wordpiece && bpe) {
    throw new InputError(
      dir,
      `both ${TOKENIZER_FILES.wordpieceVocab} and ${TOKENIZER_FILES.bpeVocab} + ${TOKENIZER_FILES.bpeMerges} are present; set tokenizer_class in ${TOKENIZER_FILES.config}`,
    );
  }
  if (wordpiece) return 'wordpiece';
  if (bpe) return 'bpe';
  throw new InputError(dir, `no tokenizer found; looked for ${LOOKED_FOR}`);
}

/** vocab.txt: one token a line, the id is the line number (Python's universal newlines, as transformers reads it). */
function readWordPieceVocab(file: string): Map<string, number> {
  const lines = readText(file).split(/\r\n|\r|\n/);
  if (lines.at(-1) === '') lines.pop();
  return new Map(lines.map((token, id) => [token, id]));
}

/** merges.txt: a '#version' header, then one 'left right' pair a line in rank order. */
function readMerges(file: string): [string, string][] {
  const merges: [string, string][] = [];
  readText(file)
    .split(/\r\n|\r|\n/)
    .forEach((line, i) => {
      if (line === '' || (i === 0 && line.startsWith('#version'))) return;
      const parts = line.split(' ');
      if (parts.length !== 2 || !parts[0] || !parts[1]) {
        throw new InputError(
          file,
          `line ${i + 1}: ${JSON.stringify(line)} is not allowed; allowed: two tokens separated by one space`,
        );
      }
      merges.push([parts[0], parts[1]]);
    });
  return merges;
}

const readText = (file: string): string => readBytes(file).toString('utf8');

/** Resolves the named special tokens to ids; `required` ones must be in the vocabulary. */
function specialIds(
  file: string,
  vocab: ReadonlyMap<string, number>,
  names: SpecialTokens,
  kind: TokenizerKind,
  required: readonly SpecialName[],
): Map<SpecialName, [string, number]> {
  const found = new Map<SpecialName, [string, number]>();
  for (const n of SPECIAL_NAMES) {
    const token = names[n] ?? DEFAULT_SPECIALS[kind][n];
    const id = vocab.get(token);
    if (id !== undefined) found.set(n, [token, id]);
    else if (required.includes(n)) {
      throw new InputError(
        file,
        `${n}_token '${token}' is not in the vocabulary; set ${n}_token in ${TOKENIZER_FILES.config} to one that is`,
      );
    }
  }
  return found;
}

function addedTokens(
  specials: Map<SpecialName, [string, number]>,
  lstrip: ReadonlySet<SpecialName>,
): AddedTokenJson[] {
  const byId = new Map<number, AddedTokenJson>();
  for (const [n, [content, id]] of specials) {
    const t = byId.get(id) ?? {
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    };
    t.lstrip ||= lstrip.has(n);
    byId.set(id, t);
  }
  return [...byId.values()].sort((x, y) => x.id - y.id);
}

/** BERT's tokenizer.json, as transformers' BertConverter makes it. */
function wordPieceJson(
  file: string,
  vocab: Map<string, number>,
  names: SpecialTokens,
  opts: { lowercase: boolean; stripAccents: boolean | null; chineseChars: boolean },
): TokenizerJson {
  const specials = specialIds(file, vocab, names, 'wordpiece', ['unk', 'cls', 'sep']);
  const [cls, clsId] = specials.get('cls')!;
  const [sep, sepId] = specials.get('sep')!;
  const special = (id: string, typeId: number) => ({ SpecialToken: { id, type_id: typeId } });
  const sequence = (id: 'A' | 'B', typeId: number) => ({ Sequence: { id, type_id: typeId } });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(specials, new Set()),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: opts.chineseChars,
      strip_accents: opts.stripAccents, // null: follow lowercase
      lowercase: opts.lowercase,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [special(cls, 0), sequence('A', 0), special(sep, 0)],
      pair: [special(cls, 0), sequence('A', 0), special(sep, 0), sequence('B', 1), special(sep, 1)],
      special_tokens: {
        [cls]: { id: cls, ids: [clsId], tokens: [cls] },
        [sep]: { id: sep, ids: [sepId], tokens: [sep] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: specials.get('unk')![0],
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(vocab),
    },
  };
}

/** RoBERTa's tokenizer.json, as transformers' RobertaConverter makes it. */
function byteLevelBpeJson(
  file: string,
  vocab: Record<string, number>,
  merges: [string, string][],
  names: SpecialTokens,
  addPrefixSpace: boolean,
): TokenizerJson {
  const specials = specialIds(file, new Map(Object.entries(vocab)), names, 'bpe', ['cls', 'sep']);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    // <mask> swallows the space before it, as RobertaTokenizer declares it
    added_tokens: addedTokens(specials, new Set(['mask'])),
    normalizer: null,
    pre_tokenizer: {
      type: 'ByteLevel',
      add_prefix_space: addPrefixSpace,
      trim_offsets: true,
      use_regex: true,
    },
    post_processor: {
      type: 'RobertaProcessing',
      sep: specials.get('sep')!,
      cls: specials.get('cls')!,
      trim_offsets: true,
      add_prefix_space: addPrefixSpace,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}
