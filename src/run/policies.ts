/** Policy names and budgets, checked before any work starts so a typo costs nothing. */
import { QuestError } from '../errors.js';

/** The policies the engine implements (cuda/src/policy). */
export const POLICIES = ['dense'] as const;

export function checkPolicies(policies: string[], budgets: number[], pageSize: number): void {
  for (const p of policies)
    if (!(POLICIES as readonly string[]).includes(p)) throw new QuestError(`--policies: unknown policy "${p}" (known: ${POLICIES.join(', ')})`);
  if (!Number.isInteger(pageSize) || pageSize <= 0 || (pageSize & (pageSize - 1)) !== 0)
    throw new QuestError(`--page-size: ${pageSize} is not a power of two`);
  for (const b of budgets) if (!Number.isInteger(b) || b <= 0) throw new QuestError(`--budgets: ${b} is not a positive integer`);
}
