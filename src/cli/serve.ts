/**
 * `xbar serve`: the browser app (dist/web, made by `npm run build:web`) on a local web server.
 * It binds 127.0.0.1 unless told otherwise, serves files under its root only (no `..`, no
 * encoded escapes, no symbolic link out of the root), and sends the cross-origin isolation
 * headers that WebAssembly threads need. User files never reach it: the app reads them in the
 * browser.
 */
import { createReadStream, existsSync, realpathSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { InputError } from '../util/errors.js';
import { opt, withOptions } from './flags.js';

/** The built app beside the compiled CLI: dist/src/cli → dist/web. */
export const WEB_ROOT = fileURLToPath(new URL('../../web', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.yaml': 'application/yaml',
  '.safetensors': 'application/octet-stream',
};

/** Headers of every answer: isolation (SharedArrayBuffer for WASM threads), no sniffing. */
const HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
};

/**
 * The file under `root` that URL path `urlPath` names, or a status: 400 for a path that does not
 * decode, 403 for one that leaves the root, 404 for none.
 */
export function resolveUnder(root: string, urlPath: string): string | 400 | 403 | 404 {
  let path: string;
  try {
    path = decodeURIComponent(urlPath.split(/[?#]/)[0] ?? '/');
  } catch {
    return 400;
  }
  if (path.includes('\0') || path.includes('\\')) return 400;
  const base = realpathSync(root);
  const file = resolve(base, `.${path.startsWith('/') ? path : `/${path}`}`);
  if (file !== base && !file.startsWith(base + sep)) return 403;
  let target = file;
  if (!existsSync(target)) return 404;
  if (statSync(target).isDirectory()) target = join(target, 'index.html');
  if (!existsSync(target)) return 404;
  // a link inside the root may point out of it
  const real = realpathSync(target);
  if (real !== base && !real.startsWith(base + sep)) return 403;
  return statSync(real).isFile() ? real : 404;
}

/** Serves `root` on host:port (0: a free port); resolves once listening. */
export async function serve(root: string, host: string, port: number): Promise<Server> {
  if (!existsSync(join(root, 'index.html')))
    throw new InputError(root, ['no index.html: build the app first with `npm run build:web`']);
  const server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...HEADERS, Allow: 'GET, HEAD' }).end();
      return;
    }
    const found = resolveUnder(root, req.url ?? '/');
    if (typeof found === 'number') {
      res.writeHead(found, { ...HEADERS, 'Content-Type': 'text/plain; charset=utf-8' }).end(`${found}\n`);
      return;
    }
    res.writeHead(200, {
      ...HEADERS,
      'Content-Type': TYPES[extname(found).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': statSync(found).size,
      'Cache-Control': 'no-cache',
    });
    if (req.method === 'HEAD') res.end();
    else createReadStream(found).pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => ok(server));
  });
}

export function registerServe(program: Command): void {
  withOptions(
    program
      .command('serve')
      .description('serve the browser app on a local web server (127.0.0.1 by default)'),
    opt(
      '--host <address>',
      'address to bind (another machine reaches it only if you bind one it can)',
      undefined,
      '127.0.0.1',
    ),
    opt('--port <n>', 'port (0: any free one)', 0, 8321),
    opt('--root <dir>', 'folder to serve (default: the app built into this package)'),
  ).action(async (o: { host: string; port: number; root?: string }) => {
    const root = o.root ?? WEB_ROOT;
    const server = await serve(root, o.host, o.port);
    const a = server.address();
    const port = typeof a === 'object' && a ? a.port : o.port;
    const shown = o.host.includes(':') ? `[${o.host}]` : o.host;
    console.log(`xbar app: http://${shown}:${port}/  (Ctrl-C stops it)`);
  });
}
