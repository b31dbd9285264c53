/** Learning-rate schedules: linear warm-up, then cosine or linear decay to `final`·lr, or constant. */
export type ScheduleKind = 'cosine' | 'linear' | 'constant';

export interface Schedule {
  kind: ScheduleKind;
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  /** Fraction of lr reached at the end (default 0). */
  final?: number;
}

/** The learning rate at 0-based `step`. */
export function learningRate(s: Schedule, step: number): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  if (s.kind === 'constant') return s.lr;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const p = Math.min(1, (step - s.warmupSteps) / span);
  const end = s.lr * (s.final ?? 0);
  const shape = s.kind === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * p)) : 1 - p;
  return end + (s.lr - end) * shape;
}
