#!/usr/bin/env node
/**
 * Cuts the data slices the repository ships from the public release files: the test fixtures
 * under test/fixtures/{glue,mnist,vocab} and the demo training splits under data/. Each slice is
 * the first N rows or images of a release file (TSV: the header line, if the file has one, and the
 * next N lines byte for byte; IDX: the first N items, the header's count set to N, gzipped), or a
 * whole file. Give the folders you have; only their slices are written, and a slice whose content
 * is already there is left as it is (gzip output may differ between zlib versions):
 *
 *   node scripts/cut-data-slices.mjs glue=GLUE_DIR mnist=MNIST_DIR fashion=FASHION_MNIST_DIR \
 *        bert=BERT_BASE_UNCASED_DIR roberta=ROBERTA_BASE_DIR
 *
 * GLUE_DIR holds the GLUE task folders (SST-2/, CoLA/, MRPC/, RTE/, QNLI/, STS-B/) as released;
 * the MNIST folders hold the four *-ubyte.gz files; the model folders hold vocab.txt, or
 * vocab.json and merges.txt. test/fixtures/README.md and data/<slice>/README.md say where each
 * comes from and under which terms.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ALL = Number.POSITIVE_INFINITY;
const F = 'test/fixtures';

/** [source, file in it, destination under the repository, rows or images (ALL: the whole file)]. */
const SLICES = [
  ['glue', 'SST-2/train.tsv', `${F}/glue/SST-2/train.tsv`, 400],
  ['glue', 'SST-2/dev.tsv', `${F}/glue/SST-2/dev.tsv`, 200],
  ['glue', 'SST-2/test.tsv', `${F}/glue/SST-2/test.tsv`, 50],
  ['glue', 'CoLA/in_domain_train.tsv', `${F}/glue/CoLA/in_domain_train.tsv`, 50],
  ['glue', 'CoLA/in_domain_dev.tsv', `${F}/glue/CoLA/in_domain_dev.tsv`, 50],
  ['glue', 'MRPC/train.tsv', `${F}/glue/MRPC/train.tsv`, 30],
  ['glue', 'MRPC/dev.tsv', `${F}/glue/MRPC/dev.tsv`, 100],
  ['glue', 'MRPC/test.tsv', `${F}/glue/MRPC/test.tsv`, 30],
  ['glue', 'RTE/train.tsv', `${F}/glue/RTE/train.tsv`, 20],
  ['glue', 'RTE/dev.tsv', `${F}/glue/RTE/dev.tsv`, 30],
  ['glue', 'RTE/test.tsv', `${F}/glue/RTE/test.tsv`, 20],
  ['glue', 'QNLI/dev.tsv', `${F}/glue/QNLI/dev.tsv`, 30],
  ['glue', 'STS-B/train.tsv', `${F}/glue/STS-B/train.tsv`, 30],
  ['glue', 'STS-B/dev.tsv', `${F}/glue/STS-B/dev.tsv`, 30],
  ['glue', 'STS-B/test.tsv', `${F}/glue/STS-B/test.tsv`, 30],
  ['mnist', 'train-images-idx3-ubyte.gz', `${F}/mnist/train-images-idx3-ubyte.gz`, 1024],
  ['mnist', 'train-labels-idx1-ubyte.gz', `${F}/mnist/train-labels-idx1-ubyte.gz`, 1024],
  ['mnist', 't10k-images-idx3-ubyte.gz', `${F}/mnist/t10k-images-idx3-ubyte.gz`, 300],
  ['mnist', 't10k-labels-idx1-ubyte.gz', `${F}/mnist/t10k-labels-idx1-ubyte.gz`, 300],
  ['bert', 'vocab.txt', `${F}/vocab/bert-base-uncased/vocab.txt`, ALL],
  ['roberta', 'vocab.json', `${F}/vocab/roberta-base/vocab.json`, ALL],
  ['roberta', 'merges.txt', `${F}/vocab/roberta-base/merges.txt`, ALL],
  // the shipped demo data: an evaluation split and a training split for calibration and vocab
  ['glue', 'SST-2/dev.tsv', 'data/sst2-demo/dev.tsv', ALL],
  ['glue', 'SST-2/train.tsv', 'data/sst2-demo/train.tsv', 1000],
  ['fashion', 't10k-images-idx3-ubyte.gz', 'data/fashion-mnist-demo/t10k-images-idx3-ubyte.gz', 1000],
  ['fashion', 't10k-labels-idx1-ubyte.gz', 'data/fashion-mnist-demo/t10k-labels-idx1-ubyte.gz', 1000],
  ['fashion', 'train-images-idx3-ubyte.gz', 'data/fashion-mnist-demo/train-images-idx3-ubyte.gz', 500],
  ['fashion', 'train-labels-idx1-ubyte.gz', 'data/fashion-mnist-demo/train-labels-idx1-ubyte.gz', 500],
];

/** The header line (CoLA's in_domain files have none: they start with a source code) and N more lines. */
function headTsv(bytes, n, file) {
  const headed = !file.startsWith('CoLA/in_domain_');
  let end = 0;
  for (let line = 0; line < n + (headed ? 1 : 0); line++) {
    const nl = bytes.indexOf(0x0a, end);
    if (nl < 0) throw new Error(`${file}: has fewer than ${n} rows`);
    end = nl + 1;
  }
  return bytes.subarray(0, end);
}

/** The first N items of an IDX file (gunzipped bytes), with the count in its header set to N. */
function headIdx(bytes, n, file) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const rank = view.getUint32(0) & 0xff;
  const count = view.getUint32(4);
  if (count < n) throw new Error(`${file}: has ${count} items, fewer than ${n}`);
  let item = 1;
  for (let i = 1; i < rank; i++) item *= view.getUint32(4 + 4 * i);
  const header = 4 + 4 * rank;
  const out = Buffer.from(bytes.subarray(0, header + n * item));
  out.writeUInt32BE(n, 4);
  return out;
}

const sources = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [name, dir] = a.split('=');
    if (!dir || !['glue', 'mnist', 'fashion', 'bert', 'roberta'].includes(name))
      throw new Error(`${a}: expected glue=DIR, mnist=DIR, fashion=DIR, bert=DIR or roberta=DIR`);
    return [name, dir];
  }),
);
if (Object.keys(sources).length === 0) {
  console.error('usage: node scripts/cut-data-slices.mjs glue=DIR mnist=DIR fashion=DIR bert=DIR roberta=DIR');
  process.exit(2);
}
for (const [source, file, to, n] of SLICES) {
  if (!sources[source]) continue;
  const raw = readFileSync(join(sources[source], file));
  const gz = file.endsWith('.gz');
  const plain = gz ? gunzipSync(raw) : raw;
  const cut = n === ALL ? plain : gz ? headIdx(plain, n, file) : headTsv(plain, n, file);
  const dest = join(ROOT, to);
  const same = existsSync(dest) && Buffer.compare(gz ? gunzipSync(readFileSync(dest)) : readFileSync(dest), cut) === 0;
  if (!same) {
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, gz ? gzipSync(cut, { level: 9 }) : cut);
  }
  console.log(`${same ? 'kept' : 'wrote'} ${to} (${n === ALL ? 'whole file' : `first ${n}`} of ${source}:${file})`);
}
