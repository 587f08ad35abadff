/**
 * Architecture presets for benchmarking without weights: shapes from each model's
 * published config.json, weights drawn at random by the engine.
 */
import { QuestError } from '../errors.js';
import type { NativeQuant } from '../engine/native.js';
import type { ArchSpec } from './config.js';
import { parseRope } from './rope.js';

const llama = (o: Partial<ArchSpec>): ArchSpec => ({
  arch: 'llama',
  vocabSize: 32000,
  hiddenSize: 4096,
  numLayers: 32,
  numHeads: 32,
  numKvHeads: 32,
  headDim: 128,
  intermediateSize: 11008,
  rmsNormEps: 1e-5,
  maxPositions: 4096,
  tieEmbeddings: false,
  attentionBias: false,
  outputBias: false,
  mlpBias: false,
  slidingWindow: 0,
  slidingLayers: [],
  rope: { theta: 10000, type: 'default' },
  ...o,
});

const LLAMA3_ROPE = { theta: 500000, type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 } as const;
// AutoAWQ's default quant_config (w_bit 4, q_group_size 128, zero_point, GEMM), as the
// published AWQ checkpoints of these models carry it; weights packed at random by the engine.
const AWQ: NativeQuant = { method: 'awq', bits: 4, groupSize: 128, zeroOffset: 0 };

export const PRESETS: Record<string, ArchSpec> = {
  // meta-llama/Llama-2-7b-hf; positions raised so long-context latency can be measured
  // (LongChat-7B-v1.5-32K, Quest's model, is this shape with linear rope scaling 8).
  'llama-2-7b': llama({ maxPositions: 131072 }),
  'llama-2-7b-awq': llama({ maxPositions: 131072, quant: AWQ }),
  // meta-llama/Meta-Llama-3.1-8B
  'llama-3-8b': llama({ vocabSize: 128256, numKvHeads: 8, intermediateSize: 14336, maxPositions: 131072, rope: LLAMA3_ROPE }),
  'llama-3-8b-awq': llama({ vocabSize: 128256, numKvHeads: 8, intermediateSize: 14336, maxPositions: 131072, rope: LLAMA3_ROPE, quant: AWQ }),
  // meta-llama/Meta-Llama-3.1-70B in AWQ (about 35 GB of weights with every layer's own; the
  // preset shares one layer's across its 80 layers, as every random-weight preset does).
  'llama-3-70b-awq': llama({
    vocabSize: 128256,
    hiddenSize: 8192,
    numLayers: 80,
    numHeads: 64,
    numKvHeads: 8,
    intermediateSize: 28672,
    maxPositions: 131072,
    rope: LLAMA3_ROPE,
    quant: AWQ,
  }),
  // mistralai/Mistral-7B-v0.3 (no sliding window)
  'mistral-7b': llama({ arch: 'mistral', vocabSize: 32768, numKvHeads: 8, intermediateSize: 14336, maxPositions: 32768, rope: { theta: 1000000, type: 'default' } }),
  // Qwen/Qwen2-7B
  'qwen2-7b': llama({
    arch: 'qwen2',
    vocabSize: 152064,
    hiddenSize: 3584,
    numHeads: 28,
    numKvHeads: 4,
    intermediateSize: 18944,
    rmsNormEps: 1e-6,
    maxPositions: 131072,
    attentionBias: true,
    rope: { theta: 1000000, type: 'default' },
  }),
  // Qwen/Qwen3-8B
  'qwen3-8b': llama({
    arch: 'qwen3',
    vocabSize: 151936,
    numLayers: 36,
    numKvHeads: 8,
    intermediateSize: 12288,
    rmsNormEps: 1e-6,
    maxPositions: 40960,
    rope: { theta: 1000000, type: 'default' },
  }),
  // microsoft/Phi-3-mini-128k-instruct (its sliding_window, 262144, exceeds the context: no
  // window). LongRoPE's per-frequency factors change the angles, not the work: the preset
  // rotates with the default table rather than carry 96 factors no test checks.
  'phi-3-mini-128k': llama({
    arch: 'phi3',
    vocabSize: 32064,
    hiddenSize: 3072,
    headDim: 96,
    intermediateSize: 8192,
    maxPositions: 131072,
  }),
  // google/gemma-2-9b (Gemma2Config's soft-caps 50 and 30; sliding layers first, alternating)
  'gemma-2-9b': llama({
    arch: 'gemma2',
    vocabSize: 256000,
    hiddenSize: 3584,
    numLayers: 42,
    numHeads: 16,
    numKvHeads: 8,
    headDim: 256,
    intermediateSize: 14336,
    rmsNormEps: 1e-6,
    maxPositions: 8192,
    tieEmbeddings: true,
    slidingWindow: 4096,
    slidingLayers: Array.from({ length: 42 }, (_, i) => i % 2 === 0),
    queryPreAttnScalar: 256,
    attnSoftcap: 50,
    finalSoftcap: 30,
  }),
  // NousResearch/Yarn-Llama-2-7b-128k: Llama-2-7B with YaRN, factor 32 over 4096 positions.
  'yarn-llama-2-7b': llama({
    maxPositions: 131072,
    rope: parseRope(
      { type: 'yarn', factor: 32, original_max_position_embeddings: 4096 },
      { file: 'presets.ts', key: 'rope_scaling', theta: 10000, partial: 1, headDim: 128, maxPositions: 131072, phi3: false },
    ),
  }),
  // The shape of the project's default model, for quick CPU runs.
  tiny: llama({ vocabSize: 4096, hiddenSize: 256, numLayers: 4, numHeads: 4, numKvHeads: 2, headDim: 64, intermediateSize: 768, maxPositions: 32768, tieEmbeddings: true, rope: { theta: 1e6, type: 'default' } }),
};

export function preset(name: string): ArchSpec {
  const p = PRESETS[name];
  if (!p) throw new QuestError(`--model ${name}: not a model folder or a preset (presets: ${Object.keys(PRESETS).join(', ')})`);
  return p;
}
