/** Run configuration: defaults < a --config YAML file < command-line flags, validated once. */
import { accessSync, constants, existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import YAML from 'yaml';
import { QuestError, errorMessage } from '../errors.js';
import { CODE_SIM_BACKENDS, CODE_SIM_DEFAULT, fuzzRatio, type CodeSimBackend } from '../metrics/fuzz.js';
import { PRESETS } from '../model/presets.js';
import { parseBudget, type Budget } from '../run/budgets.js';
import { policySettings, settingDefaults, settingSchema } from '../run/policies.js';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The policy settings eval and bench-latency share. */
export interface PolicyConfig {
  policies: string[];
  /** Tokens, or (eval) a fraction of each sample's prompt such as "0.05c". */
  budgets: Budget[];
  pageSize: number;
  denseLayers: number;
  /** The KV cache's element type: auto is each backend's own (fp32 on the CPU, fp16 on the GPU); the GPU caches fp16 or bf16, and the CPU rounds what it stores to them. */
  kvDtype: KvDtype;
  /** Each policy's own settings (questGqa, streamingSinks, ...): the engine declares them (src/run/policies.ts). */
  [setting: string]: unknown;
}

export type KvDtype = 'auto' | 'fp32' | 'fp16' | 'bf16';

export interface EvalConfig extends PolicyConfig {
  /** A model folder, or an architecture preset name. */
  model: string;
  tasks: string[];
  /** At most this many samples per task. */
  limit: number | null;
  seed: number;
  outputPath: string | null;
  /** Prompt lengths in tokens. */
  lengths: number[];
  /** Needle depths in percent (passkey); 0 draws a random depth, as Quest does. */
  depths: number[];
  /** Samples per task per length. */
  samples: number;
  haystackFile: string | null;
  qaFiles: string[];
  longbenchDir: string | null;
  longbenchE: boolean;
  longbenchV2File: string | null;
  /** LongBench prompts truncated so that chat template and generation fit the length (off: the originals' truncation). */
  longbenchFit: boolean;
  /** LongBench's code_sim: fuzz.ratio on difflib, as LongBench installs it, or on python-Levenshtein. */
  codeSim: CodeSimBackend;
  /** Perplexity: the text (the shipped held-out text by default) and the dense prefix. */
  textFile: string | null;
  pplPrefix: number;
  /** decode: the question is fed token by token under the policy (Quest's protocol). */
  questionMode: 'decode' | 'prefill';
  /** In decode mode, feed only the question's last N tokens (the rest is prefilled); null: all. */
  questionTokens: number | null;
  device: 'auto' | 'cpu' | 'cuda';
  /**
   * shared: a sample is prefilled once for all its cells (policy x budget), which then decode
   * as one batch; single: each cell prefills and decodes alone. The records are the same
   * either way, timings aside.
   */
  cells: 'shared' | 'single';
  /** This process runs every count-th unit from the index-th (1-based): a cluster array task. */
  shard: { index: number; count: number } | null;
  /** Worker processes, on the backend `device` picks (--devices puts one on each GPU). */
  workers: number;
  /** GPUs, one worker process each. */
  devices: number[];
  /** A folder of InfiniteBench's <task>.jsonl files. */
  infinitebenchDir: string | null;
  /** Long-generation tasks' files (JSON Lines), and --data-file's field names. */
  mathFile: string | null;
  aimeFile: string | null;
  dataFile: string | null;
  dataFields: { problem: string; answer: string } | null;
  /** Long-generation tasks: tokens generated at most (null: the task's own, 32768), sampling, draws per problem and stop strings. */
  maxNewTokens: number | null;
  temperature: number;
  topP: number;
  topK: number;
  numSamples: number;
  stop: string[];
  /** Attention diagnostics at every decode step (CPU backend; a dense pass per step, kept out of the timings). */
  diagnostics: boolean;
}

export interface BenchConfig extends PolicyConfig {
  budgets: number[];
  model: string;
  lengths: number[];
  decodeSteps: number;
  /** Sequences decoded together at each step (each its own copy of the context), one row per size. */
  batch: number[];
  repeats: number;
  seed: number;
  outputPath: string | null;
  device: 'auto' | 'cpu' | 'cuda';
  /** Worker processes, on the backend `device` picks (sharing it: their timings are not one process's). */
  workers: number;
  /** GPUs, one worker process each, the (length, policy) points dealt out among them. */
  devices: number[];
}

const posInt = { type: 'integer', minimum: 1 };
const posInts = { type: 'array', items: posInt, minItems: 1 };
const common = () => ({
  model: { type: 'string', minLength: 1 },
  seed: { type: 'integer', minimum: 0 },
  outputPath: { type: ['string', 'null'] },
  lengths: posInts,
  policies: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
  budgets: posInts,
  ...Object.fromEntries(policySettings().map((s) => [s.key, settingSchema(s)])),
  device: { enum: ['auto', 'cpu', 'cuda'] },
});

type Kind = 'eval' | 'bench';

/** The config schemas, made on first use: the policy settings come from the native engine. */
const schemas = () => ({
  eval: {
    type: 'object',
    additionalProperties: false,
    properties: {
      ...common(),
      budgets: { type: 'array', items: { anyOf: [posInt, { type: 'string', pattern: '^\\s*\\d*\\.?\\d+c\\s*$' }] }, minItems: 1 },
      tasks: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
      limit: { anyOf: [posInt, { type: 'null' }] },
      depths: { type: 'array', items: { type: 'number', minimum: 0, maximum: 100 }, minItems: 1 },
      samples: posInt,
      haystackFile: { type: ['string', 'null'] },
      qaFiles: { type: 'array', items: { type: 'string' } },
      longbenchDir: { type: ['string', 'null'] },
      longbenchE: { type: 'boolean' },
      longbenchV2File: { type: ['string', 'null'] },
      longbenchFit: { type: 'boolean' },
      codeSim: { enum: CODE_SIM_BACKENDS },
      textFile: { type: ['string', 'null'] },
      pplPrefix: posInt,
      questionMode: { enum: ['decode', 'prefill'] },
      questionTokens: { anyOf: [posInt, { type: 'null' }] },
      cells: { enum: ['shared', 'single'] },
      shard: {
        anyOf: [
          { type: 'null' },
          { type: 'object', additionalProperties: false, required: ['index', 'count'], properties: { index: posInt, count: posInt } },
        ],
      },
      workers: posInt,
      devices: { type: 'array', items: { type: 'integer', minimum: 0 } },
      infinitebenchDir: { type: ['string', 'null'] },
      mathFile: { type: ['string', 'null'] },
      aimeFile: { type: ['string', 'null'] },
      dataFile: { type: ['string', 'null'] },
      dataFields: {
        anyOf: [
          { type: 'null' },
          { type: 'object', additionalProperties: false, required: ['problem', 'answer'], properties: { problem: { type: 'string', minLength: 1 }, answer: { type: 'string', minLength: 1 } } },
        ],
      },
      maxNewTokens: { anyOf: [posInt, { type: 'null' }] },
      temperature: { type: 'number', minimum: 0 },
      topP: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
      topK: { type: 'integer', minimum: 0 },
      numSamples: posInt,
      stop: { type: 'array', items: { type: 'string', minLength: 1 } },
      diagnostics: { type: 'boolean' },
    },
  },
  bench: {
    type: 'object',
    additionalProperties: false,
    properties: { ...common(), decodeSteps: posInt, batch: posInts, repeats: posInt, workers: posInt, devices: { type: 'array', items: { type: 'integer', minimum: 0 } } },
  },
});

/** Each setting's default as the engine declares it (cuda/src/policy), after the policies and budgets. */
const DEFAULT_BUDGETS = [256];
const policyDefaults = (): PolicyConfig => ({ policies: ['dense'], budgets: DEFAULT_BUDGETS, ...settingDefaults() }) as PolicyConfig;

export const evalDefaults = (): EvalConfig => ({
  ...policyDefaults(),
  model: path.join(projectRoot, 'models', 'quest-tiny'),
  tasks: ['passkey'],
  limit: null,
  seed: 0,
  outputPath: null,
  lengths: [1024, 2048],
  depths: [0, 25, 50, 75, 100],
  samples: 5,
  haystackFile: null,
  qaFiles: [],
  longbenchDir: null,
  longbenchE: false,
  longbenchV2File: null,
  longbenchFit: false,
  codeSim: CODE_SIM_DEFAULT,
  textFile: null,
  pplPrefix: 64,
  questionMode: 'decode',
  questionTokens: null,
  cells: 'shared',
  shard: null,
  workers: 1,
  devices: [],
  device: 'auto',
  infinitebenchDir: null,
  mathFile: null,
  aimeFile: null,
  dataFile: null,
  dataFields: null,
  maxNewTokens: null,
  temperature: 0,
  topP: 1,
  topK: 0,
  numSamples: 1,
  stop: [],
  diagnostics: false,
});

export const benchDefaults = (): BenchConfig => ({
  ...policyDefaults(),
  budgets: DEFAULT_BUDGETS,
  model: 'tiny',
  lengths: [1024, 4096],
  decodeSteps: 16,
  batch: [1],
  repeats: 3,
  seed: 0,
  outputPath: null,
  device: 'auto',
  workers: 1,
  devices: [],
});

/** An error of the schema, naming the key as the user spelled it (`spelled`: setting -> key). */
function describe(e: ErrorObject, spelled: Record<string, string>): string {
  const [first, ...rest] = e.instancePath.slice(1).split('/');
  const where = e.instancePath ? [spelled[first] ?? first, ...rest].join('.') : '';
  if (e.keyword === 'additionalProperties') return `unknown key "${(e.params as { additionalProperty: string }).additionalProperty}"`;
  return `${where || 'config'} ${e.message ?? 'is invalid'}`;
}

function validate<T>(kind: Kind, value: unknown, source: string, spelled: Record<string, string> = {}): T {
  const ajv = new Ajv({ allErrors: false });
  const check = ajv.compile(schemas()[kind]);
  if (!check(value)) throw new QuestError(`${source}: ${describe(check.errors![0], spelled)}`);
  return value as T;
}

/** Settings that name files or folders: in a config file they are taken from the file's own folder. */
const PATH_KEYS = ['haystackFile', 'longbenchDir', 'longbenchV2File', 'textFile', 'qaFiles', 'mathFile', 'aimeFile', 'dataFile', 'infinitebenchDir'];

type Properties = Record<string, { type?: string | readonly string[]; items?: { type?: string; anyOf?: { type?: string }[] } }>;

/**
 * The setting a config file's key names: its camelCase name, or the flag's spelling
 * (page-size), or the singular flag of a list (qa-file, length); null when none.
 */
function settingOf(key: string, props: Properties): string | null {
  const camel = key.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  if (camel in props) return camel;
  if (`${camel}s` in props && props[`${camel}s`].type === 'array') return `${camel}s`;
  return null;
}

/** A lone value where a list is expected, as the flags take it: 256, or "256,512". */
function asList(value: unknown, key: string, props: Properties): unknown {
  if (props[key].type !== 'array' || Array.isArray(value)) return value;
  if (typeof value !== 'string') return [value];
  // A file name or a stop string may hold a comma; such lists are given one entry at a time, as --qa-file is.
  const parts = PATH_KEYS.includes(key) || key === 'stop' ? [value] : value.split(',').map((x) => x.trim());
  const items = props[key].items;
  const numeric = [items?.type, ...(items?.anyOf ?? []).map((a) => a.type)].some((t) => t === 'integer' || t === 'number');
  return numeric ? parts.map((x) => (/^\d+(\.\d+)?$/.test(x) ? Number(x) : x)) : parts;
}

/** `key` of a config file, unknown: named with the nearest known key in the same spelling. */
function unknownKey(file: string, key: string, props: Properties): QuestError {
  const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const known = Object.keys(props).map((k) => (key.includes('-') ? kebab(k) : k));
  const [best] = known.map((k) => ({ k, r: fuzzRatio(key, k) })).sort((a, b) => b.r - a.r);
  const hint = best && best.r >= 60 ? `; did you mean "${best.k}"?` : ` (known: ${known.join(', ')})`;
  return new QuestError(`${file}: unknown key "${key}"${hint}`);
}

/**
 * Reads a YAML config. Keys may be spelled as the flags are (page-size) or camelCase
 * (pageSize); relative paths in it are taken from the file's own folder.
 */
export function readConfigFile(file: string, kind: Kind): Record<string, unknown> {
  if (!existsSync(file)) throw new QuestError(`--config ${file}: no such file`);
  let doc: unknown;
  try {
    doc = YAML.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new QuestError(`${file}: not valid YAML (${errorMessage(err).split('\n')[0]})`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new QuestError(`${file}: must be a mapping of settings`);
  const props = schemas()[kind].properties as Properties;
  const settings: Record<string, unknown> = {};
  const spelled: Record<string, string> = {};
  for (const [key, value] of Object.entries(doc)) {
    const name = settingOf(key, props);
    if (name === null) throw unknownKey(file, key, props);
    if (name in settings) throw new QuestError(`${file}: "${spelled[name]}" and "${key}" both set ${name}`);
    settings[name] = asList(value, name, props);
    spelled[name] = key;
  }
  const cfg = validate<Record<string, unknown>>(kind, settings, file, spelled);
  const here = (p: string) => path.resolve(path.dirname(file), p);
  // A preset name (bench-latency's --model tiny) is not a path.
  if (typeof cfg.model === 'string' && !(cfg.model in PRESETS)) cfg.model = here(cfg.model);
  for (const k of PATH_KEYS)
    if (typeof cfg[k] === 'string') cfg[k] = here(cfg[k] as string);
    else if (Array.isArray(cfg[k])) cfg[k] = (cfg[k] as string[]).map(here);
  return cfg;
}

/**
 * An output folder that can be made: not empty, its nearest existing folder writable and
 * outside /proc and /sys (where Node's recursive mkdir spins forever). Checks only.
 */
export function checkOutputPath(dir: string): string {
  const flag = '--output-path';
  if (dir.trim() === '') throw new QuestError(`${flag}: empty; name a folder (or leave the flag out for a new one under runs/)`);
  const full = path.resolve(dir);
  let near = full;
  while (!existsSync(near)) near = path.dirname(near);
  // A file on the way fails at once in mkdir (ENOTDIR), which names it.
  if (!statSync(near).isDirectory()) return full;
  const real = realpathSync(near);
  const kernel = ['/proc', '/sys'].find((k) => real === k || real.startsWith(`${k}/`));
  if (kernel) throw new QuestError(`${flag} ${dir}: ${kernel} is the kernel's file system, not a place for output`);
  try {
    accessSync(near, constants.W_OK | constants.X_OK);
  } catch {
    throw new QuestError(`${flag} ${dir}: ${near} is not writable`);
  }
  return full;
}

function merge<T>(kind: Kind, defaults: T, configFile: string | undefined, flags: Partial<T>): T {
  const fromFile = configFile ? readConfigFile(configFile, kind) : {};
  const set = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  const cfg = validate<T & { outputPath: string | null }>(kind, { ...defaults, ...fromFile, ...set }, 'flags');
  if (cfg.outputPath !== null) checkOutputPath(cfg.outputPath);
  return cfg;
}

export function evalConfig(configFile: string | undefined, flags: Partial<EvalConfig>): EvalConfig {
  const cfg = merge('eval', evalDefaults(), configFile, flags);
  // Flags come parsed; a config file's fractions are checked (and spelled one way) here.
  cfg.budgets = cfg.budgets.map((b) => (typeof b === 'string' ? parseBudget(`${configFile}: budgets`, b) : b));
  // Named inputs are checked now, whether or not the chosen tasks read them, so a typo is
  // caught before any work rather than ignored.
  const files: [string, string | null][] = [
    ['--haystack-file', cfg.haystackFile],
    ['--text-file', cfg.textFile],
    ['--longbench-v2-file', cfg.longbenchV2File],
    ['--math-file', cfg.mathFile],
    ['--aime-file', cfg.aimeFile],
    ['--data-file', cfg.dataFile],
    ...cfg.qaFiles.map((f): [string, string] => ['--qa-file', f]),
  ];
  for (const [flag, file] of files) if (file !== null && !existsSync(file)) throw new QuestError(`${flag} ${file}: no such file`);
  if (cfg.longbenchDir !== null && !existsSync(cfg.longbenchDir)) throw new QuestError(`--longbench-dir ${cfg.longbenchDir}: no such folder`);
  if (cfg.infinitebenchDir !== null && !existsSync(cfg.infinitebenchDir)) throw new QuestError(`--infinitebench-dir ${cfg.infinitebenchDir}: no such folder`);
  return cfg;
}

export function benchConfig(configFile: string | undefined, flags: Partial<BenchConfig>): BenchConfig {
  return merge('bench', benchDefaults(), configFile, flags);
}
