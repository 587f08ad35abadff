/** Policy names and settings, checked before any work starts so a typo costs nothing. */
import type { PolicyConfig } from '../config/index.js';
import type { NativeSequenceOptions, PolicyName } from '../engine/native.js';
import { QuestError } from '../errors.js';
import type { PolicyPoint } from './units.js';

/** The policies the engine implements (cuda/src/policy). */
export const POLICIES: readonly PolicyName[] = ['dense', 'quest', 'h2o', 'streaming', 'tova', 'snapkv', 'oracle-topk'];

export function checkPolicies(c: PolicyConfig): void {
  for (const p of c.policies)
    if (!(POLICIES as readonly string[]).includes(p)) throw new QuestError(`--policies: unknown policy "${p}" (known: ${POLICIES.join(', ')})`);
  if (!Number.isInteger(c.pageSize) || c.pageSize <= 0 || (c.pageSize & (c.pageSize - 1)) !== 0)
    throw new QuestError(`--page-size: ${c.pageSize} is not a power of two`);
  if (c.policies.every((p) => p === 'dense')) return;
  for (const b of c.budgets) {
    if (!Number.isInteger(b) || b <= 0) throw new QuestError(`--budgets: ${b} is not a positive integer`);
    if (b < c.pageSize) throw new QuestError(`--budgets: ${b} is smaller than a page (--page-size ${c.pageSize})`);
    if (c.policies.includes('streaming') && b <= c.streamingSinks)
      throw new QuestError(`--budgets: ${b} leaves no recent tokens after the ${c.streamingSinks} sinks (--streaming-sinks)`);
    if (c.policies.includes('snapkv') && b <= c.snapkvWindow)
      throw new QuestError(`--budgets: ${b} does not exceed SnapKV's ${c.snapkvWindow}-token window (--snapkv-window)`);
  }
}

export function sequenceOptions(c: PolicyConfig, point: PolicyPoint): NativeSequenceOptions {
  return {
    policy: point.policy,
    budget: point.budget ?? 0,
    pageSize: c.pageSize,
    denseLayers: c.denseLayers,
    questGqa: c.questGqa,
    h2oHeavyFraction: c.h2oHeavyFraction,
    streamingSinks: c.streamingSinks,
    snapkvWindow: c.snapkvWindow,
    snapkvKernel: c.snapkvKernel,
    kvDtype: c.kvDtype,
  };
}
