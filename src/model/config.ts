/** config.json of a Hugging Face model folder -> the engine's model spec (without tensors). */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
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

// The engine holds sizes in 32-bit ints.
const INT_MAX = 2 ** 31 - 1;

function posInt(cfg: Json, key: string, file: string, fallback?: number): number {
  const v = num(cfg, key, file, fallback);
  if (!Number.isInteger(v) || v <= 0 || v > INT_MAX) throw new QuestError(`${file}: "${key}" must be a positive integer below 2^31, got ${v}`);
  return v;
}

function posNum(cfg: Json, key: string, file: string, fallback?: number): number {
  const v = num(cfg, key, file, fallback);
  if (v <= 0) throw new QuestError(`${file}: "${key}" must be a positive number, got ${v}`);
  return v;
}

/** Rope settings from either transformers 5 (rope_parameters) or 4 (rope_theta + rope_scaling). */
function parseRope(cfg: Json, file: string): NativeRope {
  const key = cfg.rope_parameters !== undefined ? 'rope_parameters' : 'rope_scaling';
  const params = (cfg[key] ?? {}) as Json;
  if (typeof params !== 'object' || Array.isArray(params)) throw new QuestError(`${file}: "${key}" must be an object`);
  const theta = posNum(params, 'rope_theta', file, posNum(cfg, 'rope_theta', file, 10000));
  const type = String(params.rope_type ?? params.type ?? 'default');
  if (type === 'default') return { theta, type };
  const factor = posNum(params, 'factor', file);
  if (type === 'linear') return { theta, type, factor };
  if (type === 'llama3') {
    const lowFreqFactor = posNum(params, 'low_freq_factor', file);
    const highFreqFactor = posNum(params, 'high_freq_factor', file);
    // transformers' llama3 rule interpolates between the two: it divides by their difference.
    if (highFreqFactor <= lowFreqFactor)
      throw new QuestError(`${file}: "high_freq_factor" (${highFreqFactor}) must be greater than "low_freq_factor" (${lowFreqFactor})`);
    return { theta, type, factor, lowFreqFactor, highFreqFactor, originalMaxPositions: posInt(params, 'original_max_position_embeddings', file) };
  }
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
  if (cfg.head_dim == null && hiddenSize % numHeads !== 0)
    throw new QuestError(`${file}: hidden_size (${hiddenSize}) is not a multiple of num_attention_heads (${numHeads}), and no "head_dim" is given`);
  const headDim = posInt(cfg, 'head_dim', file, hiddenSize / numHeads);
  // RoPE rotates pairs of a head's dimensions.
  if (headDim % 2 !== 0) throw new QuestError(`${file}: "head_dim" must be even for RoPE, got ${headDim}`);
  if (numHeads % numKvHeads !== 0)
    throw new QuestError(`${file}: num_attention_heads (${numHeads}) is not a multiple of num_key_value_heads (${numKvHeads})`);
  let maxPositions = posInt(cfg, 'max_position_embeddings', file);
  // Sliding-window attention (Mistral v0.1, some Qwen2) differs from dense attention only
  // past the window: the engine serves contexts up to it.
  const window = cfg.sliding_window == null ? null : posInt(cfg, 'sliding_window', file);
  if (window !== null && (arch === 'mistral' || cfg.use_sliding_window === true)) maxPositions = Math.min(maxPositions, window);
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
    rmsNormEps: posNum(cfg, 'rms_norm_eps', file, 1e-6),
    maxPositions,
    tieEmbeddings: cfg.tie_word_embeddings === true,
    attentionBias: arch === 'qwen2' || llamaBias,
    outputBias: llamaBias,
    mlpBias: arch === 'llama' && cfg.mlp_bias === true,
    rope: parseRope(cfg, file),
  };
}

/**
 * Opens a model file for reading, refusing anything but a regular file: opened without
 * blocking (a FIFO would wait forever for a writer), then checked.
 */
export function openRegular(file: string, what: string): number {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new QuestError(`${file}: cannot open ${what} (${errorMessage(err)})`);
  }
  const st = fstatSync(fd);
  if (st.isFile()) return fd;
  closeSync(fd);
  const kind = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : 'a device';
  throw new QuestError(`${file}: ${what} must be a regular file, not ${kind}`);
}

export function readJson(file: string, what: string): Json {
  const fd = openRegular(file, what);
  let text: string;
  try {
    text = readFileSync(fd, 'utf8');
  } catch (err) {
    throw new QuestError(`${file}: cannot read ${what} (${errorMessage(err)})`);
  } finally {
    closeSync(fd);
  }
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Json;
  } catch (err) {
    throw new QuestError(`${file}: ${what} is not valid JSON (${errorMessage(err)})`);
  }
}
