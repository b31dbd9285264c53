/** Chart specs checked as Vega-Lite compiles them. */
import assert from 'node:assert/strict';
import { parse } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** Compiles with Vega-Lite, failing on any warning, and parses the Vega spec it gives. */
export function compileStrict(spec: TopLevelSpec): ReturnType<typeof compile>['spec'] {
  const warnings: string[] = [];
  const logger = {
    level: () => logger,
    error: (...m: unknown[]): never => {
      throw new Error(m.join(' '));
    },
    warn: (...m: unknown[]) => {
      warnings.push(m.join(' '));
      return logger;
    },
    info: () => logger,
    debug: () => logger,
  };
  const vg = compile(spec, { logger }).spec;
  assert.deepEqual(warnings, []);
  parse(vg);
  return vg;
}
