/** File helpers: atomic writes (a crash never leaves a half-written result) and JSON reading with clear errors. */
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { InputError } from './errors.js';

/** A file's bytes; the error names the file and the system's reason. */
export function readBytes(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new InputError(path, `cannot read: ${errorCode(e)}`);
  }
}

/** The system's code of a failed file system call (ENOENT, EACCES, …), else its message. */
export const errorCode = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? (e as Error).message;

/** What a failed file system call says, without the path it was given ("EROFS: read-only file system"). */
export const whyNot = (e: unknown): string => (e as Error).message.replace(/, \w+ '.*'$/, '');

/**
 * Creates a folder and its parents. Node's `mkdirSync(…, { recursive: true })` spins forever
 * where a parent exists but refuses new entries with ENOENT (under /proc); this walks up once.
 */
export function ensureDir(dir: string): void {
  const path = resolve(dir);
  try {
    if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) return;
    mkdirSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const parent = dirname(path);
    if (code === 'EEXIST' && statSync(path).isDirectory()) return;
    if (code === 'ENOENT' && parent !== path && !statSync(parent, { throwIfNoEntry: false })) {
      ensureDir(parent);
      ensureDir(path);
      return;
    }
    throw new InputError(
      dir,
      `cannot create this folder: ${code === 'ENOENT' ? `${parent} takes no new folders (ENOENT)` : whyNot(e)}`,
    );
  }
}

/** Writes to a temporary file beside `path`, then renames it over `path`. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  ensureDir(dirname(path));
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new InputError(path, `cannot write: ${whyNot(e)}`);
  }
}

/** Reads and parses a JSON file, naming the file in errors. */
export function readJson(path: string): unknown {
  const text = readBytes(path).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(path, `invalid JSON: ${(e as Error).message}`);
  }
}

/**
 * A path as results record it: relative to the working directory where it lies inside it (so
 * results made in one checkout read the same in another), else as given.
 */
export function portablePath(path: string): string {
  const rel = relative(process.cwd(), resolve(path));
  if (rel === '') return '.';
  return rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}
