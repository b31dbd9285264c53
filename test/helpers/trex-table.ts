/**
 * TReX Table IV (DeiT-S, 64×64 FeFET) as printed (docs/methods.md §2), and the figures derived
 * from it. Energies the table rounds (0.13, 0.11 mJ) are EDAP/(D·A) of their rows.
 */
import assert from 'node:assert/strict';

const row = (edap: number, delayMs: number, areaMm2: number) => ({
  edap,
  delayMs,
  areaMm2,
  energyMJ: edap / (delayMs * areaMm2),
});

const baseline = row(1115.23, 10.92, 775.2);
const d7 = row(484.15, 6.82, 651.7); // N_reuse 5

export const TABLE_IV = {
  baseline,
  d7,
  /** Rows printed with EDAP only (N_reuse 3, 7, 9 follow from the 0.82 ms and 24.7 mm² per block). */
  d9: { edap: 700.2 },
  d6: { edap: 311.43 },
  d4: { edap: 177.6 },
  /** Per removed attention block: energy from the two full rows, area as the text states it. */
  energySavedPerReuseMJ: (baseline.energyMJ - d7.energyMJ) / 5,
  delaySavedPerReuseMs: (baseline.delayMs - d7.delayMs) / 5,
  areaSavedPerReuseMm2: 24.7,
};

/** |ours/paper − 1| ≤ tol, with both numbers in the message. */
export function within(ours: number, paper: number, tol: number, what: string): void {
  const rel = ours / paper - 1;
  assert.ok(
    Math.abs(rel) <= tol,
    `${what}: ours ${ours.toPrecision(5)}, paper ${paper.toPrecision(5)} (${(100 * rel).toFixed(1)}%)`,
  );
}
