/**
 * The Vega-Lite chart specs: valid (Vega-Lite compiles them without a warning, Vega parses the
 * result), plain JSON, and drawn with the titles, marks and values given; SVG to PNG.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  barChart,
  type Chart,
  colorMap,
  figure,
  histogram,
  intervalChart,
  lineChart,
  PALETTE,
  pieChart,
  scatterChart,
} from '../../src/report/charts.js';
import { toPng, toSvg } from '../../src/report/render.js';
import { compileStrict } from '../helpers/vega.js';

/** The SVG of one chart, after checking that its spec is valid. */
async function draw(chart: Chart): Promise<string> {
  const spec = figure([[chart]]);
  compileStrict(spec);
  return toSvg(spec);
}

/** The texts under the axis or legend whose aria-label starts with `label` (up to the next axis, legend, title or mark). */
function textsOf(svg: string, label: string): string[] {
  const at = svg.indexOf(`aria-label="${label}`);
  assert.ok(at >= 0, `no ${label} in the SVG`);
  const end = svg.slice(at + 1).search(/role-(axis|legend|title)"|role-mark[ "]/);
  const part = svg.slice(at, end < 0 ? undefined : at + 1 + end);
  return [...part.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);
}

/** The data values Vega-Lite describes on the marks (aria-label "title: value; …"). */
const described = (svg: string) => [...svg.matchAll(/aria-label="([^"]*)"/g)].map((m) => m[1]!);

const accuracy = [
  { label: 'none', points: [3, 4, 5].map((x, i) => ({ x, y: [64.7, 71.3, 80.3][i]!, err: 1.5 })) },
  { label: 'paper', points: [3, 4, 5].map((x, i) => ({ x, y: [66.1, 70.2, 75.9][i]! })) },
];

describe('chart specs', () => {
  it('every kind compiles without a warning, alone and in a figure, and is plain JSON', () => {
    const charts: Chart[] = [
      lineChart({ title: 'a', xTitle: 'γ', yTitle: 'accuracy (%)', series: accuracy }),
      lineChart({
        title: 'b',
        xTitle: 'time',
        yTitle: 'accuracy (%)',
        logX: true,
        xNames: { 1: '1 s', 3600: '1 h' },
        series: [{ label: 's', points: [1, 3600].map((x) => ({ x, y: 70, err: 1 })) }],
      }),
      histogram({ title: 'c', xTitle: 'G (µS)', series: [{ label: 'k', values: [1, 2, 2, 3] }] }),
      intervalChart({
        title: 'd',
        xTitle: 'points',
        series: ['s'],
        rows: [{ label: 'r', values: [{ mid: 1, lo: 0, hi: 2 }] }],
      }),
      scatterChart({
        title: 'e',
        xTitle: 'x',
        yTitle: 'y',
        points: [{ series: 's', label: 'p', x: 1, y: 2 }],
      }),
      pieChart({ title: 'f', data: [{ label: 'a', value: 1 }] }),
      barChart({ title: 'g', xTitle: 'v', data: [{ label: 'a', value: 1 }] }),
    ];
    for (const c of charts) {
      const spec = figure([[c]]);
      assert.equal(typeof spec.$schema, 'string');
      compileStrict(spec);
      assert.deepEqual(JSON.parse(JSON.stringify(spec)), spec, 'not plain JSON');
    }
    const all = figure([charts.slice(0, 3), charts.slice(3)], { title: 'all' });
    assert.equal((all as { vconcat: unknown[] }).vconcat.length, 2);
    compileStrict(all);
  });

  it('a line chart: title, axis titles, legend, a point and an error bar per value, nice ticks', async () => {
    const svg = await draw(
      lineChart({ title: 'T: accuracy', xTitle: 'γ', yTitle: 'acc (%)', series: accuracy }),
    );
    assert.match(svg, />T: accuracy</);
    assert.match(svg, />γ</);
    assert.match(svg, />acc \(%\)</);
    assert.deepEqual(textsOf(svg, 'Symbol legend'), ['none', 'paper']);
    // the x ticks are the measured x values, as integers
    assert.deepEqual(textsOf(svg, 'X-axis'), ['3', '4', '5', 'γ']);
    // y ticks round: whole multiples of 2 or 5 (never a data value such as 64.7)
    const yTicks = textsOf(svg, 'Y-axis').slice(0, -1).map(Number);
    assert.ok(yTicks.length >= 3, String(yTicks));
    assert.ok(
      yTicks.every((v) => v % 2 === 0) || yTicks.every((v) => v % 5 === 0),
      `ticks ${yTicks.join(', ')}`,
    );
    const labels = described(svg);
    for (const [x, y] of [
      [3, 64.7],
      [5, 80.3],
      [5, 75.9],
    ])
      assert.ok(
        labels.includes(`γ: ${x}; acc (%): ${y}`) ||
          labels.some((l) => l.startsWith(`γ: ${x}; acc (%): ${y};`)),
        `${x}, ${y}`,
      );
    // error bars only where err is given: from y − err to y + err
    const bars = labels.filter((l) => l.includes('acc (%) (2)') || /; hi: /.test(l));
    assert.equal(bars.length, 3, bars.join('\n'));
    assert.ok(
      bars.some((l) => l.includes('63.2') && l.includes('66.2')),
      bars.join('\n'),
    );
  });
});

describe('share charts', () => {
  const data = [
    { label: 'MLP', value: 60 },
    { label: 'Q/K/V', value: 25 },
    { label: 'softmax <LUT>', value: 10 },
    { label: 'S·V', value: 5 },
    { label: 'nothing', value: 0 },
  ];

  it('a pie: the legend holds every positive label with value and share, slices of 6% or more their share', async () => {
    const svg = await draw(pieChart({ title: 'Energy', data, format: (v) => `${v} µJ` }));
    assert.match(svg, />Energy</);
    assert.deepEqual(textsOf(svg, 'Symbol legend'), [
      'MLP  60 µJ (60.0%)',
      'Q/K/V  25 µJ (25.0%)',
      'softmax &lt;LUT&gt;  10 µJ (10.0%)',
      'S·V  5 µJ (5.0%)',
    ]);
    assert.doesNotMatch(svg, /nothing/);
    const slices = [...svg.matchAll(/<text[^>]*font-weight="bold"[^>]*>([\d.]+%)<\/text>/g)].map((m) => m[1]);
    assert.deepEqual(slices, ['60.0%', '25.0%', '10.0%']);
  });

  it('the tail beyond maxEntries is merged into "other"; no data says so', async () => {
    const many = Array.from({ length: 12 }, (_, i) => ({ label: `s${i}`, value: 12 - i }));
    const legend = textsOf(
      await draw(pieChart({ title: 'many', data: many, maxEntries: 5 })),
      'Symbol legend',
    );
    assert.equal(legend.length, 5);
    assert.equal(legend[4], 'other  36.0 (46.2%)'); // 9 + 8 + … + 1 of 78
    assert.match(await draw(pieChart({ title: 'none', data: [] })), /nothing to show/);
  });

  it('colours: fixed by label across charts, others from the palette', () => {
    const colors = colorMap(['a', 'b', 'c']);
    assert.equal(new Set(Object.values(colors)).size, 4);
    assert.equal(new Set(PALETTE).size, PALETTE.length);
    const pie = pieChart({
      title: 'x',
      data: [
        { label: 'c', value: 1 },
        { label: 'a', value: 2 },
        { label: 'z', value: 0.5 },
      ],
      colors,
    }) as { layer: { encoding: { color?: { scale: { domain: string[]; range: string[] } } } }[] };
    const scale = pie.layer[0]!.encoding.color!.scale;
    assert.deepEqual(scale.range.slice(0, 2), [colors['a'], colors['c']]); // the larger slice first
    assert.ok(!Object.values(colors).includes(scale.range[2]!)); // 'z' takes a colour not fixed for another label
  });

  it('bars: largest first, lengths proportional to the values, each labelled with value and share', async () => {
    const svg = await draw(barChart({ title: 'Area', xTitle: 'area (mm²)', data }));
    assert.match(svg, />area \(mm²\)</);
    assert.deepEqual(textsOf(svg, 'Y-axis'), ['MLP', 'Q/K/V', 'softmax &lt;LUT&gt;', 'S·V']);
    const group = svg.slice(svg.indexOf('class="mark-rect role-mark'));
    const widths = [
      ...group.slice(0, group.indexOf('</g>')).matchAll(/<path[^>]*d="M0,[\d.]+h([\d.]+)v/g),
    ].map((m) => Number(m[1]));
    assert.equal(widths.length, 4);
    const shares = widths.map((w) => w / widths[0]!);
    [1, 25 / 60, 10 / 60, 5 / 60].forEach((want, i) => {
      assert.ok(Math.abs(shares[i]! - want) < 1e-3, `bar ${i}: ${shares[i]}`);
    });
    assert.match(svg, />60\.0 \(60\.0%\)</);
  });
});

describe('distributions and estimates', () => {
  it('a histogram: shared bins, each sample as fractions summing to 1, both drawn', async () => {
    const before = Array.from({ length: 100 }, (_, i) => i / 10); // 0 … 9.9
    const after = new Float32Array(50).fill(2.5);
    const chart = histogram({
      title: 'K',
      xTitle: 'G (µS)',
      bins: 10,
      series: [
        { label: 'before', values: before },
        { label: 'after', values: after },
      ],
    }) as { data: { values: { series: string; x0: number; x1: number; fraction: number }[] } };
    const rows = chart.data.values;
    assert.equal(rows.length, 20);
    for (const s of ['before', 'after']) {
      const f = rows.filter((r) => r.series === s).map((r) => r.fraction);
      assert.ok(Math.abs(f.reduce((a, b) => a + b, 0) - 1) < 1e-12, s);
    }
    // bins of 0.99 from 0 to 9.9: the largest value in the last bin, 2.5 all in the third
    assert.ok(Math.abs(rows[9]!.x1 - 9.9) < 1e-12);
    assert.deepEqual(
      rows.filter((r) => r.series === 'after').map((r) => r.fraction),
      [0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
    );
    const svg = await draw(chart as Chart);
    assert.deepEqual(textsOf(svg, 'Symbol legend'), ['before', 'after']);
    assert.equal(described(svg).filter((l) => l.includes('fraction of values: ')).length, 20);
  });

  it('an interval chart: rows in order, a dot per estimate, a whisker per finite interval, a line at zero', async () => {
    const svg = await draw(
      intervalChart({
        title: 'costs',
        xTitle: 'accuracy points (95 % CI)',
        series: ['alone', 'removed'],
        rows: [
          { label: 'DAC', values: [{ mid: -2, lo: -3, hi: -1 }, null] },
          {
            label: 'ADC',
            values: [
              { mid: 30.9, lo: 27.7, hi: 34.1 },
              { mid: 5, lo: Number.NaN, hi: Number.NaN },
            ],
          },
        ],
      }),
    );
    assert.deepEqual(textsOf(svg, 'Y-axis'), ['DAC', 'ADC']);
    const labels = described(svg);
    const x = 'accuracy points (95 % CI)';
    assert.deepEqual(
      labels.filter((l) => l.startsWith(`${x}: `) && !l.includes('hi:')),
      [
        `${x}: 0`,
        `${x}: −2; row: DAC; series: alone`,
        `${x}: 30.9; row: ADC; series: alone`,
        `${x}: 5; row: ADC; series: removed`,
      ],
    );
    assert.deepEqual(
      labels.filter((l) => l.includes('; hi: ')),
      [`${x}: −3; row: DAC; hi: −1; series: alone`, `${x}: 27.7; row: ADC; hi: 34.1; series: alone`],
    );
  });

  it('a scatter chart: every finite point labelled (log x drops x ≤ 0), whole-number ticks for counts', async () => {
    const points = [
      { series: 'a', label: 'p1', x: 0.01, y: 80 },
      { series: 'a', label: 'p2', x: 0.004, y: 78 },
      { series: 'b', label: 'p3', x: 0.006, y: 70 },
      { series: 'b', label: 'bad', x: 0, y: 70 },
      { series: 'b', label: 'nan', x: 0.5, y: Number.NaN },
    ];
    const svg = await draw(scatterChart({ title: 't', xTitle: 'EDAP', yTitle: 'acc', logX: true, points }));
    assert.deepEqual(
      [...svg.matchAll(/aria-roledescription="text mark"[^>]*>([^<]*)</g)].map((m) => m[1]).sort(),
      ['p1', 'p2', 'p3'],
    );
    assert.deepEqual(textsOf(svg, 'Symbol legend'), ['a', 'b']);
    assert.match(svg, /aria-label="X-axis titled 'EDAP' for a log scale/);
    const counts = await draw(
      scatterChart({
        title: 'n',
        xTitle: 'N',
        yTitle: 'acc',
        points: [1, 2, 3].map((x) => ({ series: 's', label: `${x}`, x, y: 80 + x })),
      }),
    );
    assert.deepEqual(textsOf(counts, 'X-axis').slice(0, -1), ['1', '2', '3']);
  });

  it('a scatter chart dodges its labels: none covers another or a point where points nearly coincide', async () => {
    // a Pareto chart's crowded corner (TReX on fefet-trex, fine-tuned)
    const points = [
      ['baseline', 0.0115, 81.3],
      ['share 3←2', 0.0098, 80],
      ['share pairs', 0.0078, 79.8],
      ['TReX-D-0.4857', 0.0073, 80.8],
      ['prune 0.7 each', 0.0063, 85.5],
      ['TReX-D-0.367', 0.004, 81.8],
      ['TReX-D-0.2483', 0.0019, 59.5],
    ].map(([label, x, y]) => ({ series: 's', label: label as string, x: x as number, y: y as number }));
    const svg = await draw(scatterChart({ title: 't', xTitle: 'EDAP', yTitle: 'acc', logX: true, points }));
    const at = (m: string) =>
      m
        .match(/translate\(([-\d.e]+),([-\d.e]+)\)/)!
        .slice(1)
        .map(Number) as [number, number];
    const dots = [...svg.matchAll(/aria-roledescription="point"[^>]*/g)].map((m) => at(m[0]));
    assert.equal(dots.length, points.length);
    // each label's box as drawn: 10 px text, a conservative 0.55 em a character, centred on its baseline's middle
    const boxes = [...svg.matchAll(/aria-roledescription="text mark"([^>]*)>([^<]*)</g)].map((m) => {
      const [x, y] = at(m[1]!);
      const w = 5.5 * m[2]!.length;
      const x0 = m[1]!.includes('text-anchor="end"') ? x - w : x;
      return { label: m[2]!, box: [x0, y - 5, x0 + w, y + 5] };
    });
    assert.equal(boxes.length, points.length);
    const hit = (a: number[], b: number[]) =>
      a[0]! < b[2]! && b[0]! < a[2]! && a[1]! < b[3]! && b[1]! < a[3]!;
    for (const [i, a] of boxes.entries()) {
      for (const b of boxes.slice(i + 1)) assert.ok(!hit(a.box, b.box), `${a.label} covers ${b.label}`);
      for (const [x, y] of dots)
        assert.ok(!hit(a.box, [x - 4, y - 4, x + 4, y + 4]), `${a.label} covers a point`);
    }
  });
});

describe('figures', () => {
  it('rows of charts under a title; one chart alone is the chart itself', () => {
    const a = scatterChart({ title: 'a', xTitle: 'x', yTitle: 'y', points: [] });
    const b = pieChart({ title: 'b', data: [{ label: 'l', value: 1 }] });
    const f = figure([[a, b], [a]], { title: 'F' }) as {
      title: { text: string };
      vconcat: { hconcat: unknown[] }[];
    };
    assert.equal(f.title.text, 'F');
    assert.deepEqual(
      f.vconcat.map((r) => r.hconcat),
      [[a, b], [a]],
    );
    const alone = figure([[b]]) as { title: string; layer: unknown[]; vconcat?: unknown };
    assert.equal(alone.title, 'b');
    assert.equal(alone.vconcat, undefined);
  });

  it('an SVG document renders to a PNG at `scale`× its size', async () => {
    const svg = await toSvg(figure([[pieChart({ title: 'E', data: [{ label: 'l', value: 1 }] })]]));
    assert.match(svg, /^<svg [^>]*width="(\d+)"/);
    const width = Number(/width="(\d+)"/.exec(svg)![1]);
    const png = toPng(svg, { scale: 2 });
    assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
    assert.equal(new DataView(png.buffer, png.byteOffset).getUint32(16), 2 * width); // IHDR width
  });
});
