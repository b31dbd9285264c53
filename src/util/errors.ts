/**
 * The one error for input xbar cannot take: a config or spec file, a checkpoint, a data file, a
 * flag or a value. It names where the input came from (file or flag), the field, the value and
 * what is allowed; the CLI prints its message alone. Errors of the graph engine (a graph built
 * or fed wrongly by the code that uses it) are GraphErrors instead.
 */

/** What is wrong with one field: a sentence, or the field, the value received and what is allowed. */
export type Problem = string | { field: string; value: unknown; allowed: string };

/** A received value as JSON, non-finite numbers by name (JSON would say null). */
export const shown = (v: unknown): string =>
  typeof v === 'number' && !Number.isFinite(v) ? String(v) : JSON.stringify(v);

const render = (p: Problem): string =>
  typeof p === 'string' ? p : `${p.field}: ${shown(p.value)} is not allowed, ${p.allowed}`;

export class InputError extends Error {
  override readonly name = 'InputError';
  /** The file or flag the input came from ('' when the message names it). */
  readonly where: string;
  readonly problems: readonly Problem[];

  /**
   * `(message)`: a message that names its input; `(where, problem)`: "where: problem" on one
   * line; `(where, problems, heading?)`: the problems listed under "where: heading".
   */
  constructor(message: string);
  constructor(where: string, problem: Problem);
  constructor(where: string, problems: readonly Problem[], heading?: string);
  constructor(where: string, problems?: Problem | readonly Problem[], heading = '') {
    const list = Array.isArray(problems);
    const all: readonly Problem[] =
      problems === undefined ? [where] : list ? problems : [problems as Problem];
    super(
      problems === undefined
        ? where
        : list
          ? `${where}:${heading && ` ${heading}`}\n${all.map((p) => `  ✖ ${render(p)}`).join('\n')}`
          : `${where}: ${render(problems as Problem)}`,
    );
    this.where = problems === undefined ? '' : where;
    this.problems = all;
  }
}
