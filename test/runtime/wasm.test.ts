/**
 * The committed WebAssembly build (prebuilds/wasm/xbar.wasm): built from the checkout's kernel
 * sources and constants, and refused when altered or stale. (Its products against the ONNX
 * graphs: test/analog/native.test.ts.)
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { NATIVE_CONSTANTS } from '../../src/analog/write-noise.js';
import { wasmBinary } from '../../src/runtime/wasm.js';
import { ROOT } from '../helpers/models.js';

const WASM = join(ROOT, 'prebuilds/wasm/xbar.wasm');
const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');
const stamp = () =>
  JSON.parse(readFileSync(`${WASM}.json`, 'utf8')) as {
    wasm: string;
    sources: Record<string, string>;
    constants: string;
  };

describe('the committed WebAssembly kernels', () => {
  it('were built from the kernel sources and write-noise constants of this checkout (else: npm run build:wasm)', async () => {
    const s = stamp();
    assert.equal(sha256(readFileSync(WASM)), s.wasm, 'the binary matches its stamp');
    assert.deepEqual(Object.keys(s.sources).sort(), [
      'native/crossbar_products.cc',
      'native/crossbar_products_wasm.cc',
      'native/philox.h',
    ]);
    for (const [source, hash] of Object.entries(s.sources))
      assert.equal(sha256(readFileSync(join(ROOT, source))), hash, `${source} changed since the build`);
    // the header scripts/build-wasm.mjs compiled in, made again from the compiled TypeScript
    const { constantsHeader } = (await import(
      pathToFileURL(join(ROOT, 'scripts/native-constants.mjs')).href
    )) as {
      constantsHeader(c: typeof NATIVE_CONSTANTS): string;
    };
    assert.equal(sha256(constantsHeader(NATIVE_CONSTANTS)), s.constants, 'the write-noise constants changed');
    assert.ok('bytes' in wasmBinary());
  });

  it('are refused when the binary was altered or its sources changed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xbar-wasm-'));
    const copy = join(dir, 'xbar.wasm');
    const bytes = readFileSync(WASM);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(copy, bytes);
    copyFileSync(`${WASM}.json`, `${copy}.json`);
    assert.match(
      (wasmBinary(copy) as { refused: string }).refused,
      /does not match the SHA-256 .*\(altered\)/,
    );
    copyFileSync(WASM, copy);
    const s = stamp();
    s.sources['native/crossbar_products.cc'] = sha256('another kernel');
    writeFileSync(`${copy}.json`, JSON.stringify(s));
    assert.match(
      (wasmBinary(copy) as { refused: string }).refused,
      /built from another version of native\/crossbar_products\.cc; run `npm run build:wasm`/,
    );
    copyFileSync(`${WASM}.json`, `${copy}.json`);
    assert.ok('bytes' in wasmBinary(copy));
  });
});
