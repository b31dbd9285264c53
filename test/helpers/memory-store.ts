/** A SweepStore in memory, which counts what it was asked: for tests of the parts around a store. */
import type { PointResult, Provenance, SweepDefinition, SweepStore } from '../../src/sweep/types.js';

export class MemoryStore implements SweepStore {
  sweep: SweepDefinition | undefined;
  readonly results = new Map<string, PointResult>();
  readonly failures: { id: string; message: string; provenance: Provenance }[] = [];
  /** put() calls per id (a point delivered twice is asked twice and stored once). */
  readonly puts = new Map<string, number>();
  closed = false;

  async begin(sweep: SweepDefinition): Promise<void> {
    if (this.sweep && this.sweep.name !== sweep.name)
      throw new Error(`store holds sweep ${this.sweep.name}, not ${sweep.name}`);
    this.sweep = sweep;
  }
  async doneIds(): Promise<Set<string>> {
    return new Set(this.results.keys());
  }
  async put(result: PointResult): Promise<boolean> {
    this.puts.set(result.id, (this.puts.get(result.id) ?? 0) + 1);
    if (this.results.has(result.id)) return false;
    this.results.set(result.id, structuredClone(result));
    return true;
  }
  async fail(id: string, message: string, provenance: Provenance): Promise<void> {
    this.failures.push({ id, message, provenance });
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}
