/** A Vega-Lite figure as SVG, with no file access: the CLI writes it, the browser app shows it. */
import type { TopLevelSpec } from 'vega-lite';

/** The SVG document of a Vega-Lite spec. */
export async function toSvg(spec: TopLevelSpec): Promise<string> {
  // loaded on first use: Vega and Vega-Lite would add a fifth of a second to every command's start
  const [{ parse, View }, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return `${await view.toSVG()}\n`;
  } finally {
    view.finalize();
  }
}
