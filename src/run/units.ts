/** The cross product a run covers: every sample under every policy and budget. */
import type { Sample } from '../tasks/index.js';

export interface PolicyPoint {
  policy: string;
  /** Tokens read per KV head per layer per step; null for dense, which reads everything. */
  budget: number | null;
}

export interface Unit {
  key: string;
  sample: Sample;
  point: PolicyPoint;
}

export function policyPoints(policies: string[], budgets: number[]): PolicyPoint[] {
  return policies.flatMap<PolicyPoint>((policy) => (policy === 'dense' ? [{ policy, budget: null }] : budgets.map((budget) => ({ policy, budget }))));
}

export function units(samples: Sample[], points: PolicyPoint[]): Unit[] {
  return samples.flatMap((sample) =>
    points.map((point) => ({ key: `${sample.id}|${point.policy}|${point.budget ?? 'all'}`, sample, point })),
  );
}
