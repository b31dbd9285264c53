/** The SVG charts: titles, labels, percentages, legend, colours; PNG rendering. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { barChart, colorMap, PALETTE, pieChart, svgDocument, toPng } from '../../src/report/svg.js';

const data = [
  { label: 'MLP', value: 60 },
  { label: 'Q/K/V', value: 25 },
  { label: 'softmax <LUT>', value: 10 },
  { label: 'S·V', value: 5 },
  { label: 'nothing', value: 0 },
];

describe('svg charts', () => {
  it('a pie has the title, every positive label with its share, and escapes text', () => {
    const c = pieChart({ title: 'Energy', data, format: (v) => `${v} µJ` });
    assert.match(c.body, />Energy</);
    assert.match(c.body, /MLP {2}60 µJ \(60\.0%\)/);
    assert.match(c.body, /softmax &lt;LUT&gt; {2}10 µJ \(10\.0%\)/);
    assert.match(c.body, /S·V {2}5 µJ \(5\.0%\)/);
    assert.doesNotMatch(c.body, /nothing/);
    assert.equal((c.body.match(/<path /g) ?? []).length, 4);
    // slice labels for slices of 6% or more
    assert.deepEqual(
      [...c.body.matchAll(/font-weight="bold" text-anchor="middle"[^>]*>([\d.]+%)</g)].map((m) => m[1]),
      ['60.0%', '25.0%', '10.0%'],
    );
  });

  it('a single slice is a full circle; no data says so', () => {
    assert.match(pieChart({ title: 'one', data: [{ label: 'all', value: 3 }] }).body, /<circle /);
    assert.match(pieChart({ title: 'none', data: [] }).body, /nothing to show/);
  });

  it('the tail beyond maxEntries is merged into "other"', () => {
    const many = Array.from({ length: 12 }, (_, i) => ({ label: `s${i}`, value: 12 - i }));
    const c = pieChart({ title: 'many', data: many, maxEntries: 5 });
    assert.match(c.body, /other {2}/);
    assert.equal((c.body.match(/<path /g) ?? []).length, 5);
  });

  it('bars are proportional to the values and labelled', () => {
    const c = barChart({ title: 'Area', data, barWidth: 300 });
    const widths = [...c.body.matchAll(/<rect [^>]*width="([\d.]+)"/g)].map((m) => Number(m[1]));
    assert.deepEqual(widths, [300, 125, 50, 25]);
    assert.match(c.body, /MLP</);
  });

  it('colours: fixed by label across charts, distinct, colour-blind-safe palette', () => {
    const colors = colorMap(['a', 'b', 'c']);
    assert.equal(new Set(Object.values(colors)).size, 4);
    const c = pieChart({
      title: 'x',
      data: [
        { label: 'c', value: 1 },
        { label: 'a', value: 2 },
      ],
      colors,
    });
    assert.ok(c.body.indexOf(colors['a']!) < c.body.indexOf(colors['c']!)); // the larger slice first
    assert.equal(new Set(PALETTE).size, PALETTE.length);
  });

  it('a document places charts in rows and renders to PNG', () => {
    const pie = pieChart({ title: 'E', data });
    const svg = svgDocument([[pie, pie], [barChart({ title: 'B', data })]], { title: 'T' });
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="(\d+)" height="(\d+)"/);
    assert.ok(svg.trimEnd().endsWith('</svg>'));
    const width = Number(/width="(\d+)"/.exec(svg)![1]);
    const png = toPng(svg, { scale: 1 });
    assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
    const view = new DataView(png.buffer, png.byteOffset);
    assert.equal(view.getUint32(16), width); // IHDR width
  });
});
