/** `xbar serve`: files under its root only, the isolation headers, 127.0.0.1 by default. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { resolveUnder, serve } from '../../src/cli/serve.js';
import { XBAR } from '../helpers/cli.js';

/** A served folder with a page, a wasm file, a subfolder, a secret beside it and a link out. */
function site(): { root: string; outside: string } {
  const top = mkdtempSync(join(tmpdir(), 'xbar-serve-'));
  const root = join(top, 'site');
  mkdirSync(join(root, 'sub'), { recursive: true });
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>app</title>');
  writeFileSync(join(root, 'k.wasm'), new Uint8Array([0, 97, 115, 109]));
  writeFileSync(join(root, 'sub', 'index.html'), 'sub');
  const outside = join(top, 'secret.txt');
  writeFileSync(outside, 'secret');
  symlinkSync(outside, join(root, 'link.txt'));
  return { root, outside };
}

/** GET of a raw path (not normalised as fetch would): status, headers, body. */
function get(port: number, path: string) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

describe('xbar serve', () => {
  const { root } = site();
  let server: Awaited<ReturnType<typeof serve>>;
  let port = 0;
  before(async () => {
    server = await serve(root, '127.0.0.1', 0);
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  it('names files under the root only', () => {
    assert.equal(resolveUnder(root, '/'), join(root, 'index.html'));
    assert.equal(resolveUnder(root, '/sub/'), join(root, 'sub', 'index.html'));
    assert.equal(resolveUnder(root, '/k.wasm?x=1'), join(root, 'k.wasm'));
    for (const bad of ['/../secret.txt', '/%2e%2e/secret.txt', '/sub/%2E%2E/%2E%2E/secret.txt', '/link.txt'])
      assert.equal(resolveUnder(root, bad), 403, bad);
    for (const bad of ['/%E0%A4%A', '/a%00b', '/..%5csecret.txt'])
      assert.equal(resolveUnder(root, bad), 400, bad);
    assert.equal(resolveUnder(root, '/none.js'), 404);
  });

  it('answers with the isolation headers and the right types; a path out of the root gets no file', async () => {
    const page = await get(port, '/');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.equal(page.headers['cross-origin-opener-policy'], 'same-origin');
    assert.equal(page.headers['cross-origin-embedder-policy'], 'require-corp');
    assert.equal((await get(port, '/k.wasm')).headers['content-type'], 'application/wasm');
    for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/link.txt', '//etc/passwd']) {
      const r = await get(port, path);
      assert.notEqual(r.status, 200, path);
      assert.doesNotMatch(r.body, /secret|root:/, path);
    }
  });

  it('binds 127.0.0.1 by default and says where; refuses a folder with no app', async () => {
    const child = spawn(process.execPath, [XBAR, 'serve', '--port', '0', '--root', root]);
    const line = await new Promise<string>((ok) => child.stdout.once('data', (d) => ok(String(d))));
    child.kill();
    assert.match(line, /^xbar app: http:\/\/127\.0\.0\.1:\d+\//);
    const empty = mkdtempSync(join(tmpdir(), 'xbar-serve-empty-'));
    await assert.rejects(
      () => serve(empty, '127.0.0.1', 0),
      /no index\.html: build the app first with `npm run build:web`/,
    );
  });
});
