/** The `xbar` command run as a user runs it: a process of its own. */
import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './models.js';

export const XBAR = join(ROOT, 'bin/xbar.js');

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `xbar …args` to its end. */
export function xbar(args: readonly string[], o: { cwd?: string; timeout?: number } = {}): Run {
  const r = spawnSync(process.execPath, [XBAR, ...args], { encoding: 'utf8', ...o });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `xbar …args` without blocking, so that several run side by side. */
export function xbarAsync(args: readonly string[], o: { cwd?: string; timeout?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [XBAR, ...args], { encoding: 'utf8', ...o }, (e, stdout, stderr) => {
      resolve({ status: e ? ((e as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
