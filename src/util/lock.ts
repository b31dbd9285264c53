/**
 * An output folder held by one process at a time: two runs writing the same folder would each
 * rewrite its files from what they alone computed, and one's results would be lost. The lock is
 * a file in the folder naming its holder (pid, host, command, start); it goes when the process
 * ends, and a lock whose process is gone is taken over with a note.
 */
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { typedCommand } from './command.js';
import { InputError } from './errors.js';
import { ensureDir, whyNot } from './files.js';

export const LOCK_FILE = '.xbar-lock';

interface Holder {
  pid: number;
  host: string;
  command: string;
  started: string;
}

/** Whether the holder runs (another machine's process cannot be checked: it is taken to). */
function alive(h: Holder | null): h is Holder {
  if (!h || h.host !== hostname()) return !!h;
  try {
    process.kill(h.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function holderIn(file: string): Holder | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Holder;
  } catch {
    return null;
  }
}

const describe = (h: Holder) =>
  `pid ${h.pid}${h.host === hostname() ? '' : ` on ${h.host}`}, \`${h.command}\`, started ${h.started}`;

/** The locks this process holds, removed when it exits. */
const held = new Set<string>();

function releaseAll(): void {
  for (const file of held) if (holderIn(file)?.pid === process.pid) rmSync(file, { force: true });
  held.clear();
}

/**
 * Takes the lock of output folder `dir` (created if needed) for this process, or throws naming
 * the process that holds it. `flag` names the folder in messages (e.g. '--out').
 */
export function lockFolder(dir: string, flag: string, note: (line: string) => void = console.error): void {
  const where = `${flag} ${dir}`;
  try {
    ensureDir(dir);
  } catch (e) {
    throw e instanceof InputError ? new InputError(where, e.problems[0]!) : e;
  }
  takeLock(join(dir, LOCK_FILE), where, note, 'this folder');
}

/**
 * Takes lock file `file` (its folder must exist) for this process, or throws naming the process
 * that holds it: the lock of an output folder, or of a single output such as a sweep's store
 * (`STORE.lock` beside it). `where` names what it guards in messages (e.g. '--store runs/a.duckdb').
 */
export function lockFile(file: string, where: string, note: (line: string) => void = console.error): void {
  takeLock(file, where, note, 'its folder');
}

function takeLock(file: string, where: string, note: (line: string) => void, folder: string): void {
  const flag = where.split(' ')[0]!;
  if (held.has(file)) return;
  const me: Holder = {
    pid: process.pid,
    host: hostname(),
    command: typedCommand(),
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
        throw new InputError(where, `cannot write in ${folder}: ${whyNot(e)}`);
      const other = holderIn(file);
      if (alive(other))
        throw new InputError(
          where,
          `another xbar is writing there (${describe(other)}); wait for it to finish, use another ${flag}, or delete ${file} if that process is gone`,
        );
      // stale: moved aside under a name of our own, so that of two processes taking it over one
      // succeeds; a live lock moved by mistake (taken after we read it) is put back
      const aside = `${file}.stale-${process.pid}`;
      try {
        renameSync(file, aside);
        if (alive(holderIn(aside))) linkSync(aside, file);
        else
          note(
            `${where}: taking over the lock of a process that has ended (${other ? describe(other) : 'unreadable'})`,
          );
      } catch {}
      rmSync(aside, { force: true });
      continue;
    }
    rmSync(mine, { force: true });
    if (held.size === 0) {
      process.once('exit', releaseAll);
      for (const signal of ['SIGINT', 'SIGTERM'] as const)
        process.once(signal, () => {
          releaseAll();
          process.kill(process.pid, signal);
        });
    }
    held.add(file);
    return;
  }
  throw new InputError(where, `could not take its lock (${file}); try again`);
}

/** Gives up a lock this process took with `lockFile` (e.g. when a store is closed before the process ends). */
export function unlockFile(file: string): void {
  if (!held.delete(file)) return;
  if (holderIn(file)?.pid === process.pid) rmSync(file, { force: true });
}
