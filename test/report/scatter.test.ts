/** The scatter chart: one circle per finite point plus one per series in the legend; renders to PNG. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { scatterChart } from '../../src/report/scatter.js';
import { svgDocument, toPng } from '../../src/report/svg.js';

describe('scatterChart', () => {
  it('draws every finite point (log x drops x ≤ 0) and renders', () => {
    const chart = scatterChart({
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
      logX: true,
      points: [
        { series: 'a', label: 'p1', x: 0.01, y: 80 },
        { series: 'a', label: 'p2', x: 0.004, y: 78 },
        { series: 'b', label: 'p3', x: 0.006, y: 70 },
        { series: 'b', label: 'bad', x: 0, y: 70 },
        { series: 'b', label: 'nan', x: 0.5, y: Number.NaN },
      ],
    });
    assert.equal(chart.body.match(/<circle/g)!.length, 3 + 2);
    assert.ok(!chart.body.includes('>bad<'));
    const png = toPng(svgDocument([[chart]]));
    assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
  });
});
