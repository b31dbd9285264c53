#!/usr/bin/env node
/**
 * Runs when xbar is installed as a dependency (npm runs every package's preinstall before any
 * postinstall). onnxruntime-node's postinstall downloads CUDA provider libraries from NuGet on
 * Linux x64 whenever they are missing, and fails the whole install where only the npm registry
 * is reachable. xbar runs on ONNX Runtime's CPU and WebGPU providers only, so this marks those
 * libraries as present (placeholder files that say why), which is what the postinstall checks
 * before downloading. Nothing happens where the user chose for themselves
 * (ONNXRUNTIME_NODE_INSTALL, ONNXRUNTIME_NODE_INSTALL_CUDA or npm's
 * onnxruntime-node-install[-cuda] config), in xbar's own checkout, where onnxruntime-node is
 * not found, or where its platform needs no download. Failing here never fails the install.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import { dirname, join } from 'node:path';

const chosen = [
  'ONNXRUNTIME_NODE_INSTALL',
  'ONNXRUNTIME_NODE_INSTALL_CUDA',
  'npm_config_onnxruntime_node_install',
  'npm_config_onnxruntime_node_install_cuda',
].some((k) => process.env[k]);
// in xbar's own checkout its scripts run after its dependencies': package.json's allowScripts
// denies onnxruntime-node's there
const checkout = process.env.npm_config_local_prefix === process.cwd();

try {
  if (!chosen && !checkout) {
    const require = createRequire(import.meta.url);
    const ort = dirname(require.resolve('onnxruntime-node/package.json'));
    const metadata = require(join(ort, 'script', 'install-metadata.js'));
    const target = `${platform()}/${arch()}`;
    const files = (metadata.requirements?.[target] ?? []).flatMap((name) =>
      Object.keys(metadata.manifests?.[`${target}:${name}`] ?? {}),
    );
    const bin = join(ort, 'bin', 'napi-v6', target);
    const placed = [];
    for (const f of files) {
      const path = join(bin, f);
      if (existsSync(path)) continue;
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(
        path,
        'Not a library: xbar installed onnxruntime-node without its optional CUDA providers, which it does not use.\n' +
          'To have them, reinstall with ONNXRUNTIME_NODE_INSTALL=cuda12 set.\n',
      );
      placed.push(f);
    }
    if (placed.length > 0)
      console.log(
        `xbar: onnxruntime-node's optional CUDA providers are not downloaded (xbar uses the CPU and WebGPU providers); set ONNXRUNTIME_NODE_INSTALL=cuda12 to have them`,
      );
  }
} catch (e) {
  console.log(`xbar: preinstall skipped (${e.message})`);
}
