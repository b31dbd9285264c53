/** Image decoding (PNG of every colour type, JPEG) and ImageNet-layout folders, with their errors. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { decodeImage, readImage, readImageFolder } from '../../src/io/images.js';

const W = 5;
const H = 3;
/** A W×H RGB test pattern with distinct channels. */
const RGB = Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 37 + (i % 3) * 50) % 256);

/** PNG bytes through pngjs, from RGBA input, stored with the given colour type. */
function encodePng(rgba: Uint8Array, colorType: 0 | 2 | 4 | 6): Buffer {
  const png = new PNG({ width: W, height: H, colorType, inputColorType: 6, inputHasAlpha: true });
  png.data = Buffer.from(rgba);
  return PNG.sync.write(png, { colorType, inputColorType: 6, inputHasAlpha: true });
}

const withAlpha = (rgb: Uint8Array, alpha: (p: number) => number): Uint8Array =>
  Uint8Array.from({ length: W * H * 4 }, (_, i) =>
    i % 4 === 3 ? alpha(i >> 2) : rgb[(i >> 2) * 3 + (i % 4)]!,
  );

/** A palette (colour type 3) PNG, which pngjs cannot write: chunks by hand. */
function palettePng(indices: Uint8Array, palette: number[][]): Buffer {
  const chunk = (type: string, data: Uint8Array): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(W, 0);
  ihdr.writeUInt32BE(H, 4);
  ihdr.set([8, 3, 0, 0, 0], 8);
  const rows = Buffer.alloc(H * (W + 1));
  for (let y = 0; y < H; y++) rows.set(indices.subarray(y * W, (y + 1) * W), y * (W + 1) + 1); // filter byte 0
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('PLTE', Uint8Array.from(palette.flat())),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'xbar-img-'));
}

describe('decoding', () => {
  it('PNG RGB and RGBA round-trip exactly; alpha is dropped like PIL convert("RGB")', () => {
    const rgb = decodeImage(
      encodePng(
        withAlpha(RGB, () => 255),
        2,
      ),
      'rgb.png',
    );
    assert.deepEqual(
      { ...rgb, data: Array.from(rgb.data) },
      { width: W, height: H, channels: 3, data: Array.from(RGB) },
    );
    const rgba = decodeImage(
      encodePng(
        withAlpha(RGB, (p) => p * 10),
        6,
      ),
      'rgba.png',
    );
    assert.deepEqual(rgba.data, RGB);
  });

  it('PNG gray and gray+alpha become RGB with equal channels', () => {
    const gray = Uint8Array.from({ length: W * H }, (_, p) => p * 17);
    const rgb = Uint8Array.from({ length: W * H * 3 }, (_, i) => gray[Math.floor(i / 3)]!);
    for (const colorType of [0, 4] as const) {
      // opaque input for type 0: pngjs's encoder blends alpha into gray when it drops it
      const img = decodeImage(
        encodePng(
          withAlpha(rgb, () => (colorType === 4 ? 128 : 255)),
          colorType,
        ),
        'gray.png',
      );
      assert.deepEqual(img.data, rgb, `colour type ${colorType}`);
    }
  });

  it('PNG palette images are looked up to RGB', () => {
    const palette = [
      [255, 0, 0],
      [0, 128, 255],
      [7, 8, 9],
    ];
    const indices = Uint8Array.from({ length: W * H }, (_, p) => p % 3);
    const img = decodeImage(palettePng(indices, palette), 'palette.png');
    assert.deepEqual(
      Array.from(img.data),
      Array.from(indices).flatMap((k) => palette[k]!),
    );
  });

  it('JPEG decodes to the encoded size within JPEG loss', () => {
    // a smooth image, which JPEG at quality 100 keeps to a few levels
    const w = 16;
    const h = 8;
    const rgba = Uint8Array.from({ length: w * h * 4 }, (_, i) => {
      const p = i >> 2;
      return [(p % w) * 15, Math.floor(p / w) * 30, 100, 255][i % 4]!;
    });
    const bytes = jpeg.encode({ width: w, height: h, data: rgba }, 100).data;
    const img = decodeImage(bytes, 'smooth.jpg');
    assert.deepEqual([img.width, img.height, img.channels, img.data.length], [w, h, 3, w * h * 3]);
    let worst = 0;
    for (let p = 0; p < w * h; p++) {
      for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(img.data[p * 3 + c]! - rgba[p * 4 + c]!));
    }
    assert.ok(worst <= 8, `largest error ${worst} levels`);
  });

  it('goes by the bytes, not the name (ImageNet has PNGs named .JPEG)', () => {
    const path = join(tempDir(), 'n02105855_2933.JPEG');
    writeFileSync(
      path,
      encodePng(
        withAlpha(RGB, () => 255),
        2,
      ),
    );
    assert.deepEqual(readImage(path).data, RGB);
  });

  it('names the file and what was wrong', () => {
    const dir = tempDir();
    const text = join(dir, 'notes.jpg');
    writeFileSync(text, 'GIF89a…');
    assert.throws(
      () => readImage(text),
      /notes\.jpg: not a JPEG \(ff d8 ff\) or PNG \(89 50 4e 47\) file: it starts with '47 49 46 38'/,
    );
    const cut = join(dir, 'cut.png');
    const png = encodePng(
      withAlpha(RGB, () => 255),
      2,
    );
    writeFileSync(cut, png.subarray(0, png.length - 20));
    assert.throws(() => readImage(cut), /cut\.png: cannot decode PNG: /);
    const badJpeg = join(dir, 'bad.jpg');
    writeFileSync(badJpeg, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 2, 0xff, 0xd9]));
    assert.throws(() => readImage(badJpeg), /bad\.jpg: cannot decode JPEG: /);
    assert.throws(() => readImage(join(dir, 'absent.png')), /absent\.png: cannot read: ENOENT/);
  });
});

describe('image folders', () => {
  it('labels classes by sorted folder name and lists image files like torchvision', () => {
    const dir = tempDir();
    const files: Record<string, string[]> = {
      n02: ['b.jpg', 'a.PNG', 'notes.txt', 'nested/c.jpeg'],
      n01: ['z.JPEG', 'y.jpg'],
    };
    for (const [cls, names] of Object.entries(files)) {
      for (const name of names) {
        mkdirSync(join(dir, cls, name, '..'), { recursive: true });
        writeFileSync(join(dir, cls, name), '');
      }
    }
    writeFileSync(join(dir, 'LOC_synset_mapping.txt'), 'not a class');
    const folder = readImageFolder(dir);
    assert.deepEqual(folder.classes, ['n01', 'n02']);
    assert.deepEqual(
      folder.items.map((i) => [i.path.slice(dir.length + 1), i.label]),
      [
        ['n01/y.jpg', 0],
        ['n01/z.JPEG', 0],
        ['n02/a.PNG', 1],
        ['n02/b.jpg', 1],
        ['n02/nested/c.jpeg', 1],
      ],
    );
  });

  it('rejects a folder without class folders, a class without images, and a missing folder', () => {
    const dir = tempDir();
    assert.throws(() => readImageFolder(dir), /no class folders: expected one subfolder per class/);
    writeFileSync(join(dir, 'x.jpg'), '');
    assert.throws(() => readImageFolder(dir), /no class folders/, 'images at the top level are not a class');
    mkdirSync(join(dir, 'cat'));
    mkdirSync(join(dir, 'dog'));
    writeFileSync(join(dir, 'dog', 'd.jpg'), '');
    assert.throws(() => readImageFolder(dir), /class folders without \.jpg, \.jpeg or \.png files: cat/);
    assert.throws(() => readImageFolder(join(dir, 'absent')), /absent: cannot read folder: ENOENT/);
  });
});
