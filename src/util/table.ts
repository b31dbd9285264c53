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
