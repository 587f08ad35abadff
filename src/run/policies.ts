/**
 * The policies and their settings as the engine declares them (describePolicies), and the
 * checks made on them before any work starts, so that a typo costs nothing.
 */
import type { PolicyConfig } from '../config/index.js';
import { flagOf, native } from '../engine/index.js';
import type { NativePolicyCatalog, NativeSequenceOptions, NativeSetting } from '../engine/native.js';
import { QuestError } from '../errors.js';
import { budgetFraction } from './budgets.js';
import type { PolicyPoint } from './units.js';

let catalog: NativePolicyCatalog | undefined;

/** What cuda/src/policy registers, asked once. */
export function policyCatalog(): NativePolicyCatalog {
  return (catalog ??= native().describePolicies());
}

export function policyNames(): string[] {
  return policyCatalog().policies.map((p) => p.name);
}

/** Every setting a sequence takes, in the order run identities store them. */
export function policySettings(): NativeSetting[] {
  return policyCatalog().settings;
}

export function settingDefaults(): Record<string, number | string> {
  return Object.fromEntries(policySettings().map((s) => [s.key, s.default]));
}

/** A setting's config schema (ajv). */
export function settingSchema(s: NativeSetting): object {
  if (s.type === 'choice') return { enum: s.choices };
  const range = { minimum: s.min, ...(s.max === null || s.max === undefined ? {} : { maximum: s.max }) };
  return { type: s.type === 'int' ? 'integer' : 'number', ...range };
}

export function checkPolicies(c: PolicyConfig): void {
  const known = policyNames();
  for (const p of c.policies) if (!known.includes(p)) throw new QuestError(`--policies: unknown policy "${p}" (known: ${known.join(', ')})`);
  if (!Number.isInteger(c.pageSize) || c.pageSize <= 0 || (c.pageSize & (c.pageSize - 1)) !== 0)
    throw new QuestError(`--page-size: ${c.pageSize} is not a power of two`);
  // A fraction of the context is checked once resolved, per sample (checkBudget).
  for (const b of c.budgets) if (budgetFraction(b) === null) checkBudget(c, b as number, `--budgets: ${b}`);
}

/** A token budget the sparse policies of `c` can serve; `what` names it in the error (the flag's value, or a resolved fraction). */
export function checkBudget(c: PolicyConfig, b: number, what: string): void {
  if (c.policies.every((p) => p === 'dense')) return;
  const reserving = policySettings().filter((s) => s.budgetExceeds && s.policy !== null && c.policies.includes(s.policy));
  if (!Number.isInteger(b) || b <= 0) throw new QuestError(`${what} is not a positive integer`);
  if (b < c.pageSize) throw new QuestError(`${what} is smaller than a page (--page-size ${c.pageSize})`);
  for (const s of reserving)
    if (b <= (c[s.key] as number)) throw new QuestError(`${what} does not exceed ${s.policy}'s ${flagOf(s)} (${c[s.key] as number})`);
}

/** A sequence's options at a point whose budget is in tokens (a fraction already resolved). */
export function sequenceOptions(c: PolicyConfig, point: PolicyPoint<number>): NativeSequenceOptions {
  const settings = Object.fromEntries(policySettings().map((s) => [s.key, c[s.key]]));
  return { policy: point.policy, budget: point.budget ?? 0, ...settings } as NativeSequenceOptions;
}
