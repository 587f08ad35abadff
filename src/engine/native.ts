/**
 * The native addon's whole API, written by hand: cuda/src/binding/addon.cpp implements
 * exactly this. Everything that crosses into C++ goes through these types.
 */
export type NativeDType = 'F32' | 'F16' | 'BF16' | 'I32';

/** 4-bit weights (config.json's quantization_config), dequantized as w = (q - (zero + zeroOffset)) * scale. */
export interface NativeQuant {
  method: 'awq' | 'gptq';
  bits: 4;
  /** Input features per scale and zero (-1: the whole input). */
  groupSize: number;
  /** GPTQ's v1 checkpoints store zero - 1 (1); AWQ and gptq_v2 the zero itself (0). */
  zeroOffset: 0 | 1;
}

export interface NativeTensorRef {
  name: string;
  /** Absolute path of the safetensors file. */
  file: string;
  /** Absolute byte offset of the tensor's data in the file. */
  offset: number;
  nbytes: number;
  dtype: NativeDType;
  shape: number[];
}

export interface NativeRope {
  theta: number;
  type: 'default' | 'linear' | 'llama3' | 'dynamic' | 'yarn' | 'longrope';
  factor?: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  /** llama3, yarn, longrope: the pretraining length; dynamic: max_position_embeddings. */
  originalMaxPositions?: number;
  /** yarn, longrope: the factor cos and sin are multiplied by. */
  attentionFactor?: number;
  betaFast?: number;
  betaSlow?: number;
  truncate?: boolean;
  /** longrope: per-frequency factors up to the original length, and past it. */
  shortFactor?: number[];
  longFactor?: number[];
}

export interface NativeModelSpec {
  arch: 'llama' | 'mistral' | 'qwen2' | 'qwen3' | 'phi3' | 'gemma2' | 'gemma3';
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  rmsNormEps: number;
  maxPositions: number;
  tieEmbeddings: boolean;
  attentionBias: boolean;
  outputBias: boolean;
  mlpBias: boolean;
  /** Tokens a sliding-window layer sees, its own included (0: no window). */
  slidingWindow: number;
  /** Per layer, whether it attends over the window (empty: no layer does). */
  slidingLayers: boolean[];
  rope: NativeRope;
  /** Gemma 3: the rope of sliding-window layers (rope: full-attention layers'). */
  ropeLocal?: NativeRope;
  /** Gemma: attention scores are scaled by queryPreAttnScalar^-0.5 (else head_dim^-0.5). */
  queryPreAttnScalar?: number;
  /** Gemma: tanh soft-capping of attention scores and of the final logits (0: none). */
  attnSoftcap?: number;
  finalSoftcap?: number;
  /** 4-bit linear layers (absent: every weight as stored, f32/f16/bf16). */
  quant?: NativeQuant;
  tensors: NativeTensorRef[];
  /** Draw weights at random instead of reading files (architecture presets). */
  randomWeights?: boolean;
  randomSeed?: number;
}

export interface NativeSequenceOptions {
  policy: string;
  /** Tokens read per KV head per layer per decode step, everything included (0 for dense). */
  budget: number;
  /** A power of two. */
  pageSize: number;
  /** Layers below this always read everything. */
  denseLayers: number;
  /** The KV cache's element type (default 'auto': fp32 on the CPU, fp16 on the GPU); the GPU caches fp16 or bf16 (queries too), the CPU rounds to them. */
  kvDtype?: 'auto' | 'fp32' | 'fp16' | 'bf16';
  /** Keep what every decode step read, for selections() (default false: a debug path; off, it costs nothing). */
  recordSelections?: boolean;
  /** Attention diagnostics at every decode step, for diagnostics() (CPU backend only; default false: each step then also runs a dense pass, kept out of decodeMs). */
  diagnostics?: boolean;
  /** Each policy's own settings (questGqa, streamingSinks, ...), by the keys describePolicies() declares; the engine refuses a key it does not declare. */
  [setting: string]: unknown;
}

/** One setting a sequence takes, as the engine declares it beside its policy (cuda/src/policy). */
export interface NativeSetting {
  /** camelCase; the CLI flag and a config file's key are its kebab-case. */
  key: string;
  type: 'int' | 'number' | 'choice';
  default: number | string;
  /** int and number, inclusive; max null where unbounded. */
  min?: number;
  max?: number | null;
  /** choice: the allowed values, and the flag's placeholder in help. */
  choices?: string[];
  arg?: string;
  /** choice: the values the GPU does not serve, each with the reason. */
  gpuRefuses?: Record<string, string>;
  /** int and number: why the GPU serves only the default (absent where it serves every value). */
  gpuRefusesOther?: string;
  help: string;
  /** The budget must exceed this setting (tokens the policy reserves). */
  budgetExceeds: boolean;
  /** The policy it belongs to; null for the sequence's own (page size, dense layers, KV type). */
  policy: string | null;
}

export interface NativePolicyInfo {
  name: string;
  help: string;
  /** What the policy needs the dense prefill to report. */
  prefill: string;
  /** How the CUDA backend serves it. */
  gpu: string;
}

export interface NativePolicyCatalog {
  /** In the order users read them (help, errors). */
  policies: NativePolicyInfo[];
  /** Every setting, the sequence's first, each policy's in listing order, the KV type last. */
  settings: NativeSetting[];
}

export interface NativeSequenceStats {
  prefillTokens: number;
  decodeSteps: number;
  prefillMs: number;
  decodeMs: number;
  /** Host time in policy selection (CPU backend); 0 on the GPU, where selection is queued with the step (quest bench-attention times it). */
  selectMs: number;
  /** Tokens read, summed over decode steps x governed layers x KV heads. */
  tokensRead: number;
  /** Decode steps x governed layers x KV heads. */
  policySamples: number;
  kvBytesRead: number;
  metaBytesRead: number;
  /** GPU: the host's time from each decode step's start to its last launch (waits on the way included), summed; 0 on the CPU. */
  issueMs: number;
}

/**
 * What one decode step read in each layer the policy governs (layers denseLayers.., in order).
 * A list serves a KV head, or a query head under per-query-head Quest (a step that reads
 * everything has one list a KV head).
 */
/**
 * Attention diagnostics (a sequence created with diagnostics: true; empty otherwise): one value
 * per decode step x governed layer x KV head, in that order. l2: |o_p - o_d| / |o_d|, the policy's
 * attention output against dense attention over the whole cache, the KV head's query heads taken
 * together as one vector; recall: the dense attention probability on the positions the policy
 * read, averaged over the KV head's query heads.
 */
export interface NativeDiagnostics {
  l2: Float32Array;
  recall: Float32Array;
  /** Time the dense passes took (not in decodeMs). */
  ms: number;
}

export interface NativeStepSelection {
  /** [governed layer][list]: the positions read, ascending. */
  lists: Int32Array[][];
  /**
   * [governed layer][list]: the CPU policy's margin at the cut that decided the list, (least
   * score taken - best score left out) / scale, the scale being the least score taken (Quest:
   * the largest |page score|); Infinity where no cut decided it at this step (nothing ranked, or
   * decided earlier: SnapKV's at the first step); NaN on the GPU, which does not compute them.
   * Scores: Quest's page scores; H2O the accumulated attention of the evictable tokens; TOVA the
   * attention the step before paid the evicted and the kept; SnapKV the pooled window attention;
   * oracle the attention mass.
   */
  margins: Float32Array[];
}

/**
 * A sequence's KV pages. Cells of one shared prefill share its pages: a cell holds the
 * context's pages once for all of them, and its own only from its first decode step (the
 * context's last, partial page copied on its first write, then the pages it grows).
 */
export interface NativeCacheStats {
  /** Pages its page table reaches. */
  pages: number;
  /** Of those, the pages no other sequence holds. */
  ownPages: number;
  /** Pages alive in its family: the shared prefill's and every cell's own. */
  familyPages: number;
  /** Bytes of one page (keys and values of every layer; on the CPU, its key bounds too). */
  pageBytes: number;
  /** Bytes of key bounds it keeps apart from its pages: on the GPU each cell's own copy (0 on the CPU). */
  boundBytes: number;
}

export interface NativeSequence {
  /** Dense prefill; the logits of the last token, or of every token when allLogits. */
  prefill(tokens: Int32Array, allLogits?: boolean): Promise<Float32Array>;
  /** One decode step per token under the policy; the last token's logits. */
  feed(tokens: Int32Array): Promise<Float32Array>;
  /** Per token: -log p(token | all before) under the current logits, then one decode step feeding it. */
  nll(tokens: Int32Array): Promise<Float64Array>;
  /** Greedy decoding from the current logits. */
  generate(maxNewTokens: number, stopTokens: Int32Array): Promise<Int32Array>;
  stats(): NativeSequenceStats;
  /** Every decode step's selections so far; throws unless created with recordSelections. */
  selections(): NativeStepSelection[];
  /** The attention diagnostics so far (empty unless created with diagnostics). */
  diagnostics(): NativeDiagnostics;
  /** The KV pages the sequence holds (null where a backend does not report them). */
  cacheStats(): NativeCacheStats | null;
  /** Frees the sequence's KV cache now (on a GPU, memory the garbage collector does not see); later calls fail. */
  close(): void;
  readonly length: number;
}

export interface NativeModel {
  /** Throws when the policy has no implementation on the model's backend. */
  createSequence(opts: NativeSequenceOptions): NativeSequence;
  /**
   * One dense prefill of `tokens` for every cell: fresh sequences, one per options object (of one
   * page size, KV type and dense layers), sharing the prefill's KV pages copy-on-write, each
   * with its own policy, which observed the prefill as if it had run alone.
   */
  prefillShared(tokens: Int32Array, cells: NativeSequenceOptions[]): Promise<NativeSequence[]>;
  /**
   * The batched forms of feed, nll and generate: every sequence takes the same steps as alone
   * (the same tokens and logits), one forward a step over the whole batch; a sequence that
   * stops generating leaves it. Each sequence's decode time counts every step's whole time.
   */
  feedBatch(seqs: NativeSequence[], tokens: Int32Array): Promise<void>;
  nllBatch(seqs: NativeSequence[], tokens: Int32Array): Promise<Float64Array[]>;
  generateBatch(seqs: NativeSequence[], maxNewTokens: number, stopTokens: Int32Array): Promise<Int32Array[]>;
  /** CPU: bytes of fp32 weights. GPU: bytes of weights one decode step reads (16-bit, or a 4-bit layer packed) (every layer, the LM head, one embedding row). */
  readonly weightBytes: number;
  readonly backend: 'cpu' | 'cuda';
}

export interface NativeCudaStatus {
  compiled: boolean;
  architectures: string;
  devices: number;
  deviceName: string;
  memoryGiB: number;
  /** The first device's, e.g. '9.0' (empty without one). */
  computeCapability: string;
  error: string;
  /** Which GEMM runs a prefill's linear layers, and why (empty without CUDA). */
  gemm: string;
  /** Which kernel runs a prefill's attention (empty without CUDA). */
  prefillAttention: string;
  /** How a decode batch's attention launches (empty without CUDA). */
  decodeBatch: string;
}

export interface NativeBackendInfo {
  cpuThreads: number;
  cuda: NativeCudaStatus;
  /** The attention shapes the GPU kernels are built for (cuda/src/kernels/gpu_shapes.h): head_dims, and query heads per KV head. */
  /** int4GemvRows: the most input rows the 4-bit GEMV takes (a decode batch's; more are split). */
  gpuShapes: { headDims: number[]; groups: number[]; int4GemvRows: number };
}

/** One attention layer under a policy, on given data: what tests compare with references. */
export interface NativeOneLayerInput extends NativeSequenceOptions {
  heads: number;
  kvHeads: number;
  headDim: number;
  promptLength: number;
  steps: number;
  /** [promptLength + steps][kvHeads][headDim] */
  keys: Float32Array;
  values: Float32Array;
  /** [promptLength + steps][heads][headDim] */
  queries: Float32Array;
}

export interface NativeOneLayerStep {
  /** One sorted list per KV head (or per query head); an empty list means every position. */
  selection: Int32Array[];
  /** [kvHead][position]: the step's attention probabilities, summed over the group. */
  probs: Float32Array[];
  metaBytes: number;
  /** Per list: the margin at the cut that decided it, as NativeStepSelection's. */
  margins: Float32Array;
  /** With diagnostics: per KV head, as NativeDiagnostics's. */
  l2?: Float32Array;
  recall?: Float32Array;
}

export interface NativeOneLayerOutput {
  /** What the prefill reported to the policy, [kvHead][position] each (empty when not asked). */
  prefill: { sums: Float32Array[]; last: Float32Array[]; window: Float32Array[] };
  steps: NativeOneLayerStep[];
  /** [page][kvHead][headDim] after the last step. */
  pageMin: Float32Array;
  pageMax: Float32Array;
}

/** The attention shape of the GPU kernel benchmarks and parity checks. */
export interface NativeAttentionShape {
  heads: number;
  kvHeads: number;
  /** One of backendInfo().gpuShapes.headDims. */
  headDim: number;
  /** 16: the GPU kernels are built for it. */
  pageSize: number;
}

export interface NativeAttentionBenchRow {
  length: number;
  /** prefill: one layer's causal prefill attention over every position of the length (with `prefill`). */
  policy: 'dense' | 'quest' | 'prefill';
  /** 0 for dense. */
  budget: number;
  /** Medians of replayed CUDA graphs, microseconds; estimate and top-k are 0 for dense. */
  estimateUs: number;
  topkUs: number;
  attentionUs: number;
  totalUs: number;
  /** Per KV head. */
  tokensRead: number;
  kvBytes: number;
  metaBytes: number;
}

export interface NativeAttentionBench {
  device: string;
  /** Device-to-device copy bandwidth measured in the same run, bytes read plus written. */
  copyGBps: number;
  rows: NativeAttentionBenchRow[];
}

export interface NativeAttentionParity {
  appendMinMaxMaxAbs: number;
  denseMaxAbs: number;
  denseRefMax: number;
  estimateMaxAbs: number;
  estimateRefMax: number;
  topkMismatches: number;
  sparseMaxAbs: number;
  sparseRefMax: number;
  /** Attention over random token lists, and each entry's probability summed per KV head. */
  tokenMaxAbs: number;
  tokenRefMax: number;
  probsMaxAbs: number;
  probsRefMax: number;
  /** Entries where top-k, TOVA's and H2O's evictions or SnapKV's pooling differ from the CPU's rules on the same values. */
  selectionMismatches: number;
  /** A prefill chunk's flash attention, and the column sums of its probabilities. */
  prefillMaxAbs: number;
  prefillRefMax: number;
  colsumMaxAbs: number;
  colsumRefMax: number;
}

/** A linear layer of a decode step, as bench-linear times it (4-bit: AWQ's layout as the engine unpacks it, else fp16). */
export interface NativeLinearShape {
  name: string;
  in: number;
  out: number;
  int4: boolean;
  /** One in every layer (the projections), not once (the LM head). */
  perLayer: boolean;
}

export interface NativeLinearBenchRow {
  /** A shape's name, or 'layers': every per-layer shape of every layer back to back, each its own weights. */
  name: string;
  in: number;
  out: number;
  rows: number;
  /** Which GEMV ran. */
  kernel: string;
  /** The product alone (a 4-bit layer's input already staged), median of replayed CUDA graphs, each from DRAM. */
  us: number;
  /** With the step's staging of its input before it (4-bit layers; the same for 16-bit ones, which build their input). */
  stagedUs: number;
  /** Weights (with a 4-bit layer's scales and zeros), input and output rows. */
  bytes: number;
}

export interface NativeLinearBench {
  device: string;
  /** Device-to-device copy, bytes read plus written, same run. */
  copyGBps: number;
  rows: NativeLinearBenchRow[];
}

export interface NativeAddon {
  /** 'cuda' runs the forward pass on GPU 0 (the worker pool pins one per process). */
  loadModel(spec: NativeModelSpec, opts?: { backend: 'cpu' | 'cuda' }): Promise<NativeModel>;
  /** Per backend, why it does not serve the spec ('' when it does); reads no file. */
  servedBy(spec: NativeModelSpec): { cpu: string; cuda: string };
  backendInfo(): NativeBackendInfo;
  /** GPU only: device-to-device copy of 1 GiB, GB/s counting bytes read plus written. */
  copyBandwidth(): Promise<number>;
  /** CPU only: one attention layer under a policy on given keys, values and queries (policy/one_layer.h), for tests. */
  runOneLayer(input: NativeOneLayerInput): Promise<NativeOneLayerOutput>;
  /** The policies and their settings, declared once in C++ beside each policy. */
  describePolicies(): NativePolicyCatalog;
  /** GPU only: dense and Quest decode attention timed per length and budget. */
  benchAttention(opts: NativeAttentionShape & { lengths: number[]; budgets: number[]; repeats: number; seed: number; prefill?: boolean }): Promise<NativeAttentionBench>;
  /** GPU only: each attention kernel against the CPU backend on fresh random fp16 inputs. */
  /** softcap: every kernel's attention scores (and the CPU's) soft-capped at it, as Gemma 2's (absent or 0: none). */
  parityAttention(opts: NativeAttentionShape & { length: number; budget: number; softcap?: number; seed: number }): Promise<NativeAttentionParity>;
  /** GPU only: each linear layer of a decode step timed alone at each number of input rows. */
  benchLinear(opts: { shapes: NativeLinearShape[]; rows: number[]; group: number; layers: number; repeats: number; seed: number }): Promise<NativeLinearBench>;
}
