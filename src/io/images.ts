/**
 * Image files → 8-bit RGB pixels (JPEG through jpeg-js, PNG through pngjs), and the ImageNet
 * folder layout (one subfolder per class) as a list of files and labels.
 */
import { type Dirent, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { InputError } from '../util/errors.js';
import { errorCode, readBytes } from '../util/files.js';

/** An 8-bit RGB image, rows top to bottom, pixels interleaved (HWC). */
export interface Image {
  width: number;
  height: number;
  channels: 3;
  data: Uint8Array;
}

const isPng = (b: Uint8Array): boolean => b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
const isJpeg = (b: Uint8Array): boolean => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

/** RGB from RGBA by dropping alpha, as PIL's `convert('RGB')` does. */
function dropAlpha(rgba: Uint8Array, width: number, height: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0, q = 0; q < rgb.length; p += 4, q += 3) {
    rgb[q] = rgba[p]!;
    rgb[q + 1] = rgba[p + 1]!;
    rgb[q + 2] = rgba[p + 2]!;
  }
  return rgb;
}

/**
 * Decodes JPEG or PNG bytes, recognised by their signature (ImageNet holds PNGs named .JPEG);
 * gray, palette and alpha images become RGB. `name` is the file named in errors. JPEG pixels
 * may differ from PIL's (libjpeg-turbo) by a few levels: the IDCT and chroma upsampling differ.
 */
export function decodeImage(bytes: Uint8Array, name: string): Image {
  if (isJpeg(bytes)) {
    try {
      // jpeg-js expands gray to RGB and converts CMYK itself
      const { width, height, data } = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false });
      return { width, height, channels: 3, data };
    } catch (e) {
      throw new InputError(name, `cannot decode JPEG: ${(e as Error).message}`);
    }
  }
  if (isPng(bytes)) {
    try {
      // pngjs always gives 8-bit RGBA (palette, gray and 16-bit converted)
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return {
        width: png.width,
        height: png.height,
        channels: 3,
        data: dropAlpha(png.data, png.width, png.height),
      };
    } catch (e) {
      throw new InputError(name, `cannot decode PNG: ${(e as Error).message}`);
    }
  }
  const head = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new InputError(name, `not a JPEG (ff d8 ff) or PNG (89 50 4e 47) file: it starts with '${head}'`);
}

export function readImage(path: string): Image {
  return decodeImage(readBytes(path), path);
}

/** Extensions taken as images (matched case-insensitively, as torchvision's ImageFolder does). */
const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png'] as const;
const isImageName = (name: string): boolean => IMAGE_EXTENSIONS.some((e) => name.toLowerCase().endsWith(e));

export interface ImageFolder {
  /** Class folder names, sorted; a class's label is its index here. */
  classes: string[];
  items: { path: string; label: number }[];
}

interface Entry {
  name: string;
  isDir: boolean;
  isFile: boolean;
}

/** The folder's entries, symbolic links followed (prepared ImageNet folders are often links). */
function listDir(dir: string): Entry[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    throw new InputError(dir, `cannot read folder: ${errorCode(e)}`);
  }
  return entries.map((e) => {
    const s = e.isSymbolicLink() ? statSync(join(dir, e.name), { throwIfNoEntry: false }) : e;
    return { name: e.name, isDir: s?.isDirectory() ?? false, isFile: s?.isFile() ?? false };
  });
}

/** Image files under `dir` at any depth, in torchvision's order (folders by path, then names). */
function imagesUnder(dir: string): string[] {
  const folders: [string, string[]][] = [];
  const walk = (d: string): void => {
    const entries = listDir(d);
    folders.push([d, entries.filter((e) => e.isFile && isImageName(e.name)).map((e) => e.name)]);
    for (const e of entries) if (e.isDir) walk(join(d, e.name));
  };
  walk(dir);
  folders.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return folders.flatMap(([d, names]) => names.sort().map((n) => join(d, n)));
}

/**
 * Lists an ImageNet-layout folder (`dir/<class>/<image>`) like torchvision's ImageFolder: classes
 * sorted by name give the labels; files are listed, not decoded.
 */
export function readImageFolder(dir: string): ImageFolder {
  const classes = listDir(dir)
    .filter((e) => e.isDir)
    .map((e) => e.name)
    .sort();
  if (classes.length === 0) {
    throw new InputError(
      dir,
      'no class folders: expected one subfolder per class holding .jpg, .jpeg or .png files',
    );
  }
  const items: ImageFolder['items'] = [];
  const empty: string[] = [];
  classes.forEach((name, label) => {
    const files = imagesUnder(join(dir, name));
    if (files.length === 0) empty.push(name);
    for (const path of files) items.push({ path, label });
  });
  if (empty.length > 0) {
    const shown = empty.slice(0, 5).join(', ') + (empty.length > 5 ? `, … (${empty.length} in all)` : '');
    throw new InputError(dir, `class folders without .jpg, .jpeg or .png files: ${shown}`);
  }
  return { classes, items };
}
