/** Flag parsers that name the flag in their error, and the flags eval and bench share. */
import path from 'node:path';
import type { Command } from 'commander';
import { projectRoot, type BenchConfig, type PolicyConfig } from '../config/index.js';
import { flagOf } from '../engine/index.js';
import type { NativeSetting } from '../engine/native.js';
import { QuestError } from '../errors.js';
import { PRESETS } from '../model/presets.js';
import { parseBudget, type Budget } from '../run/budgets.js';
import type { DataSources } from '../run/tasks.js';
import { policyNames, policySettings } from '../run/policies.js';

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

/** A probability in (0, 1]: top-p's mass. */
export function probability(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 1) throw new QuestError(`${flag}: "${v}" is not a number in (0, 1]`);
    return n;
  };
}

/** A stop string, written with JSON's escapes (\n, \t, \u2029, \\); repeatable. */
export function stopString(flag: string) {
  return (v: string, prev: string[] = []): string[] => {
    let s: unknown;
    try {
      s = JSON.parse(`"${v.replaceAll('"', '\\"')}"`);
    } catch {
      throw new QuestError(`${flag}: "${v}" is not a string with valid escapes (JSON's: \\n, \\t, \\uXXXX, \\\\)`);
    }
    if (s === '') throw new QuestError(`${flag}: empty; a stop string needs at least one character`);
    return [...prev, s as string];
  };
}

/** --data-fields problem=<field>,answer=<field>: the names a --data-file's rows use. */
export function fieldMap(flag: string) {
  return (v: string): { problem: string; answer: string } => {
    const pairs = v.split(',').map((x) => x.split('=').map((y) => y.trim()));
    const map = Object.fromEntries(pairs.filter((p) => p.length === 2 && p[1] !== ''));
    const bad = pairs.length !== 2 || Object.keys(map).length !== 2 || !('problem' in map) || !('answer' in map);
    if (bad) throw new QuestError(`${flag}: "${v}" is not problem=<field>,answer=<field>`);
    return map as { problem: string; answer: string };
  };
}

export function atLeast(flag: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min) throw new QuestError(`${flag}: "${v}" is not a number >= ${min}`);
    return n;
  };
}

/** A setting's flag parser, from its declared type and range. */
function settingParser(s: NativeSetting): (v: string) => number | string {
  const flag = flagOf(s);
  if (s.type === 'choice') return oneOf(flag, s.choices ?? []);
  if (s.type === 'int') return s.min !== undefined && s.min >= 1 ? positiveInt(flag) : nonNegativeInt(flag);
  return s.min === 0 && s.max === 1 ? fraction(flag) : atLeast(flag, s.min ?? -Infinity);
}

export function budgetList(flag: string) {
  return (v: string): Budget[] => v.split(',').map((x) => parseBudget(flag, x));
}

/** The policy flags of eval and bench-latency: --policies, --budgets and one a declared setting; `fractions`: budgets may be fractions of the context (eval). */
export function addPolicyFlags(cmd: Command, fractions = false): Command {
  const help = 'token budgets (tokens read per KV head per layer per step), comma-separated';
  cmd
    .option('--policies <names>', `KV-cache policies, comma-separated: ${policyNames().join(', ')}`, nameList('--policies'))
    .option(
      '--budgets <tokens>',
      fractions ? `${help}; 0.05c is 5% of each sample's prompt tokens, rounded down` : help,
      fractions ? budgetList('--budgets') : intList('--budgets'),
    );
  for (const s of policySettings()) cmd.option(`${flagOf(s)} <${s.arg || (s.type === 'int' ? 'n' : 'f')}>`, s.help, settingParser(s));
  return cmd;
}

export function policyFlags(o: Record<string, unknown>): Partial<PolicyConfig> {
  const keys = ['policies', 'budgets', ...policySettings().map((s) => s.key)];
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

/** The flags bench-latency and bench-eval share: the model or preset, lengths, tokens generated, repeats, seed, output, config and device. */
export function addBenchFlags(cmd: Command, help: { decodeSteps: string; outputPath: string }): Command {
  return cmd
    .option('--model <dir|preset>', `model folder, or a preset: ${Object.keys(PRESETS).join(', ')}`)
    .option('--lengths <tokens>', 'context lengths, comma-separated', intList('--lengths'))
    .option('--decode-steps <n>', help.decodeSteps, positiveInt('--decode-steps'))
    .option('--repeats <n>', 'repeats; the median is reported', positiveInt('--repeats'))
    .option('--seed <n>', 'seed of the random tokens and weights', nonNegativeInt('--seed'))
    .option('--output-path <dir>', help.outputPath)
    .option('--config <file>', 'YAML file of settings; flags override it')
    .option('--device <name>', 'auto, cpu or cuda', oneOf('--device', ['auto', 'cpu', 'cuda'] as const));
}

/** What addBenchFlags' and addPolicyFlags' flags say, as benchConfig takes them (its --budgets parser takes token counts only). */
export function benchFlagValues(o: Record<string, unknown>): Partial<BenchConfig> {
  const { model, lengths, decodeSteps, repeats, seed, outputPath, device } = o as Partial<BenchConfig>;
  return { model, lengths, decodeSteps, repeats, seed, outputPath, device, ...(policyFlags(o) as Partial<BenchConfig>) };
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

/** The data-file flags that eval and tasks generate share, as the tasks read them (qaFiles from the repeated --qa-file). */
export function dataSources(o: Record<string, any>): DataSources {
  return {
    haystackFile: o.haystackFile,
    qaFiles: o.qaFile,
    longbenchDir: o.longbenchDir,
    longbenchE: o.longbenchE,
    longbenchV2File: o.longbenchV2File,
    longbenchFit: o.longbenchFit,
    infinitebenchDir: o.infinitebenchDir,
    mathFile: o.mathFile,
    aimeFile: o.aimeFile,
    dataFile: o.dataFile,
    dataFields: o.dataFields,
  };
}
