/** `xbar report STORE`: a sweep's tables and charts from its store, or the answer to an SQL query on it. */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { openStore } from '../sweep/duckdb.js';
import { statusFile } from '../sweep/progress.js';
import { markdownReport, pointsTable, queryTable, renderCsv, writeReport } from '../sweep/report.js';
import { chooseX, readSweep } from '../sweep/report-data.js';
import { InputError } from '../util/errors.js';
import { flag, opt, withOptions } from './flags.js';

interface ReportFlags {
  format: 'md' | 'csv';
  out?: string;
  x?: string;
  sql?: string;
}

export function registerReport(program: Command): void {
  withOptions(
    program
      .command('report')
      .argument('<store>', 'the store a sweep wrote (xbar sweep FILE.yaml --store STORE)')
      .description(
        "a sweep's results: a table of its points and one over seeds (Markdown or CSV), charts of the metric against a setting and of its Pareto front against EDAP, or the answer to an SQL query",
      ),
    opt('--format <format>', 'how tables print: md (Markdown) or csv', ['md', 'csv'], 'md'),
    flag('out', {
      help: 'also write report.md, points.csv, seeds.csv and the charts (.vl.json, .svg, .png) there',
    }),
    opt(
      '--x <field>',
      'the setting the metric is plotted against (default: the setting of numbers or times with the most values)',
    ),
    opt(
      '--sql <query>',
      'print the answer to one read-only SQL query on the store (tables meta, points, results, failures) instead',
    ),
  ).action(async (store: string, o: ReportFlags) => {
    if (o.sql !== undefined) {
      const clash = (['out', 'x'] as const).find((k) => o[k] !== undefined);
      if (clash) throw new InputError(`--sql: prints the query's answer alone; leave out --${clash}`);
    }
    const reader = await openStore(store, store).catch((e: unknown) => {
      // DuckDB lets no other process open a file while one writes it
      if (/could not set lock/i.test((e as Error).message))
        throw new InputError(
          store,
          `another process is writing it${existsSync(`${store}.lock`) ? ` (${store}.lock names it)` : ''}, and DuckDB lets no other open it meanwhile; follow a sweep through ${statusFile(store)} and report when it ends`,
        );
      throw e;
    });
    try {
      if (o.sql !== undefined) {
        process.stdout.write(queryTable(await reader.query(o.sql), o.format));
        return;
      }
      const data = await readSweep(reader);
      // a wrong --x is an error with or without charts to draw
      if (data.rows.length) chooseX(data.rows, o.x);
      const files = o.out ? await writeReport(data, o.out, o.x === undefined ? {} : { x: o.x }) : [];
      process.stdout.write(
        o.format === 'csv'
          ? data.rows.length
            ? renderCsv(pointsTable(data.rows))
            : ''
          : markdownReport(data),
      );
      if (files.length) console.error(`wrote ${files.join(', ')}`);
    } finally {
      await reader.close();
    }
  });
}
