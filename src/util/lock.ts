/**
 * An output folder held by one process at a time: two runs writing the same folder would each
 * rewrite its files from what they alone computed, and one's results would be lost. The lock is
 * a file in the folder naming its holder (pid, host, command, start); it goes when the process
 * ends, and a lock whose process is gone is taken over with a note.
 */
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ensureDir, FileError, whyNot } from './files.js';

export const LOCK_FILE = '.xbar-lock';

interface Holder {
  pid: number;
  host: string;
  command: string;
  started: string;
}

export class FolderInUseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FolderInUseError';
  }
}

const alive = (h: Holder): boolean => {
  if (h.host !== hostname()) return true; // another machine's process cannot be checked: assume it runs
  try {
    process.kill(h.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const readHolder = (file: string): Holder | null => {
  try {
    const h = JSON.parse(readFileSync(file, 'utf8')) as Holder;
    return Number.isInteger(h.pid) ? h : null;
  } catch {
    return null;
  }
};

const describe = (h: Holder) =>
  `pid ${h.pid}${h.host === hostname() ? '' : ` on ${h.host}`}, \`${h.command}\`, started ${h.started}`;

/** Folders this process holds, released when it exits. */
const held = new Set<string>();
let hooked = false;

function releaseAll(): void {
  for (const file of held) {
    if (readHolder(file)?.pid === process.pid) rmSync(file, { force: true });
  }
  held.clear();
}

/**
 * Takes the lock of output folder `dir` (created if needed) for this process, or throws naming
 * the process that holds it. `flag` names the folder in messages (e.g. '--out').
 */
export function lockFolder(dir: string, flag: string, note: (line: string) => void = console.error): void {
  try {
    ensureDir(dir);
  } catch (e) {
    throw e instanceof FileError ? new FileError(`${flag} ${dir}`, e.reason) : e;
  }
  const file = join(dir, LOCK_FILE);
  if (held.has(file)) return;
  const me: Holder = {
    pid: process.pid,
    host: hostname(),
    command: ['xbar', ...process.argv.slice(2)].join(' '),
    started: new Date().toISOString(),
  };
  for (let attempt = 0; attempt < 5; attempt++) {
    // written whole beside it, then linked into place: the lock never exists half-written
    const mine = `${file}.${process.pid}`;
    try {
      writeFileSync(mine, `${JSON.stringify(me)}\n`);
      linkSync(mine, file);
    } catch (e) {
      rmSync(mine, { force: true });
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new FileError(`${flag} ${dir}`, `cannot write in this folder: ${whyNot(e)}`);
      const other = readHolder(file);
      if (other && alive(other)) {
        throw new FolderInUseError(
          `${flag} ${dir}: another xbar is writing there (${describe(other)}); wait for it to finish, use another ${flag}, or delete ${file} if that process is gone`,
        );
      }
      // a stale lock: move it aside under a name of our own, so that of two processes taking it
      // over only one succeeds; a live lock moved by mistake (taken between read and rename) goes back
      const aside = `${file}.stale-${process.pid}`;
      try {
        renameSync(file, aside);
      } catch {
        continue;
      }
      const moved = readHolder(aside);
      if (moved && alive(moved)) {
        try {
          linkSync(aside, file);
        } catch {}
        rmSync(aside, { force: true });
        continue;
      }
      rmSync(aside, { force: true });
      note(
        `${flag} ${dir}: taking over the lock of a process that has ended (${other ? describe(other) : 'unreadable lock'})`,
      );
      continue;
    }
    rmSync(mine, { force: true });
    held.add(file);
    if (!hooked) {
      hooked = true;
      process.once('exit', releaseAll);
      for (const signal of ['SIGINT', 'SIGTERM'] as const) {
        process.once(signal, () => {
          releaseAll();
          process.kill(process.pid, signal);
        });
      }
    }
    return;
  }
  throw new FolderInUseError(`${flag} ${dir}: could not take the folder's lock (${file}); try again`);
}
