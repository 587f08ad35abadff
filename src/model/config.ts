/** config.json of a Hugging Face model folder -> the engine's model spec (without tensors). */
import { readFileSync } from 'node:fs';
import { QuestError, errorMessage } from '../errors.js';
import type { NativeModelSpec, NativeRope } from '../engine/native.js';

export type ArchSpec = Omit<NativeModelSpec, 'tensors'>;

const ARCHS: Record<string, NativeModelSpec['arch']> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
  llama: 'llama',
  mistral: 'mistral',
  qwen2: 'qwen2',
};

type Json = Record<string, unknown>;

function num(cfg: Json, key: string, file: string, fallback?: number): number {
  const v = cfg[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new QuestError(`${file}: missing "${key}"`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new QuestError(`${file}: "${key}" must be a number, got ${JSON.stringify(v)}`);
  return v;
}

function posInt(cfg: Json, key: string, file: string, fallback?: number): number {
  const v = num(cfg, key, file, fallback);
  if (!Number.isInteger(v) || v <= 0) throw new QuestError(`${file}: "${key}" must be a positive integer, got ${v}`);
  return v;
}

/** Rope settings from either transformers 5 (rope_parameters) or 4 (rope_theta + rope_scaling). */
function parseRope(cfg: Json, file: string): NativeRope {
  const params = (cfg.rope_parameters ?? cfg.rope_scaling ?? {}) as Json;
  if (typeof params !== 'object' || params === null) throw new QuestError(`${file}: "rope_scaling" must be an object`);
  const theta = num(params, 'rope_theta', file, num(cfg, 'rope_theta', file, 10000));
  const type = String(params.rope_type ?? params.type ?? 'default');
  if (type === 'default') return { theta, type };
  const factor = num(params, 'factor', file);
  if (type === 'linear') return { theta, type, factor };
  if (type === 'llama3')
    return {
      theta,
      type,
      factor,
      lowFreqFactor: num(params, 'low_freq_factor', file),
      highFreqFactor: num(params, 'high_freq_factor', file),
      originalMaxPositions: num(params, 'original_max_position_embeddings', file),
    };
  throw new QuestError(`${file}: rope type "${type}" is not supported (supported: default, linear, llama3)`);
}

export function parseConfig(cfg: Json, file: string): ArchSpec {
  const archName = (Array.isArray(cfg.architectures) ? cfg.architectures[0] : undefined) ?? cfg.model_type;
  const arch = ARCHS[String(archName)];
  if (!arch)
    throw new QuestError(`${file}: unknown architecture "${String(archName)}" (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)`);
  const hiddenSize = posInt(cfg, 'hidden_size', file);
  const numHeads = posInt(cfg, 'num_attention_heads', file);
  const numKvHeads = posInt(cfg, 'num_key_value_heads', file, numHeads);
  const headDim = posInt(cfg, 'head_dim', file, Math.floor(hiddenSize / numHeads));
  if (numHeads % numKvHeads !== 0)
    throw new QuestError(`${file}: num_attention_heads (${numHeads}) is not a multiple of num_key_value_heads (${numKvHeads})`);
  let maxPositions = posInt(cfg, 'max_position_embeddings', file);
  // Sliding-window attention (Mistral v0.1, some Qwen2) differs from dense attention only
  // past the window: the engine serves contexts up to it.
  const window = cfg.sliding_window;
  const windowed = typeof window === 'number' && window > 0 && (arch === 'mistral' || cfg.use_sliding_window === true);
  if (windowed) maxPositions = Math.min(maxPositions, window as number);
  const llamaBias = arch === 'llama' && cfg.attention_bias === true;
  return {
    arch,
    vocabSize: posInt(cfg, 'vocab_size', file),
    hiddenSize,
    numLayers: posInt(cfg, 'num_hidden_layers', file),
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: posInt(cfg, 'intermediate_size', file),
    rmsNormEps: num(cfg, 'rms_norm_eps', file, 1e-6),
    maxPositions,
    tieEmbeddings: cfg.tie_word_embeddings === true,
    attentionBias: arch === 'qwen2' || llamaBias,
    outputBias: llamaBias,
    mlpBias: arch === 'llama' && cfg.mlp_bias === true,
    rope: parseRope(cfg, file),
  };
}

export function readJson(file: string, what: string): Json {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new QuestError(`${file}: cannot read ${what} (${errorMessage(err)})`);
  }
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Json;
  } catch (err) {
    throw new QuestError(`${file}: ${what} is not valid JSON (${errorMessage(err)})`);
  }
}
