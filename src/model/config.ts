/** config.json of a Hugging Face model folder -> the engine's model spec (without tensors). */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { QuestError, errorMessage } from '../errors.js';
import type { NativeModelSpec } from '../engine/native.js';
import { INT_MAX, type Json, num, posInt, posNum } from './fields.js';
import { parseQuant } from './quant.js';
import { parseRope } from './rope.js';

export type ArchSpec = Omit<NativeModelSpec, 'tensors'>;

const ARCHS: Record<string, NativeModelSpec['arch']> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
  Phi3ForCausalLM: 'phi3',
  Gemma2ForCausalLM: 'gemma2',
  Gemma3ForCausalLM: 'gemma3',
  llama: 'llama',
  mistral: 'mistral',
  qwen2: 'qwen2',
  qwen3: 'qwen3',
  phi3: 'phi3',
  gemma2: 'gemma2',
  gemma3_text: 'gemma3',
};
const ARCH_NAMES = Object.keys(ARCHS).filter((k) => k.endsWith('ForCausalLM'));

/**
 * Which layers attend over a sliding window: config.layer_types when given, else the
 * architecture's rule (transformers 5.x configuration_<arch>.py, modeling_<arch>.py): Mistral
 * and Phi-3 window every layer when sliding_window is set; Qwen2/Qwen3 only with
 * use_sliding_window, from max_window_layers on; Gemma 2 and 3 by their period.
 */
function slidingLayers(cfg: Json, arch: NativeModelSpec['arch'], layers: number, file: string): { window: number; sliding: boolean[] } {
  const qwen = arch === 'qwen2' || arch === 'qwen3';
  // Gemma2Config and Gemma3TextConfig default the window to 4096.
  const given = cfg.sliding_window === undefined && gemma(arch) ? 4096 : cfg.sliding_window == null ? 0 : posInt(cfg, 'sliding_window', file);
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
  // Gemma 2 alternates from a sliding layer; Gemma 3 makes every sliding_window_pattern-th layer full.
  const period = arch === 'gemma2' ? 2 : arch === 'gemma3' ? posInt(cfg, 'sliding_window_pattern', file, 6) : 0;
  const sliding = Array.from({ length: layers }, (_, i) => (period ? (i + 1) % period !== 0 : i >= from));
  return sliding.some(Boolean) ? { window, sliding } : { window: 0, sliding: [] };
}

const gemma = (arch: NativeModelSpec['arch']) => arch === 'gemma2' || arch === 'gemma3';

/**
 * The rope of full-attention layers and, for Gemma 3, of its sliding layers: nested by layer
 * type in rope_parameters (transformers 5), or rope_theta, rope_scaling (full layers) and
 * rope_local_base_freq (transformers 4). Defaults: Gemma3TextConfig.default_theta.
 */
function ropes(cfg: Json, arch: NativeModelSpec['arch'], file: string, headDim: number, maxPositions: number) {
  const key = cfg.rope_parameters !== undefined ? 'rope_parameters' : 'rope_scaling';
  // Phi3Config: original_max_position_embeddings defaults to 4096 and takes precedence over rope_scaling's.
  const topOriginal = arch === 'phi3' ? posInt(cfg, 'original_max_position_embeddings', file, 4096) : undefined;
  const partial = num(cfg, 'partial_rotary_factor', file, 1);
  const ctx = { file, key, headDim, maxPositions, topOriginal, phi3: arch === 'phi3', partial };
  const theta = (fallback: number) => posNum(cfg, 'rope_theta', file, fallback);
  if (arch !== 'gemma3') return { rope: parseRope(cfg[key], { ...ctx, theta: theta(10000) }), ropeLocal: undefined };
  const params = cfg.rope_parameters as Json | undefined;
  if (params && typeof params === 'object' && ('full_attention' in params || 'sliding_attention' in params)) {
    for (const k of Object.keys(params))
      if (k !== 'full_attention' && k !== 'sliding_attention')
        throw new QuestError(`${file}: rope_parameters.${k} is not a layer type of Gemma 3 (its layer types: full_attention, sliding_attention)`);
    return {
      rope: parseRope(params.full_attention, { ...ctx, key: 'rope_parameters.full_attention', theta: theta(1e6) }),
      ropeLocal: parseRope(params.sliding_attention, { ...ctx, key: 'rope_parameters.sliding_attention', theta: 1e4 }),
    };
  }
  return {
    rope: parseRope(cfg[key], { ...ctx, theta: theta(1e6) }),
    ropeLocal: { theta: posNum(cfg, 'rope_local_base_freq', file, 1e4), type: 'default' as const },
  };
}

/** Gemma 2/3's own fields, with Gemma2Config's and Gemma3TextConfig's defaults (transformers 5.x). */
function gemmaFields(cfg: Json, arch: NativeModelSpec['arch'], file: string) {
  const act = cfg.hidden_activation ?? cfg.hidden_act ?? 'gelu_pytorch_tanh';
  if (act !== 'gelu_pytorch_tanh') throw new QuestError(`${file}: hidden_activation "${String(act)}" is not supported (supported: gelu_pytorch_tanh)`);
  if (cfg.use_bidirectional_attention === true) throw new QuestError(`${file}: use_bidirectional_attention is not supported (a causal language model attends causally)`);
  const cap = (key: string, fallback: number | null) => (cfg[key] === undefined ? fallback : cfg[key] === null ? null : posNum(cfg, key, file)) ?? 0;
  return {
    queryPreAttnScalar: posNum(cfg, 'query_pre_attn_scalar', file, 256),
    attnSoftcap: cap('attn_logit_softcapping', arch === 'gemma2' ? 50 : null),
    finalSoftcap: cap('final_logit_softcapping', arch === 'gemma2' ? 30 : null),
  };
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
  const { rope, ropeLocal } = ropes(cfg, arch, file, headDim, positions);
  // Dynamic NTK exists to run past max_position_embeddings: served up to factor times it. YaRN
  // configs may keep the pretraining length there (Qwen2.5's advice adds rope_scaling alone):
  // served up to factor times the original length.
  const scaled = rope.type === 'dynamic' ? positions * rope.factor! : rope.type === 'yarn' ? Math.max(positions, rope.originalMaxPositions! * rope.factor!) : positions;
  const maxPositions = Math.min(INT_MAX, Math.floor(scaled));
  const slide = slidingLayers(cfg, arch, numLayers, file);
  // A window no shorter than the longest context never binds: the layer is a full one.
  const { window, sliding } = slide.window >= maxPositions ? { window: 0, sliding: [] } : slide;
  const llamaBias = arch === 'llama' && cfg.attention_bias === true;
  const qwen3Bias = arch === 'qwen3' && cfg.attention_bias === true;
  const quant = parseQuant(cfg, file);
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
    ...(ropeLocal && { ropeLocal }),
    ...(gemma(arch) && gemmaFields(cfg, arch, file)),
    ...(quant && { quant }),
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
