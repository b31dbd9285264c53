/** File helpers: atomic writes (a crash never leaves a half-written result) and JSON reading with clear errors. */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { InputError } from './errors.js';

/** Writes to a temporary file beside `path`, then renames it over `path`. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** A file's bytes; the error names the file and the system's reason (ENOENT, EACCES, …). */
export function readBytes(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new InputError(path, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
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
