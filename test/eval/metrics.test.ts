/** Metrics against hand-computed values and small float64 references, with their edge cases. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  accuracy,
  averageRanks,
  f1,
  matthewsCorrelation,
  metric,
  metricInterval95,
  pearson,
  spearman,
} from '../../src/eval/metrics.js';
import { Rng } from '../../src/util/math.js';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

/** Gorodkin's R_K straight from its definition: correlation of the one-hot matrices. */
function mccReference(pred: number[], label: number[], classes: number): number {
  const n = pred.length;
  const oneHot = (ys: number[]) =>
    ys.map((y) => Array.from({ length: classes }, (_, k) => (k === y ? 1 : 0)));
  const [X, Y] = [oneHot(label), oneHot(pred)];
  const mean = (M: number[][], k: number) => M.reduce((s, r) => s + r[k]!, 0) / n;
  const cov = (A: number[][], B: number[][]) => {
    let s = 0;
    for (let k = 0; k < classes; k++) {
      const [ma, mb] = [mean(A, k), mean(B, k)];
      for (let i = 0; i < n; i++) s += (A[i]![k]! - ma) * (B[i]![k]! - mb);
    }
    return s;
  };
  return cov(X, Y) / Math.sqrt(cov(X, X) * cov(Y, Y));
}

describe('classification metrics', () => {
  it('accuracy counts exact matches', () => {
    assert.equal(accuracy([1, 0, 1, 1], [1, 1, 1, 0]), 0.5);
    assert.equal(accuracy(Float64Array.from([2, 0, 1]), Int32Array.from([2, 0, 1])), 1);
  });

  it('F1 of class 1: 2TP / (2TP + FP + FN), 0 without positives', () => {
    // TP 2, FP 1, FN 1
    close(f1([1, 1, 0, 0, 1], [1, 0, 0, 1, 1]), 2 / 3);
    assert.equal(f1([0, 0, 0], [0, 0, 0]), 0);
    assert.equal(f1([1, 1], [1, 1]), 1);
  });

  it('MCC of a binary table: (TP·TN − FP·FN) / √(…)', () => {
    // TP 2, TN 1, FP 1, FN 1 → 1 / √(3·3·2·2)
    close(matthewsCorrelation([1, 1, 0, 0, 1], [1, 0, 0, 1, 1]), 1 / 6);
    assert.equal(matthewsCorrelation([0, 1, 1, 0], [0, 1, 1, 0]), 1);
    assert.equal(matthewsCorrelation([1, 0, 0, 1], [0, 1, 1, 0]), -1);
    close(matthewsCorrelation([1, -1, 1, 1], [1, 1, 1, -1]), -1 / 3); // scikit-learn's docstring example
  });

  it('MCC of several classes matches the one-hot correlation', () => {
    const r = new Rng(7);
    for (const classes of [3, 5]) {
      const label = Array.from({ length: 200 }, () => Math.floor(r.uniform() * classes));
      const pred = label.map((y) => (r.uniform() < 0.6 ? y : Math.floor(r.uniform() * classes)));
      close(matthewsCorrelation(pred, label), mccReference(pred, label, classes));
    }
  });

  it('MCC is 0 when either side holds a single class', () => {
    assert.equal(matthewsCorrelation([1, 1, 1], [0, 1, 0]), 0);
    assert.equal(matthewsCorrelation([0, 1, 0], [1, 1, 1]), 0);
    assert.equal(matthewsCorrelation([2, 2], [2, 2]), 0);
  });
});

describe('correlations', () => {
  it('Pearson on a hand-computed case, stable under a large offset', () => {
    // Σdxdy = 6, Σdx² = 10, Σdy² = 6 → 6/√60 = √0.6
    close(pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]), Math.sqrt(0.6));
    close(
      pearson(
        [1, 2, 3, 4, 5].map((x) => x + 1e9),
        [2, 4, 5, 4, 5],
      ),
      Math.sqrt(0.6),
      1e-9,
    );
    assert.equal(pearson([1, 2, 3], [6, 4, 2]), -1);
  });

  it('Pearson of a constant side is NaN, as SciPy gives', () => {
    assert.ok(Number.isNaN(pearson([1, 1, 1], [1, 2, 3])));
  });

  it('average ranks share ties', () => {
    assert.deepEqual(Array.from(averageRanks([10, 20, 10, 30, 20, 10])), [2, 4.5, 2, 6, 4.5, 2]);
    assert.deepEqual(Array.from(averageRanks([3, 1, 2])), [3, 1, 2]);
  });

  it('Spearman is Pearson of the ranks: ties averaged, monotone maps ignored', () => {
    // ranks [1, 2.5, 2.5, 4] and [1, 3, 2, 4]: 4.5 / √(4.5 · 5) = 3/√10
    close(spearman([1, 2, 2, 3], [1, 3, 2, 4]), 3 / Math.sqrt(10));
    const x = [0.3, -2, 5, 1.5, 0];
    close(spearman(x, x.map(Math.exp)), 1);
    close(
      spearman(
        x,
        x.map((v) => -(v ** 3)),
      ),
      -1,
    );
  });
});

describe('metric inputs', () => {
  it('dispatches by name', () => {
    assert.equal(metric('accuracy', [1, 0], [1, 1]), 0.5);
    close(metric('mcc', [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]), 1 / 6);
    close(metric('spearman', [1, 2, 3], [1, 3, 2]), 0.5);
  });

  it('reject empty, unpaired, non-finite and non-binary inputs with clear messages', () => {
    assert.throws(() => accuracy([], []), /accuracy: empty input; needs at least 1 pair/);
    assert.throws(() => matthewsCorrelation([], []), /mcc: empty input/);
    assert.throws(
      () => pearson([1], [2]),
      /pearson: only 1 \(prediction, label\) pair; needs at least 2 pairs/,
    );
    assert.throws(() => spearman([1, 2], [1]), /spearman: 2 predictions but 1 labels; they must pair up/);
    assert.throws(
      () => pearson([1, Number.NaN], [1, 2]),
      /pearson: predictions\[1\] is NaN, expected a finite number/,
    );
    assert.throws(() => f1([0, 2], [0, 1]), /f1: predictions\[1\] is 2, expected 0 or 1 \(binary F1\)/);
  });
});

describe('metric intervals', () => {
  it("gives Wilson's score interval for accuracy (Newcombe 1998, Table I)", () => {
    // 81 of 263 → [0.2553, 0.3662]; 15 of 148 → [0.0624, 0.1605]; 0 of 20 → [0, 0.1611]
    const hits = (k: number, n: number) => {
      const pred = Array.from({ length: n }, (_, i) => (i < k ? 1 : 0));
      return metricInterval95('accuracy', pred, Array(n).fill(1));
    };
    for (const [k, n, low, high] of [
      [81, 263, 0.2553, 0.3662],
      [15, 148, 0.0624, 0.1605],
      [0, 20, 0, 0.1611],
    ] as const) {
      const r = hits(k, n);
      assert.equal(r.method, 'wilson');
      assert.ok(
        Math.abs(r.low - low) < 1e-4 && Math.abs(r.high - high) < 1e-4,
        `${k}/${n}: ${r.low}, ${r.high}`,
      );
    }
    // all right or all wrong: the interval holds the estimate exactly at its end (no rounding past it)
    for (const n of [1, 4, 7, 20, 263]) {
      assert.equal(hits(n, n).high, 1, `${n}/${n}`);
      assert.equal(hits(0, n).low, 0, `0/${n}`);
    }
  });

  it('bootstraps the other metrics, the same interval for the same predictions', () => {
    const label = Array.from({ length: 200 }, (_, i) => i % 2);
    const pred = label.map((l, i) => (i % 5 === 0 ? 1 - l : l));
    const r = metricInterval95('f1', pred, label);
    assert.equal(r.method, 'bootstrap');
    const v = f1(pred, label);
    assert.ok(r.low < v && v < r.high, `${r.low} < ${v} < ${r.high}`);
    // 200 examples at F1 ≈ 0.8: the 95 % interval is about ± 2·sqrt(0.8·0.2/100) ≈ ± 0.08 wide
    assert.ok(r.high - r.low > 0.04 && r.high - r.low < 0.25, `${r.high - r.low}`);
    assert.deepEqual(metricInterval95('f1', pred, label), r);
  });
});
