/** Run configuration: defaults < a --config YAML file < command-line flags, validated once. */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import YAML from 'yaml';
import { QuestError, errorMessage } from '../errors.js';
import { CODE_SIM_BACKENDS, CODE_SIM_DEFAULT, type CodeSimBackend } from '../metrics/fuzz.js';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The policy settings eval and bench-latency share. */
export interface PolicyConfig {
  policies: string[];
  budgets: number[];
  pageSize: number;
  denseLayers: number;
  questGqa: 'group' | 'per-query-head';
  h2oHeavyFraction: number;
  streamingSinks: number;
  snapkvWindow: number;
  snapkvKernel: number;
  /** The KV cache's element type: auto is each backend's own (fp32 on the CPU, fp16 on the GPU); the GPU caches fp16 or bf16, and the CPU rounds what it stores to them. */
  kvDtype: KvDtype;
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
  /** This process runs every count-th unit from the index-th (1-based): a cluster array task. */
  shard: { index: number; count: number } | null;
  /** Worker processes, on the backend `device` picks (--devices puts one on each GPU). */
  workers: number;
  /** GPUs, one worker process each. */
  devices: number[];
}

export interface BenchConfig extends PolicyConfig {
  model: string;
  lengths: number[];
  decodeSteps: number;
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
const common = {
  model: { type: 'string', minLength: 1 },
  seed: { type: 'integer', minimum: 0 },
  outputPath: { type: ['string', 'null'] },
  lengths: posInts,
  policies: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
  budgets: posInts,
  pageSize: posInt,
  denseLayers: { type: 'integer', minimum: 0 },
  questGqa: { enum: ['group', 'per-query-head'] },
  h2oHeavyFraction: { type: 'number', minimum: 0, maximum: 1 },
  streamingSinks: { type: 'integer', minimum: 0 },
  snapkvWindow: posInt,
  snapkvKernel: { type: 'integer', minimum: 1 },
  kvDtype: { enum: ['auto', 'fp32', 'fp16', 'bf16'] },
  device: { enum: ['auto', 'cpu', 'cuda'] },
};

const SCHEMAS = {
  eval: {
    type: 'object',
    additionalProperties: false,
    properties: {
      ...common,
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
      shard: {
        anyOf: [
          { type: 'null' },
          { type: 'object', additionalProperties: false, required: ['index', 'count'], properties: { index: posInt, count: posInt } },
        ],
      },
      workers: posInt,
      devices: { type: 'array', items: { type: 'integer', minimum: 0 } },
    },
  },
  bench: {
    type: 'object',
    additionalProperties: false,
    properties: { ...common, decodeSteps: posInt, repeats: posInt, workers: posInt, devices: { type: 'array', items: { type: 'integer', minimum: 0 } } },
  },
} as const;

const POLICY_DEFAULTS: PolicyConfig = {
  policies: ['dense'],
  budgets: [256],
  pageSize: 16,
  denseLayers: 2,
  questGqa: 'group',
  h2oHeavyFraction: 0.5,
  // StreamingLLM keeps 4 attention sinks (Xiao et al., 2024, section 3.3).
  streamingSinks: 4,
  // SnapKV (Li et al., 2024): a 32-token observation window, max pooling with kernel 7; its
  // code's constructor defaults differ (kernel 5, average pooling), so both are flags.
  snapkvWindow: 32,
  snapkvKernel: 7,
  kvDtype: 'auto',
};

const EVAL_DEFAULTS: EvalConfig = {
  ...POLICY_DEFAULTS,
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
  shard: null,
  workers: 1,
  devices: [],
  device: 'auto',
};

const BENCH_DEFAULTS: BenchConfig = {
  ...POLICY_DEFAULTS,
  model: 'tiny',
  lengths: [1024, 4096],
  decodeSteps: 16,
  repeats: 3,
  seed: 0,
  outputPath: null,
  device: 'auto',
  workers: 1,
  devices: [],
};

function describe(e: ErrorObject): string {
  const where = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '';
  if (e.keyword === 'additionalProperties') return `unknown key "${(e.params as { additionalProperty: string }).additionalProperty}"`;
  return `${where || 'config'} ${e.message ?? 'is invalid'}`;
}

function validate<T>(kind: keyof typeof SCHEMAS, value: unknown, source: string): T {
  const ajv = new Ajv({ allErrors: false });
  const check = ajv.compile(SCHEMAS[kind]);
  if (!check(value)) throw new QuestError(`${source}: ${describe(check.errors![0])}`);
  return value as T;
}

/** Reads a YAML config; a relative model path in it is taken from the file's own folder. */
export function readConfigFile(file: string, kind: keyof typeof SCHEMAS): Record<string, unknown> {
  if (!existsSync(file)) throw new QuestError(`--config ${file}: no such file`);
  let doc: unknown;
  try {
    doc = YAML.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new QuestError(`${file}: not valid YAML (${errorMessage(err).split('\n')[0]})`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new QuestError(`${file}: must be a mapping of settings`);
  const cfg = validate<Record<string, unknown>>(kind, doc, file);
  const here = (p: string) => (p.startsWith('.') || p.includes('/') ? path.resolve(path.dirname(file), p) : p);
  if (typeof cfg.model === 'string') cfg.model = here(cfg.model);
  for (const k of ['haystackFile', 'longbenchDir', 'longbenchV2File', 'textFile'] as const) if (typeof cfg[k] === 'string') cfg[k] = here(cfg[k] as string);
  if (Array.isArray(cfg.qaFiles)) cfg.qaFiles = (cfg.qaFiles as string[]).map(here);
  return cfg;
}

function merge<T>(kind: keyof typeof SCHEMAS, defaults: T, configFile: string | undefined, flags: Partial<T>): T {
  const fromFile = configFile ? readConfigFile(configFile, kind) : {};
  const set = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  return validate<T>(kind, { ...defaults, ...fromFile, ...set }, 'flags');
}

export function evalConfig(configFile: string | undefined, flags: Partial<EvalConfig>): EvalConfig {
  const cfg = merge('eval', EVAL_DEFAULTS, configFile, flags);
  // Named inputs are checked now, whether or not the chosen tasks read them, so a typo is
  // caught before any work rather than ignored.
  const files: [string, string | null][] = [
    ['--haystack-file', cfg.haystackFile],
    ['--text-file', cfg.textFile],
    ['--longbench-v2-file', cfg.longbenchV2File],
    ...cfg.qaFiles.map((f): [string, string] => ['--qa-file', f]),
  ];
  for (const [flag, file] of files) if (file !== null && !existsSync(file)) throw new QuestError(`${flag} ${file}: no such file`);
  if (cfg.longbenchDir !== null && !existsSync(cfg.longbenchDir)) throw new QuestError(`--longbench-dir ${cfg.longbenchDir}: no such folder`);
  return cfg;
}

export function benchConfig(configFile: string | undefined, flags: Partial<BenchConfig>): BenchConfig {
  return merge('bench', BENCH_DEFAULTS, configFile, flags);
}
