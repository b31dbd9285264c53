/** GLUE TSV reading: slices of the release files (row counts, labels, quirks) and errors that name file, line and value. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  findGlueFile,
  GLUE_TASKS,
  type GlueExample,
  type GlueTask,
  glueTask,
  readGlue,
} from '../../src/io/glue.js';
import { FIXTURES } from '../helpers/models.js';

/** The first rows of each release file (test/fixtures/README.md), quirks included. */
const GLUE = join(FIXTURES, 'glue');

const counts = (rows: GlueExample[]): number[] => {
  const c: number[] = [];
  for (const r of rows) c[r.label!] = (c[r.label!] ?? 0) + 1;
  return c;
};

/** Writes `text` to a fresh temp file and returns its path. */
function tsv(text: string, name = 'dev.tsv'): string {
  const path = join(mkdtempSync(join(tmpdir(), 'xbar-glue-')), name);
  writeFileSync(path, text);
  return path;
}

describe('GLUE release files (slices)', () => {
  const dev = (task: GlueTask) => readGlue(task, findGlueFile(GLUE, task, 'dev'));

  it('dev slices have the row counts and class balance of the cut', () => {
    // counted with awk on the slices (test/fixtures/README.md); MRPC and RTE rows hold bare
    // quotes, some unbalanced, that a CSV reader would join across lines
    const expected: Record<GlueTask, { rows: number; classes?: number[] }> = {
      'SST-2': { rows: 200, classes: [101, 99] },
      MRPC: { rows: 100, classes: [31, 69] },
      RTE: { rows: 30, classes: [17, 13] },
      CoLA: { rows: 50, classes: [15, 35] },
      'STS-B': { rows: 30 },
      QNLI: { rows: 30, classes: [16, 14] },
    };
    for (const [task, want] of Object.entries(expected) as [GlueTask, (typeof expected)[GlueTask]][]) {
      const rows = dev(task);
      assert.equal(rows.length, want.rows, task);
      if (want.classes) assert.deepEqual(counts(rows), want.classes, task);
      const pair = GLUE_TASKS[task].columns.textB !== undefined;
      assert.ok(
        rows.every((r) => r.textA.length > 0 && (r.textB !== undefined) === pair),
        `${task}: texts present, a second one only for pair tasks`,
      );
    }
  });

  it('keeps each task’s quirks: BOM header, bare quotes, headerless CoLA, string labels, float scores', () => {
    const sst = dev('SST-2')[0]!;
    assert.deepEqual(sst, { textA: "it 's a charming and often affecting journey . ", label: 1 });
    const mrpc = dev('MRPC')[0]!;
    assert.equal(mrpc.label, 1);
    assert.equal(
      mrpc.textA,
      "He said the foodservice pie business doesn't fit the company's long-term growth strategy.",
    );
    assert.equal(mrpc.textB, '"The foodservice pie business does not fit our long-term growth strategy.');
    assert.deepEqual(dev('CoLA')[0], { textA: 'The sailors rode the breeze clear of the rocks.', label: 1 });
    assert.equal(dev('RTE')[0]!.label, 1, 'not_entailment is class 1');
    assert.equal(dev('QNLI')[0]!.label, 0, 'entailment is class 0');
    const sts = dev('STS-B');
    assert.deepEqual(sts[0], {
      textA: 'A man with a hard hat is dancing.',
      textB: 'A man wearing a hard hat is dancing.',
      label: 5,
    });
    assert.equal(sts[1]!.label, 4.75);
    assert.ok(sts.every((r) => r.label! >= 0 && r.label! <= 5));
  });

  it('reads train splits and unlabelled test splits', () => {
    const read = (task: GlueTask, split: 'train' | 'test') => readGlue(task, findGlueFile(GLUE, task, split));
    assert.equal(read('SST-2', 'train').length, 400);
    assert.equal(read('CoLA', 'train').length, 50);
    assert.equal(read('MRPC', 'train').length, 30);
    assert.equal(read('RTE', 'train').length, 20);
    assert.equal(read('STS-B', 'train').length, 30);
    for (const [task, n] of [
      ['SST-2', 50],
      ['MRPC', 30],
      ['RTE', 20],
      ['STS-B', 30],
    ] as const) {
      const rows = read(task, 'test');
      assert.equal(rows.length, n, task);
      assert.ok(
        rows.every((r) => r.label === null),
        `${task} test is unlabelled`,
      );
    }
    assert.equal(read('SST-2', 'test')[0]!.textA, 'uneasy mishmash of styles and genres .');
  });

  it('finds files from the GLUE root or the task folder, CoLA under either name', () => {
    assert.equal(findGlueFile(GLUE, 'CoLA', 'dev'), join(GLUE, 'CoLA', 'in_domain_dev.tsv'));
    assert.equal(findGlueFile(join(GLUE, 'RTE'), 'RTE', 'train'), join(GLUE, 'RTE', 'train.tsv'));
    assert.throws(
      () => findGlueFile(GLUE, 'QNLI', 'train'),
      (e: Error) => {
        assert.match(e.message, /no QNLI train file: looked for .*QNLI\/train\.tsv/);
        return true;
      },
    );
  });
});

describe('GLUE task table', () => {
  it('names each task’s metrics, label count and label order', () => {
    assert.deepEqual(GLUE_TASKS.CoLA.metrics, ['mcc']);
    assert.deepEqual(GLUE_TASKS.MRPC.metrics, ['f1', 'accuracy']);
    assert.deepEqual(GLUE_TASKS['STS-B'].metrics, ['pearson', 'spearman']);
    for (const t of ['SST-2', 'QNLI', 'RTE'] as const) assert.deepEqual(GLUE_TASKS[t].metrics, ['accuracy']);
    assert.equal(GLUE_TASKS['STS-B'].numLabels, 1);
    for (const [task, info] of Object.entries(GLUE_TASKS))
      assert.equal(info.labelValues.length, info.numLabels > 1 ? info.numLabels : 0, task);
    assert.deepEqual(GLUE_TASKS.QNLI.labelValues, ['entailment', 'not_entailment']);
  });

  it('accepts task names in any case, with or without the dash', () => {
    assert.equal(glueTask('sst2'), 'SST-2');
    assert.equal(glueTask('STS_B'), 'STS-B');
    assert.equal(glueTask('cola'), 'CoLA');
    assert.throws(() => glueTask('mnli'), {
      name: 'InputError',
      message: /unknown GLUE task 'mnli'; supported: CoLA, SST-2, MRPC, STS-B, QNLI, RTE/,
    });
  });
});

describe('GLUE format checks', () => {
  it('splits on tabs only, strips CR line ends and a BOM', () => {
    const path = tsv('\uFEFFsentence\tlabel\r\n"quoted, with comma"\t1\r\nplain\t0\r\n');
    assert.deepEqual(readGlue('SST-2', path), [
      { textA: '"quoted, with comma"', label: 1 },
      { textA: 'plain', label: 0 },
    ]);
  });

  it('tells CoLA’s headerless files from its headed test file by column count', () => {
    assert.deepEqual(readGlue('CoLA', tsv('src\t0\t*\tBad sentence.\n')), [
      { textA: 'Bad sentence.', label: 0 },
    ]);
    assert.deepEqual(readGlue('CoLA', tsv('index\tsentence\n0\tA test sentence.\n')), [
      { textA: 'A test sentence.', label: null },
    ]);
  });

  it('names file, line, count and expected columns for a ragged row', () => {
    const path = tsv('sentence\tlabel\nfine\t1\nbroken\n');
    assert.throws(
      () => readGlue('SST-2', path),
      (e: Error) => {
        assert.ok(e.message.startsWith(path), e.message);
        assert.match(e.message, /line 3: 1 columns, expected 2 \(sentence, label\)/);
        return true;
      },
    );
  });

  it('names file, line, value and the allowed labels for an unknown label', () => {
    assert.throws(
      () =>
        readGlue(
          'RTE',
          tsv('index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\tcontradiction\n'),
        ),
      /dev\.tsv: line 3: label 'contradiction' in column 'label', expected one of 'entailment', 'not_entailment'/,
    );
    assert.throws(
      () => readGlue('SST-2', tsv('sentence\tlabel\nx\t2\n')),
      /line 2: label '2' .*expected one of '0', '1'/,
    );
    const sts = (score: string) =>
      `index\tg\tf\ty\to\ts1\ts2\tsentence1\tsentence2\tscore\n0\tg\tf\ty\to\ts\ts\ta\tb\t${score}\n`;
    assert.equal(readGlue('STS-B', tsv(sts('3.25')))[0]!.label, 3.25);
    for (const bad of ['', 'high', '5.5', '-1', '1e']) {
      assert.throws(
        () => readGlue('STS-B', tsv(sts(bad))),
        new RegExp(`line 2: score '${bad}', expected a number in \\[0, 5\\]`),
      );
    }
  });

  it('reports a header without the task’s text column, and empty or missing files', () => {
    assert.throws(
      () => readGlue('MRPC', tsv('Quality\t#1 ID\t#2 ID\tfirst\tsecond\n')),
      /line 1: header has columns \[Quality, #1 ID, #2 ID, first, second\], expected a '#1 String' column/,
    );
    assert.throws(
      () => readGlue('SST-2', tsv('')),
      /dev\.tsv: empty: a SST-2 file needs at least a header row/,
    );
    assert.throws(
      () => readGlue('SST-2', join(tmpdir(), 'xbar-absent.tsv')),
      /xbar-absent\.tsv: cannot read: ENOENT/,
    );
    const bad = tsv('sentence\tlabel\n');
    writeFileSync(bad, Buffer.from([0x73, 0x09, 0xff, 0x0a]));
    assert.throws(() => readGlue('SST-2', bad), /dev\.tsv: not valid UTF-8/);
  });

  it('finds a file in a task folder under a GLUE root', () => {
    const root = mkdtempSync(join(tmpdir(), 'xbar-glue-root-'));
    mkdirSync(join(root, 'STS-B'));
    writeFileSync(join(root, 'STS-B', 'test.tsv'), 'index\tsentence1\tsentence2\n0\ta\tb\n');
    const path = findGlueFile(root, 'STS-B', 'test');
    assert.deepEqual(readGlue('STS-B', path), [{ textA: 'a', textB: 'b', label: null }]);
  });
});
