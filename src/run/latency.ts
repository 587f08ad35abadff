/** The latency runner: prefill and per-token decode time at each context length and policy. */
import { QuestError } from '../errors.js';
import type { BenchConfig } from '../config/index.js';
import { cacheDoesNotFit, checkDevices, chooseBackend, loadModel, native, type BackendChoice, type BackendName, type NativeAttentionBenchRow, type NativeModel, type NativeModelSpec, type NativeSequence } from '../engine/index.js';
import { isModelFolder, openModelFolder } from '../model/index.js';
import { preset } from '../model/presets.js';
import { median } from '../report/tables.js';
import { randint, rng } from '../tasks/rng.js';
import { checkPolicies, sequenceOptions } from './policies.js';
import { runPool } from './pool.js';
import { policyPoints, type PolicyPoint } from './units.js';

export interface LatencyRow {
  model: string;
  backend: string;
  length: number;
  policy: string;
  budget: number | null;
  /** Sequences decoded together (fewer than --batch asked where no more fit: `batchAsked`). */
  batch: number;
  batchAsked: number;
  repeats: number;
  prefillMs: number;
  prefillTokensPerS: number;
  /** One step of the whole batch. */
  decodeMsPerStep: number;
  tokensPerStep: number | null;
  /** Summed over the batch. */
  kvKiBPerStep: number;
  /** Weights once and every sequence's KV (with page metadata) a decode step reads over the copy bandwidth of the same run (GPU only). */
  floorMsPerStep: number | null;
  /**
   * GPU: the host's time to issue a step (from its start to its last launch, a cache's growth
   * on the way included): near decodeMsPerStep, the GPU waited on the host. Null on the CPU.
   */
  issueMsPerStep: number | null;
  /** Dense decode time at the same length and batch over this row's. */
  speedupVsDense: number | null;
  /**
   * GPU, dense and Quest: one layer's attention step at this length on the model's attention
   * shape (quest bench-attention's kernels, graph-timed on a random cache), split into
   * Quest's estimate, its top-k and the attention itself; null elsewhere.
   */
  attentionUs: { estimate: number; topk: number; attention: number; total: number } | null;
  /** The prefill's arithmetic (prefillFlops) over its time. */
  prefillTflops: number;
  /** GPU: one layer's causal prefill attention over the whole length, alone (bench-attention's kernel, chunked as the engine runs it). */
  attentionPrefillMs: number | null;
  /** From tools/bench-torch.py --prefill on the same shape and length (bench-latency --torch): transformers' prefill, and one layer's causal SDPA. */
  torchPrefillMs: number | null;
  torchSdpaMs: number | null;
}

/**
 * Floating-point operations of a prefill of L tokens: every linear layer's multiply-adds, the
 * causal attention's L(L + 1) / 2 query-key pairs (q.k and p.v, head_dim each, every query
 * head), and the LM head of the last token.
 */
export function prefillFlops(spec: NativeModelSpec, L: number): number {
  const H = spec.hiddenSize, qd = spec.numHeads * spec.headDim, kvd = spec.numKvHeads * spec.headDim, I = spec.intermediateSize;
  const linear = H * (qd + 2 * kvd) + qd * H + H * 2 * I + I * H;
  const attention = 4 * spec.headDim * spec.numHeads * ((L * (L + 1)) / 2);
  return spec.numLayers * (2 * L * linear + attention) + 2 * H * spec.vocabSize;
}

/** What tools/bench-torch.py --prefill writes: one row per preset and length. */
export interface TorchPrefillRow {
  model: string;
  length: number;
  prefillMs: number;
  sdpaMs: number;
}

/** Fills each row's torch columns from torch's row of the same model and length, where it has one. */
export function addTorchPrefill(rows: LatencyRow[], torch: TorchPrefillRow[]): void {
  for (const r of rows) {
    const t = torch.find((x) => x.model === r.model && x.length === r.length);
    r.torchPrefillMs = t?.prefillMs ?? null;
    r.torchSdpaMs = t?.sdpaMs ?? null;
  }
}

export function benchSpec(model: string, seed: number): { spec: NativeModelSpec; name: string } {
  if (isModelFolder(model)) {
    const f = openModelFolder(model);
    return { spec: f.spec, name: f.name };
  }
  return { spec: { ...preset(model), tensors: [], randomWeights: true, randomSeed: seed }, name: model };
}

export interface LatencyProgress {
  start(total: number): void;
  step(row: LatencyRow): void;
  note(message: string): void;
  stop(): void;
}

export interface LatencyResult {
  rows: LatencyRow[];
  backend: BackendChoice;
  /** Device-to-device copy bandwidth of each GPU used (bytes read plus written), measured in this run; empty on the CPU. */
  copyGBps: number[];
}

/** One measurement: a context length, a policy point and a batch size, with its random tokens. */
export interface LatencyJob {
  length: number;
  point: PolicyPoint<number>;
  batch: number;
  context: Int32Array;
  steps: Int32Array;
}

/** A loaded model and, on a GPU, its copy rate: what measures jobs, in this process or a worker. */
export class LatencyBench {
  private constructor(
    private readonly cfg: BenchConfig,
    private readonly backend: BackendName,
    private readonly name: string,
    private readonly model: NativeModel,
    readonly copyGBps: number | null,
  ) {}

  static async open(cfg: BenchConfig, backend: BackendName, { spec, name } = benchSpec(cfg.model, cfg.seed)): Promise<LatencyBench> {
    const model = await loadModel(spec, cfg.model, backend);
    // As bench-attention: a step's bytes at the copy rate (read plus written per second).
    const copyGBps = backend === 'cuda' ? await native().copyBandwidth() : null;
    return new LatencyBench(cfg, backend, name, model, copyGBps);
  }

  /**
   * `job.batch` sequences prefilled with the context: on the CPU from one shared prefill (its
   * prefill is slow); on the GPU each its own, so that a batch holds and reads B caches in
   * memory as B requests would (shared pages would fit more and could be served from L2);
   * where a GPU cache cannot fit, as many as fit.
   */
  private async prefilled(job: LatencyJob): Promise<NativeSequence[]> {
    const opts = sequenceOptions(this.cfg, job.point);
    if (this.model.backend === 'cpu') return this.model.prefillShared(job.context, Array.from({ length: job.batch }, () => opts));
    const seqs: NativeSequence[] = [];
    for (let b = 0; b < job.batch; b++) {
      const seq = this.model.createSequence(opts);
      try {
        await seq.prefill(job.context);
      } catch (err) {
        seq.close();
        // The engine refuses a KV cache beyond free memory: keep those that fit.
        if (b > 0 && cacheDoesNotFit(err)) break;
        for (const s of seqs) s.close();
        throw err;
      }
      seqs.push(seq);
    }
    return seqs;
  }

  async run(job: LatencyJob): Promise<LatencyRow> {
    const { cfg } = this;
    const prefill: number[] = [];
    const decode: number[] = [];
    const issue: number[] = [];
    let tokensPerStep: number | null = null;
    let kvBytes = 0;
    let metaBytes = 0;
    let batch = job.batch;
    for (let r = 0; r < cfg.repeats; r++) {
      const seqs = await this.prefilled(job);
      let st;
      try {
        batch = seqs.length;
        await this.model.feedBatch(seqs, job.steps);
        st = seqs[0].stats();
      } finally {
        for (const s of seqs) s.close();
      }
      prefill.push(st.prefillMs);
      decode.push(st.decodeMs / st.decodeSteps);
      issue.push(st.issueMs / st.decodeSteps);
      tokensPerStep = st.policySamples > 0 ? st.tokensRead / st.policySamples : null;
      kvBytes = (batch * st.kvBytesRead) / st.decodeSteps;
      metaBytes = (batch * st.metaBytesRead) / st.decodeSteps;
    }
    return {
      model: this.name,
      backend: this.backend,
      length: job.length,
      policy: job.point.policy,
      budget: job.point.budget,
      batch,
      batchAsked: job.batch,
      repeats: cfg.repeats,
      prefillMs: median(prefill),
      prefillTokensPerS: (1000 * job.length) / median(prefill),
      decodeMsPerStep: median(decode),
      tokensPerStep,
      kvKiBPerStep: kvBytes / 1024,
      floorMsPerStep: this.copyGBps === null ? null : ((this.model.weightBytes + kvBytes + metaBytes) / (this.copyGBps * 1e9)) * 1e3,
      issueMsPerStep: this.model.backend === 'cuda' ? median(issue) : null,
      speedupVsDense: null,
      attentionUs: null,
      prefillTflops: 0,
      attentionPrefillMs: null,
      torchPrefillMs: null,
      torchSdpaMs: null,
    };
  }
}

/**
 * The attention kernels alone on the model's shape, where they serve it (the engine's
 * gpuShapes); Quest's only where the benchmark times what the run runs (pages of 16, one
 * selection per KV head).
 */
async function attentionSplit(cfg: BenchConfig, spec: NativeModelSpec): Promise<NativeAttentionBenchRow[]> {
  const { headDims, groups } = native().backendInfo().gpuShapes;
  if (!headDims.includes(spec.headDim) || !groups.includes(spec.numHeads / spec.numKvHeads)) return [];
  const questTimed = cfg.policies.includes('quest') && cfg.pageSize === 16 && cfg.questGqa === 'group';
  const budgets = questTimed ? cfg.budgets : [];
  const res = await native().benchAttention({
    heads: spec.numHeads,
    kvHeads: spec.numKvHeads,
    headDim: spec.headDim,
    pageSize: 16,
    lengths: cfg.lengths,
    budgets,
    repeats: 50,
    seed: cfg.seed,
    prefill: true,
  });
  return res.rows;
}

const pointKey = (j: { length: number; point: PolicyPoint<number>; batch: number }) => `${j.length} ${j.point.policy} ${j.point.budget ?? 'all'} x${j.batch}`;

export async function runLatency(cfg: BenchConfig, progress: LatencyProgress): Promise<LatencyResult> {
  checkPolicies(cfg);
  const backend = chooseBackend(cfg.device, cfg);
  checkDevices(cfg.devices, backend);
  const model = benchSpec(cfg.model, cfg.seed);
  const { spec } = model;
  for (const L of cfg.lengths)
    if (L + cfg.decodeSteps > spec.maxPositions)
      throw new QuestError(`--lengths ${L}: with ${cfg.decodeSteps} decode steps this exceeds the model's ${spec.maxPositions} positions`);
  const next = rng(cfg.seed);
  const points = policyPoints(cfg.policies, cfg.budgets);
  const jobs: LatencyJob[] = cfg.lengths.flatMap((length) => {
    const context = Int32Array.from({ length }, () => randint(next, 0, spec.vocabSize - 1));
    const steps = Int32Array.from({ length: cfg.decodeSteps }, () => randint(next, 0, spec.vocabSize - 1));
    return points.flatMap((point) => cfg.batch.map((batch) => ({ length, point, batch, context, steps })));
  });
  // Timed before any model runs, so nothing else shares the GPU meanwhile.
  const attention = backend.use === 'cuda' ? await attentionSplit(cfg, spec) : [];
  const rows: LatencyRow[] = [];
  const copyGBps: number[] = [];
  const keep = (row: LatencyRow) => {
    rows.push(row);
    progress.step(row);
  };
  progress.start(jobs.length);
  try {
    if (cfg.workers > 1 || cfg.devices.length > 0) {
      await runPool<BenchConfig, LatencyJob, LatencyRow & { copyGBps: number | null }>(
        {
          worker: 'latency-worker.js',
          init: { ...cfg, workers: 1, devices: [], device: backend.use },
          workers: cfg.workers,
          devices: cfg.devices,
          key: pointKey,
          onResult: ({ copyGBps: gbps, ...row }) => {
            if (gbps !== null && !copyGBps.includes(gbps)) copyGBps.push(gbps);
            keep(row);
          },
          note: progress.note,
        },
        jobs,
      );
    } else {
      const bench = await LatencyBench.open(cfg, backend.use, model);
      if (bench.copyGBps !== null) copyGBps.push(bench.copyGBps);
      for (const job of jobs) keep(await bench.run(job));
    }
  } finally {
    progress.stop();
  }
  // Workers finish in any order: the table follows the jobs' order.
  const order = new Map(jobs.map((j, i) => [pointKey(j), i]));
  const key = (r: LatencyRow) => pointKey({ length: r.length, point: r, batch: r.batchAsked });
  rows.sort((a, b) => order.get(key(a))! - order.get(key(b))!);
  for (const r of rows) {
    if (r.batch < r.batchAsked)
      progress.note(`--batch ${r.batchAsked}: at ${r.length} tokens only ${r.batch} sequences of ${r.policy} fit beside the weights; measured at batch ${r.batch}`);
    const dense = rows.find((d) => d.length === r.length && d.policy === 'dense' && d.batchAsked === r.batchAsked);
    r.speedupVsDense = dense ? dense.decodeMsPerStep / r.decodeMsPerStep : null;
    // A Quest budget that covers the context reads every page without selecting: the dense step.
    const sparse = r.policy === 'quest' && r.budget !== null && r.budget < r.length;
    const a = attention.find((x) => x.length === r.length && (sparse ? x.policy === 'quest' && x.budget === r.budget : x.policy === 'dense'));
    r.attentionUs = a && (r.policy === 'dense' || r.policy === 'quest') ? { estimate: a.estimateUs, topk: a.topkUs, attention: a.attentionUs, total: a.totalUs } : null;
    r.prefillTflops = prefillFlops(spec, r.length) / (r.prefillMs * 1e9);
    const p = attention.find((x) => x.length === r.length && x.policy === 'prefill');
    r.attentionPrefillMs = p ? p.totalUs / 1000 : null;
  }
  return { rows, backend, copyGBps };
}
