/**
 * GLUE task files (the GLUE release's TSVs): split on tabs only, since MRPC and STS-B sentences
 * hold bare quotes that a CSV reader would take as quoting. Columns are found by header name,
 * so train/dev and the unlabelled test files of a task share one reader.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../util/errors.js';
import { readBytes } from '../util/files.js';

/** The metrics data sets report (eval/metrics.ts computes them). */
export type MetricName = 'accuracy' | 'mcc' | 'f1' | 'pearson' | 'spearman';

export type GlueTask = 'CoLA' | 'SST-2' | 'MRPC' | 'STS-B' | 'QNLI' | 'RTE';
export type GlueSplit = 'train' | 'dev' | 'test';

/** One example; `label` is a class index, STS-B's score, or null in unlabelled (test) files. */
export interface GlueExample {
  textA: string;
  textB?: string;
  label: number | null;
}

export interface GlueTaskInfo {
  /** Number of classes; 1 for regression (STS-B). */
  numLabels: number;
  /** How each class is written in the label column, in index order (Hugging Face's `glue` data set's). */
  labelValues: readonly string[];
  /** Range of a regression score. */
  scoreRange?: readonly [number, number];
  /** Metrics reported for the task, its main one first. */
  metrics: readonly MetricName[];
  /** Header names of the text and label columns. */
  columns: { textA: string; textB?: string; label: string };
  /** Column names of files written without a header row (CoLA's train/dev). */
  headerless?: readonly string[];
  /** File names of each split in the GLUE release layout, tried in order (default `<split>.tsv`). */
  files?: Readonly<Record<GlueSplit, readonly string[]>>;
}

const binary = ['0', '1'] as const;
const entailment = ['entailment', 'not_entailment'] as const;

/** Every supported task, keyed by its folder name in the GLUE release. */
export const GLUE_TASKS: Readonly<Record<GlueTask, GlueTaskInfo>> = {
  CoLA: {
    numLabels: 2,
    labelValues: binary,
    metrics: ['mcc'],
    columns: { textA: 'sentence', label: 'label' },
    headerless: ['source', 'label', 'original_label', 'sentence'],
    // CoLA's own release names train/dev in_domain_*; GLUE renamed them
    files: {
      train: ['train.tsv', 'in_domain_train.tsv'],
      dev: ['dev.tsv', 'in_domain_dev.tsv'],
      test: ['test.tsv'],
    },
  },
  'SST-2': {
    numLabels: 2,
    labelValues: binary,
    metrics: ['accuracy'],
    columns: { textA: 'sentence', label: 'label' },
  },
  MRPC: {
    numLabels: 2,
    labelValues: binary,
    metrics: ['f1', 'accuracy'],
    columns: { textA: '#1 String', textB: '#2 String', label: 'Quality' },
  },
  'STS-B': {
    numLabels: 1,
    labelValues: [],
    scoreRange: [0, 5],
    metrics: ['pearson', 'spearman'],
    columns: { textA: 'sentence1', textB: 'sentence2', label: 'score' },
  },
  QNLI: {
    numLabels: 2,
    labelValues: entailment,
    metrics: ['accuracy'],
    columns: { textA: 'question', textB: 'sentence', label: 'label' },
  },
  RTE: {
    numLabels: 2,
    labelValues: entailment,
    metrics: ['accuracy'],
    columns: { textA: 'sentence1', textB: 'sentence2', label: 'label' },
  },
};

const TASK_NAMES = Object.keys(GLUE_TASKS) as GlueTask[];
const squash = (s: string): string => s.toLowerCase().replace(/[-_\s]/g, '');

/** The task named `name`, ignoring case, '-' and '_' (so 'sst2' and 'STS_B' work). */
export function glueTask(name: string): GlueTask {
  const task = TASK_NAMES.find((t) => squash(t) === squash(name));
  if (!task) throw new InputError(`unknown GLUE task '${name}'; supported: ${TASK_NAMES.join(', ')}`);
  return task;
}

/** The split's file under `dir`, which may be the GLUE root (holding task folders) or the task folder. */
export function findGlueFile(dir: string, task: GlueTask, split: GlueSplit): string {
  const tried: string[] = [];
  for (const base of [dir, join(dir, task)]) {
    for (const name of GLUE_TASKS[task].files?.[split] ?? [`${split}.tsv`]) {
      const path = join(base, name);
      if (existsSync(path)) return path;
      tried.push(path);
    }
  }
  throw new InputError(dir, `no ${task} ${split} file: looked for ${tried.join(', ')}`);
}

/** The file's lines without line ends, the BOM and the empty string after a final newline. */
function readLines(file: string): string[] {
  const bytes = readBytes(file);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new InputError(file, 'not valid UTF-8');
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // MRPC's header starts with a BOM
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/** Parses a label cell into a class index or a score. */
function parseLabel(info: GlueTaskInfo, value: string, file: string, line: number): number {
  if (info.scoreRange) {
    const [lo, hi] = info.scoreRange;
    const x = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(value) ? Number(value) : Number.NaN;
    if (!(x >= lo && x <= hi)) {
      throw new InputError(file, `line ${line}: score '${value}', expected a number in [${lo}, ${hi}]`);
    }
    return x;
  }
  const k = info.labelValues.indexOf(value);
  if (k < 0) {
    const allowed = info.labelValues.map((v) => `'${v}'`).join(', ');
    throw new InputError(
      file,
      `line ${line}: label '${value}' in column '${info.columns.label}', expected one of ${allowed}`,
    );
  }
  return k;
}

/** Reads a task's TSV file; an unlabelled file (no label column, as in test splits) gives null labels. */
export function readGlue(task: GlueTask, file: string): GlueExample[] {
  const info = GLUE_TASKS[task];
  const lines = readLines(file);
  if (lines.length === 0) throw new InputError(file, `empty: a ${task} file needs at least a header row`);
  const first = lines[0]!.split('\t');
  // a headerless file is recognised by its column count (CoLA's test file has an `index, sentence` header)
  const headerless = info.headerless !== undefined && first.length === info.headerless.length;
  const names = headerless ? info.headerless! : first;
  const column = (name: string | undefined, required: boolean): number | undefined => {
    if (name === undefined) return undefined;
    const i = names.indexOf(name);
    if (i < 0 && required) {
      throw new InputError(
        file,
        `line 1: header has columns [${first.join(', ')}], expected a '${name}' column`,
      );
    }
    return i < 0 ? undefined : i;
  };
  const a = column(info.columns.textA, true)!;
  const b = column(info.columns.textB, true);
  const y = column(info.columns.label, false);
  const out: GlueExample[] = [];
  for (let i = headerless ? 0 : 1; i < lines.length; i++) {
    const cells = lines[i]!.split('\t');
    const line = i + 1;
    if (cells.length !== names.length) {
      throw new InputError(
        file,
        `line ${line}: ${cells.length} columns, expected ${names.length} (${names.join(', ')})`,
      );
    }
    const label = y === undefined ? null : parseLabel(info, cells[y]!, file, line);
    const ex: GlueExample = { textA: cells[a]!, label };
    if (b !== undefined) ex.textB = cells[b]!;
    out.push(ex);
  }
  if (out.length === 0)
    throw new InputError(
      file,
      `no examples: only a header row; a ${task} file needs at least one row after it`,
    );
  return out;
}
