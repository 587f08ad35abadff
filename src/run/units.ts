/** The cross product a run covers: every sample under every policy and budget. */
import type { Sample } from '../tasks/index.js';
import type { Budget } from './budgets.js';

export interface PolicyPoint<B extends Budget = Budget> {
  policy: string;
  /** Tokens read per KV head per layer per step, or a fraction of the prompt (budgets.ts); null for dense, which reads everything. */
  budget: B | null;
}

export interface Unit {
  key: string;
  sample: Sample;
  point: PolicyPoint;
}

export function policyPoints<B extends Budget>(policies: string[], budgets: B[]): PolicyPoint<B>[] {
  return policies.flatMap<PolicyPoint<B>>((policy) => (policy === 'dense' ? [{ policy, budget: null }] : budgets.map((budget) => ({ policy, budget }))));
}

export function units(samples: Sample[], points: PolicyPoint[]): Unit[] {
  return samples.flatMap((sample) =>
    points.map((point) => ({ key: `${sample.id}|${point.policy}|${point.budget ?? 'all'}`, sample, point })),
  );
}
