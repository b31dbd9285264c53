/** Plain-text tables for terminal output: columns padded to their widest cell; with a header, numbers right-aligned. */
export function table(rows: readonly (readonly string[])[], header?: readonly string[]): string {
  const all = header ? [header, ...rows] : rows;
  const widths = all[0]?.map((_, j) => Math.max(...all.map((r) => (r[j] ?? '').length))) ?? [];
  const numeric = (s: string) => /^[-+]?[\d.,]+(e[-+]?\d+)?( ?±.*)?%?$/.test(s);
  const line = (r: readonly string[]) =>
    r
      .map((c, j) => (header && numeric(c) ? c.padStart(widths[j]!) : c.padEnd(widths[j]!)))
      .join('  ')
      .trimEnd();
  const out = all.map(line);
  if (header) out.splice(1, 0, widths.map((w) => '─'.repeat(w)).join('  '));
  return out.join('\n');
}

/**
 * A Markdown (GitHub) table; columns whose cells all read as numbers are right-aligned. Pipes and
 * line breaks in cells are escaped so that a cell stays one cell.
 */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
  const numeric = (s: string) => /^[-+−]?[\d.,]+(e[-+]?\d+)?( \[.*\])?$/.test(s) || s === '—';
  const align = header.map((_, j) =>
    rows.length && rows.every((r) => numeric(r[j] ?? '')) && rows.some((r) => r[j] !== '—') ? '---:' : '---',
  );
  const line = (r: readonly string[]) => `| ${r.join(' | ')} |`;
  return [
    line(header.map(cell)),
    line(align),
    ...rows.map((r) => line(header.map((_, j) => cell(r[j] ?? '')))),
  ].join('\n');
}

/** CSV (RFC 4180): fields with a comma, quote or line break quoted, quotes doubled; one line per row. */
export function csvTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const field = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  return `${[header, ...rows].map((r) => r.map(field).join(',')).join('\n')}\n`;
}
