// Outputs of the analog MVM for a few small seeded cases (noise on), from a built xbar tree:
//   node scripts/reference/bm_none_fixture.mjs DIST_DIR [OUT.json]
// test/fixtures/analog/bm-none.json holds the outputs of the analog MVM with boundManagement
// 'none' (the pcm-aihwkit cases; the others have none), the ONNX graphs (XBAR_NATIVE=0), noise
// stream 3 (Philox keyed by sample). Under stream 2 they were the outputs from before bound
// management existed, which 'none' kept bit for bit; test/analog/bound-management.test.ts checks
// that they stay. The cases are defined in bm-none-cases.mjs, which the test imports too.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CASES } from './bm-none-cases.mjs';

const dist = resolve(process.argv[2] ?? 'dist');
const load = (p) => import(pathToFileURL(resolve(dist, p)).href);
const lib = {
  ...(await load('src/analog/analog-model.js')),
  ...(await load('src/analog/dynamic.js')),
  ...(await load('src/analog/presets.js')),
  ...(await load('src/graph/ndarray.js')),
  ...(await load('src/graph/tensor.js')),
  ...(await load('src/runtime/session.js')),
  ...(await load('src/util/math.js')),
};
const out = {};
for (const c of CASES)
  out[c.name] = Array.from(await c.run(lib, c.name.startsWith('pcm-aihwkit') ? ['adc.boundManagement.kind=none'] : []));
const text = `${JSON.stringify({ note: "analog MVM outputs with boundManagement 'none' (noise stream 3: Philox keyed by sample)", cases: out })}\n`;
if (process.argv[3]) writeFileSync(process.argv[3], text);
else process.stdout.write(text);
