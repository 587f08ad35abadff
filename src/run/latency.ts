/** The latency runner: prefill and per-token decode time at each context length and policy. */
import { QuestError } from '../errors.js';
import type { BenchConfig } from '../config/index.js';
import { chooseBackend, loadModel, native, type BackendChoice, type NativeModelSpec } from '../engine/index.js';
import { isModelFolder, openModelFolder } from '../model/index.js';
import { preset } from '../model/presets.js';
import { randint, rng } from '../tasks/rng.js';
import { checkPolicies, sequenceOptions } from './policies.js';
import { policyPoints } from './units.js';

export interface LatencyRow {
  model: string;
  backend: string;
  length: number;
  policy: string;
  budget: number | null;
  repeats: number;
  prefillMs: number;
  prefillTokensPerS: number;
  decodeMsPerStep: number;
  tokensPerStep: number | null;
  kvKiBPerStep: number;
  /** Weights and KV (with page metadata) a decode step reads over the copy bandwidth of the same run (GPU only). */
  floorMsPerStep: number | null;
  /** Dense decode time at the same length over this row's. */
  speedupVsDense: number | null;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

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
  stop(): void;
}

export interface LatencyResult {
  rows: LatencyRow[];
  backend: BackendChoice;
  /** Device-to-device copy bandwidth measured in this run (GPU only), bytes read plus written. */
  copyGBps: number | null;
}

export async function runLatency(cfg: BenchConfig, progress: LatencyProgress): Promise<LatencyResult> {
  checkPolicies(cfg);
  const backend = chooseBackend(cfg.device, cfg);
  const { spec, name } = benchSpec(cfg.model, cfg.seed);
  for (const L of cfg.lengths)
    if (L + cfg.decodeSteps > spec.maxPositions)
      throw new QuestError(`--lengths ${L}: with ${cfg.decodeSteps} decode steps this exceeds the model's ${spec.maxPositions} positions`);
  const model = await loadModel(spec, cfg.model, backend.use);
  // As bench-attention: a step's bytes at the copy rate (read plus written per second).
  const copyGBps = backend.use === 'cuda' ? await native().copyBandwidth() : null;
  const next = rng(cfg.seed);
  const points = policyPoints(cfg.policies, cfg.budgets);
  const rows: LatencyRow[] = [];
  progress.start(cfg.lengths.length * points.length);
  try {
    for (const length of cfg.lengths) {
      const context = Int32Array.from({ length }, () => randint(next, 0, spec.vocabSize - 1));
      const steps = Int32Array.from({ length: cfg.decodeSteps }, () => randint(next, 0, spec.vocabSize - 1));
      for (const point of points) {
        const prefill: number[] = [];
        const decode: number[] = [];
        let tokensPerStep: number | null = null;
        let kvBytes = 0;
        let metaBytes = 0;
        for (let r = 0; r < cfg.repeats; r++) {
          const seq = model.createSequence(sequenceOptions(cfg, point));
          let st;
          try {
            await seq.prefill(context);
            await seq.feed(steps);
            st = seq.stats();
          } finally {
            seq.close();
          }
          prefill.push(st.prefillMs);
          decode.push(st.decodeMs / st.decodeSteps);
          tokensPerStep = st.policySamples > 0 ? st.tokensRead / st.policySamples : null;
          kvBytes = st.kvBytesRead / st.decodeSteps;
          metaBytes = st.metaBytesRead / st.decodeSteps;
        }
        const row: LatencyRow = {
          model: name,
          backend: backend.use,
          length,
          policy: point.policy,
          budget: point.budget,
          repeats: cfg.repeats,
          prefillMs: median(prefill),
          prefillTokensPerS: (1000 * length) / median(prefill),
          decodeMsPerStep: median(decode),
          tokensPerStep,
          kvKiBPerStep: kvBytes / 1024,
          floorMsPerStep: copyGBps === null ? null : ((model.weightBytes + kvBytes + metaBytes) / (copyGBps * 1e9)) * 1e3,
          speedupVsDense: null,
        };
        rows.push(row);
        progress.step(row);
      }
    }
  } finally {
    progress.stop();
  }
  for (const r of rows) {
    const dense = rows.find((d) => d.length === r.length && d.policy === 'dense');
    r.speedupVsDense = dense ? dense.decodeMsPerStep / r.decodeMsPerStep : null;
  }
  return { rows, backend, copyGBps };
}
