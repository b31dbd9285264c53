/** Vega-Lite figures written as files: SVG through Vega (svg.ts, headless: no browser, no canvas), PNG from the SVG with resvg. */
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import type { TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../util/files.js';
import { toSvg } from './svg.js';

export { toSvg };

/** PNG bytes of an SVG, rendered with the system fonts at `scale`× its size. */
export function toPng(svg: string, o: { scale?: number } = {}): Uint8Array {
  const r = new Resvg(svg, {
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
    fitTo: { mode: 'zoom', value: o.scale ?? 2 },
    background: '#ffffff',
  });
  return r.render().asPng();
}

/**
 * Writes a chart into `dir` as its Vega-Lite spec `name.vl.json` (to open in the Vega editor),
 * `name.svg` and `name.png`, each atomically; → the files' names.
 */
export async function writeFigure(dir: string, name: string, spec: TopLevelSpec): Promise<string[]> {
  const svg = await toSvg(spec);
  const files = { [`${name}.vl.json`]: `${JSON.stringify(spec, null, 1)}\n`, [`${name}.svg`]: svg };
  for (const [file, data] of Object.entries(files)) writeFileAtomic(join(dir, file), data);
  writeFileAtomic(join(dir, `${name}.png`), toPng(svg));
  return [...Object.keys(files), `${name}.png`];
}
