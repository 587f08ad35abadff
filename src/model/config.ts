/** config.json of a Hugging Face model folder -> the engine's model spec (without tensors). */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { QuestError, errorMessage } from '../errors.js';
import type { NativeModelSpec, NativeRope } from '../engine/native.js';

export type ArchSpec = Omit<NativeModelSpec, 'tensors'>;

const ARCHS: Record<string, NativeModelSpec['arch']> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
  Phi3ForCausalLM: 'phi3',
  llama: 'llama',
  mistral: 'mistral',
  qwen2: 'qwen2',
  qwen3: 'qwen3',
  phi3: 'phi3',
};
const ARCH_NAMES = Object.keys(ARCHS).filter((k) => k.endsWith('ForCausalLM'));

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

function numList(cfg: Json, key: string, file: string, length: number): number[] {
  const v = cfg[key];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x) && x > 0))
    throw new QuestError(`${file}: "${key}" must be a list of positive numbers`);
  // One factor per rotated pair of a head's dimensions (transformers' _validate_longrope_rope_parameters).
  if (v.length !== length) throw new QuestError(`${file}: "${key}" has ${v.length} factors, but head_dim/2 is ${length}`);
  return v as number[];
}

// Each rope type's fields, as transformers 5.x's _validate_<type>_rope_parameters
// (modeling_rope_utils.py) lists them; "type" is the transformers 4 spelling of "rope_type".
// "finetuned" is the original YaRN repo's flag (Yarn-Llama-2-7b-128k's config) that transformers ignores.
const COMMON_ROPE_FIELDS = ['rope_type', 'type', 'rope_theta', 'partial_rotary_factor'];
const ROPE_FIELDS: Record<NativeRope['type'], string[]> = {
  default: [],
  linear: ['factor'],
  dynamic: ['factor'],
  llama3: ['factor', 'low_freq_factor', 'high_freq_factor', 'original_max_position_embeddings'],
  yarn: ['factor', 'original_max_position_embeddings', 'attention_factor', 'beta_fast', 'beta_slow', 'mscale', 'mscale_all_dim', 'truncate', 'finetuned'],
  longrope: ['short_factor', 'long_factor', 'original_max_position_embeddings', 'attention_factor', 'factor'],
};

// transformers' get_mscale inside _compute_yarn_parameters.
const yarnMscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);

interface RopeContext {
  file: string;
  key: string;
  headDim: number;
  maxPositions: number;
  /** Phi-3 keeps original_max_position_embeddings beside rope_scaling; transformers then prefers it. */
  topOriginal?: number;
  /** Phi-3 reads its older rope type names "su" and "yarn" as longrope (transformers' Phi3Config). */
  phi3: boolean;
}

/** Rope settings from either transformers 5 (rope_parameters) or 4 (rope_theta + rope_scaling). */
function parseRope(cfg: Json, ctx: RopeContext): NativeRope {
  const { file, key } = ctx;
  const params = (cfg[key] ?? {}) as Json;
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new QuestError(`${file}: "${key}" must be an object`);
  const theta = posNum(params, 'rope_theta', file, posNum(cfg, 'rope_theta', file, 10000));
  const named = String(params.rope_type ?? params.type ?? 'default');
  const type = (ctx.phi3 && (named === 'su' || named === 'yarn') ? 'longrope' : named) as NativeRope['type'];
  const fields = ROPE_FIELDS[type];
  if (!fields) throw new QuestError(`${file}: ${key}.rope_type "${type}" is not supported (supported: ${Object.keys(ROPE_FIELDS).join(', ')})`);
  for (const f of Object.keys(params))
    if (!COMMON_ROPE_FIELDS.includes(f) && !fields.includes(f))
      throw new QuestError(`${file}: ${key}.${f} is not a field of rope type "${type}" (its fields: ${[...fields, 'rope_theta'].join(', ')})`);
  const partial = num(params, 'partial_rotary_factor', file, num(cfg, 'partial_rotary_factor', file, 1));
  if (partial !== 1) throw new QuestError(`${file}: partial_rotary_factor ${partial} is not supported (the engine rotates whole heads: 1)`);
  if (type === 'default') return { theta, type };
  const original = (): number => {
    const o = ctx.topOriginal ?? posInt(params, 'original_max_position_embeddings', file, ctx.maxPositions);
    if (o > ctx.maxPositions)
      throw new QuestError(`${file}: original_max_position_embeddings (${o}) exceeds max_position_embeddings (${ctx.maxPositions})`);
    return o;
  };
  if (type === 'longrope') {
    const originalMaxPositions = original();
    // transformers' _compute_longrope_parameters: factor defaults to the ratio of the two lengths.
    const factor = posNum(params, 'factor', file, ctx.maxPositions / originalMaxPositions);
    const attentionFactor = posNum(params, 'attention_factor', file, factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(originalMaxPositions)));
    const half = ctx.headDim / 2;
    return { theta, type, factor, originalMaxPositions, attentionFactor, shortFactor: numList(params, 'short_factor', file, half), longFactor: numList(params, 'long_factor', file, half) };
  }
  const factor = posNum(params, 'factor', file);
  if (type === 'linear') return { theta, type, factor };
  // Dynamic NTK rescales past max_position_embeddings (transformers' _compute_dynamic_ntk_parameters).
  if (type === 'dynamic') return { theta, type, factor, originalMaxPositions: ctx.maxPositions };
  if (type === 'llama3') {
    const lowFreqFactor = posNum(params, 'low_freq_factor', file);
    const highFreqFactor = posNum(params, 'high_freq_factor', file);
    // transformers' llama3 rule interpolates between the two: it divides by their difference.
    if (highFreqFactor <= lowFreqFactor)
      throw new QuestError(`${file}: "high_freq_factor" (${highFreqFactor}) must be greater than "low_freq_factor" (${lowFreqFactor})`);
    return { theta, type, factor, lowFreqFactor, highFreqFactor, originalMaxPositions: posInt(params, 'original_max_position_embeddings', file) };
  }
  // yarn, as transformers' _compute_yarn_parameters: falsy beta_fast/beta_slow fall back to 32/1,
  // the attention factor from mscale/mscale_all_dim when both are set, truncate defaults to true.
  const originalMaxPositions = original();
  const betaFast = num(params, 'beta_fast', file, 0) || 32;
  const betaSlow = num(params, 'beta_slow', file, 0) || 1;
  if (betaFast < betaSlow) throw new QuestError(`${file}: ${key}.beta_fast (${betaFast}) must not be below beta_slow (${betaSlow})`);
  const mscale = num(params, 'mscale', file, 0);
  const mscaleAll = num(params, 'mscale_all_dim', file, 0);
  const attentionFactor = posNum(params, 'attention_factor', file, mscale && mscaleAll ? yarnMscale(factor, mscale) / yarnMscale(factor, mscaleAll) : yarnMscale(factor));
  if (params.truncate !== undefined && typeof params.truncate !== 'boolean') throw new QuestError(`${file}: ${key}.truncate must be true or false`);
  return { theta, type, factor, originalMaxPositions, attentionFactor, betaFast, betaSlow, truncate: params.truncate !== false };
}

/**
 * Which layers attend over a sliding window: config.layer_types when given, else the
 * architecture's rule (transformers 5.x configuration_<arch>.py, modeling_<arch>.py): Mistral
 * and Phi-3 window every layer when sliding_window is set; Qwen2/Qwen3 only with
 * use_sliding_window, from max_window_layers on.
 */
function slidingLayers(cfg: Json, arch: NativeModelSpec['arch'], layers: number, file: string): { window: number; sliding: boolean[] } {
  const qwen = arch === 'qwen2' || arch === 'qwen3';
  const given = cfg.sliding_window == null ? 0 : posInt(cfg, 'sliding_window', file);
  // Llama has no sliding window in transformers: the field is ignored there.
  const window = arch === 'llama' || (qwen && cfg.use_sliding_window !== true) ? 0 : given;
  if (Array.isArray(cfg.layer_types)) {
    const types = cfg.layer_types as unknown[];
    if (types.length !== layers) throw new QuestError(`${file}: "layer_types" lists ${types.length} layers, but num_hidden_layers is ${layers}`);
    const bad = types.find((t) => t !== 'full_attention' && t !== 'sliding_attention');
    if (bad !== undefined) throw new QuestError(`${file}: layer_types entry ${JSON.stringify(bad)} is not supported (supported: full_attention, sliding_attention)`);
    const sliding = types.map((t) => t === 'sliding_attention');
    if (sliding.some(Boolean) && !window) throw new QuestError(`${file}: "layer_types" has sliding_attention layers, but no sliding window is on ("sliding_window"${qwen ? ', "use_sliding_window"' : ''})`);
    return { window: sliding.some(Boolean) ? window : 0, sliding: window ? sliding : [] };
  }
  if (!window) return { window: 0, sliding: [] };
  const from = qwen ? posInt(cfg, 'max_window_layers', file, 28) : 0;
  const sliding = Array.from({ length: layers }, (_, i) => i >= from);
  return sliding.some(Boolean) ? { window, sliding } : { window: 0, sliding: [] };
}

export function parseConfig(cfg: Json, file: string): ArchSpec {
  const archName = (Array.isArray(cfg.architectures) ? cfg.architectures[0] : undefined) ?? cfg.model_type;
  const arch = ARCHS[String(archName)];
  if (!arch) throw new QuestError(`${file}: unknown architecture "${String(archName)}" (supported: ${ARCH_NAMES.join(', ')})`);
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
  const numLayers = posInt(cfg, 'num_hidden_layers', file);
  const positions = posInt(cfg, 'max_position_embeddings', file);
  const ropeKey = cfg.rope_parameters !== undefined ? 'rope_parameters' : 'rope_scaling';
  // Phi3Config: original_max_position_embeddings defaults to 4096 and takes precedence over rope_scaling's.
  const topOriginal = arch === 'phi3' ? posInt(cfg, 'original_max_position_embeddings', file, 4096) : undefined;
  const rope = parseRope(cfg, { file, key: ropeKey, headDim, maxPositions: positions, topOriginal, phi3: arch === 'phi3' });
  // Dynamic NTK exists to run past max_position_embeddings: served up to factor times it.
  const maxPositions = rope.type === 'dynamic' ? Math.min(INT_MAX, Math.floor(positions * rope.factor!)) : positions;
  const slide = slidingLayers(cfg, arch, numLayers, file);
  // A window no shorter than the longest context never binds: the layer is a full one.
  const { window, sliding } = slide.window >= maxPositions ? { window: 0, sliding: [] } : slide;
  const llamaBias = arch === 'llama' && cfg.attention_bias === true;
  const qwen3Bias = arch === 'qwen3' && cfg.attention_bias === true;
  return {
    arch,
    vocabSize: posInt(cfg, 'vocab_size', file),
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: posInt(cfg, 'intermediate_size', file),
    rmsNormEps: posNum(cfg, 'rms_norm_eps', file, 1e-6),
    maxPositions,
    tieEmbeddings: cfg.tie_word_embeddings === true,
    attentionBias: arch === 'qwen2' || llamaBias || qwen3Bias,
    outputBias: llamaBias || qwen3Bias,
    mlpBias: arch === 'llama' && cfg.mlp_bias === true,
    slidingWindow: window,
    slidingLayers: sliding,
    rope,
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
