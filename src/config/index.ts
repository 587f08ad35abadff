/** Run configuration: defaults < a --config YAML file < command-line flags, validated once. */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import YAML from 'yaml';
import { QuestError, errorMessage } from '../errors.js';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface EvalConfig {
  /** A model folder, or an architecture preset name. */
  model: string;
  tasks: string[];
  /** At most this many samples per task. */
  limit: number | null;
  seed: number;
  outputPath: string | null;
  /** Prompt lengths in tokens. */
  lengths: number[];
  /** Needle depths in percent. */
  depths: number[];
  policies: string[];
  budgets: number[];
  pageSize: number;
  denseLayers: number;
  /** decode: the question is fed token by token under the policy (Quest's protocol). */
  questionMode: 'decode' | 'prefill';
  device: 'auto' | 'cpu' | 'cuda';
}

export interface BenchConfig {
  model: string;
  lengths: number[];
  decodeSteps: number;
  repeats: number;
  seed: number;
  outputPath: string | null;
  policies: string[];
  budgets: number[];
  pageSize: number;
  denseLayers: number;
  device: 'auto' | 'cpu' | 'cuda';
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
      questionMode: { enum: ['decode', 'prefill'] },
    },
  },
  bench: {
    type: 'object',
    additionalProperties: false,
    properties: { ...common, decodeSteps: posInt, repeats: posInt },
  },
} as const;

const EVAL_DEFAULTS: EvalConfig = {
  model: path.join(projectRoot, 'models', 'quest-random-tiny'),
  tasks: ['passkey'],
  limit: null,
  seed: 0,
  outputPath: null,
  lengths: [1024, 2048],
  depths: [0, 25, 50, 75, 100],
  policies: ['dense'],
  budgets: [256],
  pageSize: 16,
  denseLayers: 2,
  questionMode: 'decode',
  device: 'auto',
};

const BENCH_DEFAULTS: BenchConfig = {
  model: 'tiny',
  lengths: [1024, 4096],
  decodeSteps: 16,
  repeats: 3,
  seed: 0,
  outputPath: null,
  policies: ['dense'],
  budgets: [256],
  pageSize: 16,
  denseLayers: 2,
  device: 'auto',
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
  if (typeof cfg.model === 'string' && (cfg.model.startsWith('.') || cfg.model.includes('/')))
    cfg.model = path.resolve(path.dirname(file), cfg.model);
  return cfg;
}

function merge<T>(kind: keyof typeof SCHEMAS, defaults: T, configFile: string | undefined, flags: Partial<T>): T {
  const fromFile = configFile ? readConfigFile(configFile, kind) : {};
  const set = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  return validate<T>(kind, { ...defaults, ...fromFile, ...set }, 'flags');
}

export function evalConfig(configFile: string | undefined, flags: Partial<EvalConfig>): EvalConfig {
  return merge('eval', EVAL_DEFAULTS, configFile, flags);
}

export function benchConfig(configFile: string | undefined, flags: Partial<BenchConfig>): BenchConfig {
  return merge('bench', BENCH_DEFAULTS, configFile, flags);
}
