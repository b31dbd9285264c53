// The browser app: `npm run build:web` writes a static site to dist/web (relative asset paths, so
// it can be hosted under any folder); `xbar serve` serves it.
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

/**
 * Fails the build where xbar's own code (the app or the library) imports a Node module: Vite
 * would otherwise replace it with an empty stub and warn, and the app would fail only when the
 * code runs. Packages are left to their own guards (protobufjs asks for `fs` only to read .proto
 * files, which xbar does not).
 */
const noNodeModules: Plugin = {
  name: 'xbar-no-node-modules',
  enforce: 'pre',
  resolveId(id, importer) {
    if (importer?.includes('/node_modules/')) return null;
    if (id.startsWith('node:') || builtinModules.includes(id))
      this.error(`${importer ?? '(entry)'} imports the Node module '${id}': the browser app must not`);
    return null;
  },
};

export default defineConfig({
  plugins: [noNodeModules],
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  define: { __XBAR_VERSION__: JSON.stringify(pkg.version) },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000,
  },
  logLevel: 'warn',
});
