/** RoPE settings of config.json, as transformers 5.x reads them (modeling_rope_utils.py). */
import { QuestError } from '../errors.js';
import type { NativeRope } from '../engine/native.js';
import { type Json, num, numList, posInt, posNum } from './fields.js';

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

export interface RopeContext {
  file: string;
  /** Where the settings are, as the messages name them: rope_parameters, rope_scaling, rope_parameters.full_attention. */
  key: string;
  /** rope_theta when the settings hold none: config.json's, or the architecture's default. */
  theta: number;
  /** partial_rotary_factor when the settings hold none. */
  partial: number;
  headDim: number;
  maxPositions: number;
  /** Phi-3 keeps original_max_position_embeddings beside rope_scaling; transformers then prefers it. */
  topOriginal?: number;
  /** Phi-3 reads its older rope type names "su" and "yarn" as longrope (transformers' Phi3Config). */
  phi3: boolean;
}

/** Rope settings from either transformers 5 (rope_parameters) or 4 (rope_theta + rope_scaling). */
export function parseRope(value: unknown, ctx: RopeContext): NativeRope {
  const { file, key } = ctx;
  const params = (value ?? {}) as Json;
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new QuestError(`${file}: "${key}" must be an object`);
  const theta = posNum(params, 'rope_theta', file, ctx.theta);
  const named = String(params.rope_type ?? params.type ?? 'default');
  const type = (ctx.phi3 && (named === 'su' || named === 'yarn') ? 'longrope' : named) as NativeRope['type'];
  const fields = ROPE_FIELDS[type];
  if (!fields) throw new QuestError(`${file}: ${key}.rope_type "${type}" is not supported (supported: ${Object.keys(ROPE_FIELDS).join(', ')})`);
  for (const f of Object.keys(params))
    if (!COMMON_ROPE_FIELDS.includes(f) && !fields.includes(f))
      throw new QuestError(`${file}: ${key}.${f} is not a field of rope type "${type}" (its fields: ${[...fields, 'rope_theta'].join(', ')})`);
  const partial = num(params, 'partial_rotary_factor', file, ctx.partial);
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

