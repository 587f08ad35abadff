/** Flag parsers that name the flag in their error, and the flags eval and bench share. */
import path from 'node:path';
import type { Command } from 'commander';
import { projectRoot, type PolicyConfig } from '../config/index.js';
import { QuestError } from '../errors.js';

export function positiveInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\s*\d+\s*$/.test(v) || !Number.isInteger(n) || n <= 0) throw new QuestError(`${flag}: "${v}" is not a positive integer`);
    return n;
  };
}

export function nonNegativeInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\s*\d+\s*$/.test(v)) throw new QuestError(`${flag}: "${v}" is not a non-negative integer`);
    return n;
  };
}

export function intList(flag: string) {
  const one = positiveInt(flag);
  return (v: string): number[] => v.split(',').map((x) => one(x.trim()));
}

export function percentList(flag: string) {
  return (v: string): number[] =>
    v.split(',').map((x) => {
      const n = Number(x.trim());
      if (x.trim() === '' || !Number.isFinite(n) || n < 0 || n > 100) throw new QuestError(`${flag}: "${x}" is not a percentage in [0, 100]`);
      return n;
    });
}

export function nameList(flag: string) {
  return (v: string): string[] => {
    const names = v.split(',').map((x) => x.trim());
    if (names.some((x) => x === '')) throw new QuestError(`${flag}: "${v}" has an empty name`);
    return names;
  };
}

export function oneOf<T extends string>(flag: string, allowed: readonly T[]) {
  return (v: string): T => {
    if (!(allowed as readonly string[]).includes(v)) throw new QuestError(`${flag}: "${v}" is not one of ${allowed.join(', ')}`);
    return v as T;
  };
}

export function fraction(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new QuestError(`${flag}: "${v}" is not a number in [0, 1]`);
    return n;
  };
}

export function atLeast(flag: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min) throw new QuestError(`${flag}: "${v}" is not a number >= ${min}`);
    return n;
  };
}

/** The policy flags of eval and bench-latency. */
export function addPolicyFlags(cmd: Command): Command {
  return cmd
    .option('--policies <names>', 'KV-cache policies, comma-separated: dense, quest, h2o, streaming, tova, snapkv, oracle-topk', nameList('--policies'))
    .option('--budgets <tokens>', 'token budgets (tokens read per KV head per layer per step), comma-separated', intList('--budgets'))
    .option('--page-size <n>', 'KV cache page size (a power of two)', positiveInt('--page-size'))
    .option('--dense-layers <n>', 'layers below this always read everything', nonNegativeInt('--dense-layers'))
    .option('--quest-gqa <mode>', "Quest under GQA: group (one page set per KV head) or per-query-head (the paper's rule)", oneOf('--quest-gqa', ['group', 'per-query-head'] as const))
    .option('--h2o-heavy-fraction <f>', 'H2O: share of the budget kept by accumulated attention (the rest is recent)', fraction('--h2o-heavy-fraction'))
    .option('--streaming-sinks <n>', 'StreamingLLM: attention sink tokens', nonNegativeInt('--streaming-sinks'))
    .option('--snapkv-window <n>', 'SnapKV: observation window (last prompt tokens)', positiveInt('--snapkv-window'))
    .option('--snapkv-kernel <n>', 'SnapKV: max-pooling kernel', positiveInt('--snapkv-kernel'))
    .option('--kv-dtype <type>', "KV cache element type: auto (fp32 on the CPU, fp16 on the GPU), fp32, fp16 or bf16 (the CPU rounds what it stores)", oneOf('--kv-dtype', ['auto', 'fp32', 'fp16', 'bf16'] as const));
}

export function policyFlags(o: Record<string, unknown>): Partial<PolicyConfig> {
  const keys = ['policies', 'budgets', 'pageSize', 'denseLayers', 'questGqa', 'h2oHeavyFraction', 'streamingSinks', 'snapkvWindow', 'snapkvKernel', 'kvDtype'] as const;
  return Object.fromEntries(keys.map((k) => [k, o[k]])) as Partial<PolicyConfig>;
}

/** --shard i/n: the i-th of n slices, 1 <= i <= n. */
export function shardSpec(flag: string) {
  return (v: string): { index: number; count: number } => {
    const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(v);
    const index = m ? Number(m[1]) : NaN;
    const count = m ? Number(m[2]) : NaN;
    if (!m || count < 1 || index < 1 || index > count) throw new QuestError(`${flag}: "${v}" is not i/n with 1 <= i <= n (for example 2/8)`);
    return { index, count };
  };
}

export function deviceList(flag: string) {
  return (v: string): number[] =>
    v.split(',').map((x) => {
      if (!/^\s*\d+\s*$/.test(x)) throw new QuestError(`${flag}: "${x}" is not a GPU index`);
      return Number(x);
    });
}

/**
 * Adds each setting's default to its flag's help, from the config's defaults (commander's own
 * defaults would count as given and override a --config file).
 */
export function showDefaults(cmd: Command, defaults: object): Command {
  const shown = (v: unknown): string | null => {
    if (v === undefined || v === null || v === false || (Array.isArray(v) && v.length === 0)) return null;
    if (Array.isArray(v)) return v.join(',');
    if (typeof v === 'string' && path.isAbsolute(v)) return path.relative(projectRoot, v);
    return String(v);
  };
  for (const opt of cmd.options) {
    const v = shown((defaults as Record<string, unknown>)[opt.attributeName()]);
    if (v !== null) opt.description += ` (default: ${v})`;
  }
  return cmd;
}
