/**
 * PIL-style resizing on cases with known answers (identity, constants, ramps, mirror symmetry,
 * hand-computed bilinear/bicubic taps), HF center crop, the full processor and its config.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Image } from '../../src/io/images.js';
import {
  centerCropPixels,
  grayToTensor,
  outputSize,
  parsePreprocessorConfig,
  preprocess,
  RESAMPLE,
  type Resample,
  readPreprocessorConfig,
  resizePixels,
} from '../../src/io/preprocess.js';
import { Rng } from '../../src/util/math.js';

const FILTERS: Resample[] = [0, 1, 2, 3, 4, 5];
/** Filters whose taps are mirror-symmetric (box and nearest break ties to one side). */
const SYMMETRIC: Resample[] = [RESAMPLE.lanczos, RESAMPLE.bilinear, RESAMPLE.bicubic, RESAMPLE.hamming];

/** A 1-channel row image of the given values. */
const row = (values: number[]): Uint8Array => Uint8Array.from(values);
const resizeRow = (values: number[], out: number, f: Resample): number[] =>
  Array.from(resizePixels(row(values), values.length, 1, 1, out, 1, f));

function randomPixels(n: number, seed: number): Uint8Array {
  const r = new Rng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(r.uniform() * 256));
}

/** Mirrors an interleaved image left-right and top-bottom. */
function mirror(src: Uint8Array, w: number, h: number, c: number): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let k = 0; k < c; k++) out[((h - 1 - y) * w + (w - 1 - x)) * c + k] = src[(y * w + x) * c + k]!;
    }
  }
  return out;
}

/** (x − 0.5) / 0.5 with x and every step in float32, as transformers' normalize computes it. */
const normalizedF32 = (x: number): number => Math.fround(Math.fround(Math.fround(x) - 0.5) / 0.5);

/** Round half up and clamp, PIL's uint8 result of an exact weighted sum. */
const toU8 = (x: number): number => Math.min(255, Math.max(0, Math.floor(x + 0.5)));

describe('resize (PIL semantics)', () => {
  it('returns a copy of the pixels at the same size, for every filter', () => {
    const src = randomPixels(7 * 5 * 3, 1);
    for (const f of FILTERS) {
      const out = resizePixels(src, 7, 5, 3, 7, 5, f);
      assert.deepEqual(out, src, `filter ${f}`);
      assert.notEqual(out, src);
    }
  });

  it('keeps a constant image constant when shrinking or enlarging', () => {
    for (const f of FILTERS) {
      for (const [w, h, ow, oh] of [
        [32, 24, 16, 8],
        [30, 9, 12, 3],
        [5, 7, 13, 11],
        [224, 1, 100, 1],
      ] as const) {
        const out = resizePixels(new Uint8Array(w * h * 3).fill(201), w, h, 3, ow, oh, f);
        assert.ok(
          out.every((v) => v === 201),
          `filter ${f} ${w}×${h} → ${ow}×${oh}`,
        );
      }
    }
  });

  it('halves a linear ramp to the ramp at the output pixel centres (antialiased taps)', () => {
    const ramp = Array.from({ length: 32 }, (_, p) => 8 * p + 3);
    const centre = (xx: number) => 16 * xx + 7; // ramp at source position 2xx + 0.5
    const bilinear = resizeRow(ramp, 16, RESAMPLE.bilinear);
    const bicubic = resizeRow(ramp, 16, RESAMPLE.bicubic);
    for (let xx = 1; xx < 15; xx++) assert.equal(bilinear[xx], centre(xx), `bilinear ${xx}`);
    for (let xx = 2; xx < 14; xx++) assert.equal(bicubic[xx], centre(xx), `bicubic ${xx}`);
    // edges: bilinear support 2 clipped to pixels 0,1,2 with weights 3/4, 3/4, 1/4 (and mirrored)
    assert.equal(bilinear[0], toU8((3 * 0.75 + 11 * 0.75 + 19 * 0.25) / 1.75)); // 8.71 → 9
    assert.equal(bilinear[15], toU8((235 * 0.25 + 243 * 0.75 + 251 * 0.75) / 1.75)); // 245.29 → 245
    assert.deepEqual(
      resizeRow(ramp, 16, RESAMPLE.box),
      Array.from({ length: 16 }, (_, xx) => centre(xx)),
      'box: mean of each pair',
    );
    assert.deepEqual(
      resizeRow(ramp, 8, RESAMPLE.box),
      Array.from({ length: 8 }, (_, xx) => 32 * xx + 15),
      'box ÷4',
    );
  });

  it('gives a column the same answer as a row (vertical pass = horizontal pass)', () => {
    const values = Array.from(randomPixels(29, 2));
    for (const f of FILTERS) {
      for (const out of [11, 64]) {
        const asColumn = Array.from(resizePixels(row(values), 1, 29, 1, 1, out, f));
        assert.deepEqual(asColumn, resizeRow(values, out, f), `filter ${f} → ${out}`);
      }
    }
  });

  it('commutes with mirroring for the symmetric filters', () => {
    for (const f of SYMMETRIC) {
      for (const [w, h, ow, oh, seed] of [
        [30, 32, 12, 8, 3],
        [7, 6, 14, 24, 4],
        [40, 10, 16, 5, 5],
      ] as const) {
        const src = randomPixels(w * h * 3, seed);
        const a = mirror(resizePixels(src, w, h, 3, ow, oh, f), ow, oh, 3);
        const b = resizePixels(mirror(src, w, h, 3), w, h, 3, ow, oh, f);
        assert.deepEqual(a, b, `filter ${f} ${w}×${h} → ${ow}×${oh}`);
      }
    }
  });

  it('enlarges 2×2 → 4×4 with hand-computed bilinear and bicubic taps', () => {
    // bilinear at scale 1/2: centres 0.25, 0.75, 1.25, 1.75; the first and last see one pixel
    assert.deepEqual(resizeRow([40, 200], 4, RESAMPLE.bilinear), [40, 80, 160, 200]);
    assert.deepEqual(resizeRow([0, 2], 4, RESAMPLE.bilinear), [0, 1, 2, 2], '0.5 rounds up');
    // bicubic (a = −0.5): k(0.25) = 111/128, k(1.25) = −9/128, k(0.75) = 29/128; each set normalised
    const taps = [
      [111 / 102, -9 / 102],
      [111 / 140, 29 / 140],
      [29 / 140, 111 / 140],
      [-9 / 102, 111 / 102],
    ];
    const exact: number[] = [];
    const up = (a: number, b: number): number[] =>
      taps.map(([wa, wb]) => {
        exact.push(wa! * a + wb! * b);
        return toU8(exact.at(-1)!);
      });
    const [a, b, c, d] = [17, 211, 93, 38];
    const rows = [up(a, b), up(c, d)]; // horizontal pass first, rounded to uint8
    const expected: number[] = new Array(16);
    for (let x = 0; x < 4; x++) {
      const column = up(rows[0]![x]!, rows[1]![x]!);
      for (let y = 0; y < 4; y++) expected[y * 4 + x] = column[y]!;
    }
    const out = resizePixels(Uint8Array.from([a, b, c, d]), 2, 2, 1, 4, 4, RESAMPLE.bicubic);
    assert.deepEqual(Array.from(out), expected);
    assert.equal(expected[0], 0, 'overshoot below 0 is clamped');
    // no exact sum sits near a rounding tie, where PIL's 22-bit taps could round either way
    assert.ok(exact.every((v) => v < 0 || Math.abs((v % 1) - 0.5) > 0.05));
    assert.deepEqual(resizeRow([0, 255], 4, RESAMPLE.bicubic), [0, 53, 202, 255], 'clamped both ways');
  });

  it('picks nearest pixels at PIL’s centres', () => {
    assert.deepEqual(resizeRow([10, 20, 30, 40], 2, RESAMPLE.nearest), [20, 40]);
    assert.deepEqual(resizeRow([10, 20], 4, RESAMPLE.nearest), [10, 10, 20, 20]);
    assert.deepEqual(resizeRow([10, 20, 30], 2, RESAMPLE.nearest), [10, 30]);
  });

  it('resizes RGB pixels and rejects impossible sizes', () => {
    const out = resizePixels(new Uint8Array(24).fill(9), 4, 2, 3, 2, 3, RESAMPLE.bicubic);
    assert.deepEqual([...out], new Array(18).fill(9));
    assert.throws(
      () => resizePixels(new Uint8Array(5), 2, 2, 1, 1, 1, 2),
      /resize: 5 bytes for a 2×2×1 image, expected 4/,
    );
    assert.throws(
      () => resizePixels(new Uint8Array(4), 2, 2, 1, 0, 1, 2),
      /resize: output width 0, expected a positive integer/,
    );
    assert.throws(
      () => resizePixels(new Uint8Array(4), 2, 2, 1, 1, 1, 9 as Resample),
      /resample 9, expected one of 0, 1, 2, 3, 4, 5/,
    );
  });
});

describe('center crop (transformers semantics)', () => {
  const grid = (w: number, h: number) => Uint8Array.from({ length: w * h }, (_, i) => i + 1);

  it('takes offset floor((size − crop) / 2)', () => {
    assert.deepEqual(Array.from(centerCropPixels(grid(5, 5), 5, 5, 1, 2, 2)), [7, 8, 12, 13]);
    assert.deepEqual(Array.from(centerCropPixels(grid(4, 1), 4, 1, 1, 3, 1)), [1, 2, 3]);
  });

  it('pads with zeros where the image is smaller, placing it at ceil(pad / 2)', () => {
    // 3 rows into 6: transformers pads ceil(3/2) = 2 rows on top
    const tall = Array.from(centerCropPixels(grid(1, 3), 1, 3, 1, 1, 6));
    assert.deepEqual(tall, [0, 0, 1, 2, 3, 0]);
    // wider than the crop but shorter: crop columns, pad rows
    const mixed = Array.from(centerCropPixels(grid(4, 1), 4, 1, 1, 2, 3));
    assert.deepEqual(mixed, [0, 0, 2, 3, 0, 0]);
  });

  it('moves whole pixels of several channels', () => {
    const rgb = Uint8Array.from({ length: 3 * 3 * 3 }, (_, i) => i);
    assert.deepEqual(Array.from(centerCropPixels(rgb, 3, 3, 3, 1, 1)), [12, 13, 14]);
  });
});

describe('image processor', () => {
  const image = (w: number, h: number, f: (i: number) => number): Image => ({
    width: w,
    height: h,
    channels: 3,
    data: Uint8Array.from({ length: w * h * 3 }, (_, i) => f(i)),
  });

  it('rescales and normalizes to CHW float32', () => {
    const cfg = parsePreprocessorConfig({ size: { height: 2, width: 1 } }, 'p.json'); // ViT defaults otherwise
    const out = preprocess(
      image(1, 2, (i) => [0, 255, 51, 255, 0, 102][i]!),
      cfg,
    );
    // (v/255 − 0.5) / 0.5 per channel plane: R = [0, 255], G = [255, 0], B = [51, 102]
    assert.deepEqual(Array.from(out), [-1, 1, 1, -1, ...[0.2, 0.4].map(normalizedF32)]);
    const raw = parsePreprocessorConfig(
      { do_resize: false, do_rescale: false, do_normalize: false },
      'p.json',
    );
    assert.deepEqual(
      Array.from(
        preprocess(
          image(2, 1, (i) => i * 10),
          raw,
        ),
      ),
      [0, 30, 10, 40, 20, 50],
    );
  });

  it('normalizes in float32 like transformers (ImageNet mean/std)', () => {
    const cfg = parsePreprocessorConfig(
      { feature_extractor_type: 'DeiTFeatureExtractor', size: 1, crop_size: 1 },
      'p.json',
    );
    const out = preprocess(
      image(1, 1, () => 128),
      cfg,
    );
    // transformers rescales in float64 and stores float32, then normalizes with float32 mean and std
    const f = Math.fround;
    const x = f(128 * (1 / 255));
    const want = [0.485, 0.456, 0.406].map((m, c) => f(f(x - f(m)) / f([0.229, 0.224, 0.225][c]!)));
    assert.deepEqual(Array.from(out), want);
  });

  it('resizes, then center crops (DeiT: 256 → 224 in small)', () => {
    const cfg = parsePreprocessorConfig(
      { image_processor_type: 'DeiTImageProcessor', size: 4, crop_size: 2 },
      'p.json',
    );
    const src = image(4, 4, (i) => Math.floor(i / 3) * 10); // pixel p has value 10p in every channel
    const out = preprocess(src, { ...cfg, do_rescale: false, do_normalize: false });
    assert.deepEqual(
      Array.from(out.subarray(0, 4)),
      [50, 60, 90, 100],
      'identity resize, rows 1–2, columns 1–2',
    );
    assert.deepEqual(outputSize(cfg, 640, 480), { width: 2, height: 2 });
  });

  it('resizes the shortest edge keeping the aspect ratio, truncating the long edge', () => {
    const cfg = parsePreprocessorConfig({ size: { shortest_edge: 2 } }, 'p.json');
    assert.deepEqual(outputSize(cfg, 7, 3), { width: 4, height: 2 }); // int(2 · 7 / 3)
    assert.deepEqual(outputSize(cfg, 3, 7), { width: 2, height: 4 });
    assert.equal(
      preprocess(
        image(7, 3, () => 0),
        cfg,
      ).length,
      3 * 2 * 4,
    );
  });

  it('rejects pixel data of the wrong length', () => {
    const cfg = parsePreprocessorConfig({}, 'p.json');
    assert.throws(
      () => preprocess({ width: 2, height: 2, channels: 3, data: new Uint8Array(5) }, cfg),
      /5 bytes for a 2×2 RGB image, expected 12/,
    );
  });
});

describe('preprocessor_config.json', () => {
  it('reads a legacy ViT config with ViTImageProcessor defaults', () => {
    const vit = {
      do_normalize: true,
      do_resize: true,
      feature_extractor_type: 'ViTFeatureExtractor',
      image_mean: [0.5, 0.5, 0.5],
      image_std: [0.5, 0.5, 0.5],
      resample: 2,
      size: 224,
    };
    const cfg = parsePreprocessorConfig(vit, 'vit.json');
    assert.deepEqual(cfg.size, { height: 224, width: 224 });
    assert.equal(cfg.do_center_crop, false);
    assert.equal(cfg.do_rescale, true);
    assert.equal(cfg.rescale_factor, 1 / 255);
  });

  it('fills DeiT defaults for DeiT processors and reads the modern dict forms', () => {
    const deit = parsePreprocessorConfig({ image_processor_type: 'DeiTImageProcessor' }, 'deit.json');
    assert.deepEqual(
      [deit.size, deit.crop_size, deit.resample, deit.do_center_crop, deit.image_mean],
      [{ height: 256, width: 256 }, { height: 224, width: 224 }, 3, true, [0.485, 0.456, 0.406]],
    );
    const modern = parsePreprocessorConfig(
      {
        size: { height: 384, width: 384 },
        crop_size: [320, 300],
        image_mean: 0.5,
        resample: 3,
        processor_class: 'X',
      },
      'p.json',
    );
    assert.deepEqual(
      [modern.size, modern.crop_size, modern.image_mean],
      [{ height: 384, width: 384 }, { height: 320, width: 300 }, [0.5, 0.5, 0.5]],
    );
  });

  it('names the file, the field, the value and what is allowed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xbar-pp-'));
    const path = join(dir, 'preprocessor_config.json');
    writeFileSync(path, JSON.stringify({ size: -3, resample: 7, image_std: [0.5, 0, 0.5] }));
    assert.throws(
      () => readPreprocessorConfig(path),
      (e: Error) => {
        assert.ok(e.message.startsWith(path), e.message);
        assert.match(
          e.message,
          /size: expected a positive integer \(square\), \[height, width\], \{height, width\} or \{shortest_edge\}, received -3/,
        );
        assert.match(e.message, /resample: .*expected one of 0\|1\|2\|3\|4\|5, received 7/);
        assert.match(e.message, /image_std\.1: .*received 0/);
        return true;
      },
    );
    writeFileSync(path, JSON.stringify({ size: { shortest_edge: 224 }, image_mean: [1, 2] }));
    assert.throws(
      () => readPreprocessorConfig(path),
      /image_mean: 2 values for a model of 3 channels \(num_channels in its config.json\); use one number or a list of 3/,
    );
  });

  it('takes one mean and std per channel, as transformers writes them for num_channels 1', () => {
    // transformers' ViTImageProcessor.save_pretrained for a gray model
    const gray = { image_mean: [0.5], image_std: [0.25] };
    const cfg = parsePreprocessorConfig(gray, 'gray.json', 1);
    assert.deepEqual(cfg.image_mean, [0.5, 0.5, 0.5]);
    assert.deepEqual(cfg.image_std, [0.25, 0.25, 0.25]);
    // the same values as one number each
    assert.deepEqual(parsePreprocessorConfig({ image_mean: 0.5, image_std: 0.25 }, 'p.json', 1), cfg);
    assert.throws(
      () => parsePreprocessorConfig({ image_mean: [0.5, 0.5, 0.5], image_std: 0.5 }, 'gray.json', 1),
      /gray\.json:\n {2}✖ image_mean: 3 values for a model of 1 channel \(num_channels in its config.json\); use one number or a list of 1/,
    );
    assert.throws(
      () => parsePreprocessorConfig({ image_std: [0.5] }, 'rgb.json'),
      /image_std: 1 value for a model of 3 channels/,
    );
  });
});

describe('grayscale tensors', () => {
  it('maps uint8 to (v/255 − mean)/std in float32', () => {
    const out = grayToTensor(Uint8Array.from([0, 255, 51, 102]), 2, 2, 0.5, 0.5);
    assert.deepEqual(Array.from(out), [-1, 1, ...[0.2, 0.4].map(normalizedF32)]);
    const fashion = grayToTensor(Uint8Array.from([0, 128]), 1, 2, 0.286, 0.353);
    assert.ok(Math.abs(fashion[1]! - (128 / 255 - 0.286) / 0.353) < 1e-6);
  });

  it('rejects a wrong length or a non-positive std', () => {
    assert.throws(
      () => grayToTensor(new Uint8Array(783), 28, 28, 0, 1),
      /783 bytes, a 28×28 image needs 784/,
    );
    assert.throws(() => grayToTensor(new Uint8Array(4), 2, 2, 0, 0), /std 0, expected a positive number/);
  });
});
