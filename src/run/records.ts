/** Per-sample records, appended to a JSONL file as each unit finishes. */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { QuestError } from '../errors.js';

export interface ReadStats {
  /** Mean tokens read per KV head per governed layer per decode step. */
  tokensPerStep: number | null;
  kvBytesPerStep: number | null;
  metaBytesPerStep: number | null;
  selectMs: number;
  prefillMs: number;
  decodeMsPerStep: number | null;
}

export interface EvalRecord {
  key: string;
  task: string;
  benchmark: string;
  /** The benchmark's category of the task (LongBench), for its category averages. */
  category: string | null;
  /** Subgroups reported apart (LongBench-E buckets, LongBench v2 difficulty and length). */
  groups: string[];
  sampleId: string;
  length: number | null;
  depth: number | null;
  contextTokens: number;
  questionTokens: number;
  policy: string;
  /** As given: tokens, or a fraction of the prompt ("0.05c"); null for dense. */
  budget: number | string | null;
  /** The budget in tokens for this sample's prompt (absent in records from before fractions). */
  budgetTokens?: number | null;
  questionMode: 'decode' | 'prefill';
  /** Question tokens fed one decode step at a time under the policy. */
  questionTokensFed: number;
  /** Tokens generated (absent in records from before it was kept, and for perplexity). */
  generatedTokens?: number;
  /** Long-generation tasks: what ended the generation. */
  stoppedBy?: 'eos' | 'stop-string' | 'length';
  prediction: string;
  answers: string[];
  /** The task's metric: a share in [0, 1] for accuracy-like metrics, perplexity for perplexity. */
  metric: string;
  /** null: left out of the score, as the benchmark leaves it out (see Task.score). */
  score: number | null;
  /** Perplexity tasks: negative log-likelihood summed per position bucket of the fed tokens. */
  nll?: { from: number; to: number; sum: number; tokens: number }[];
  stats: ReadStats;
  /**
   * --diagnostics only: over the record's decode steps x governed layers x KV heads (`samples`),
   * the relative L2 error of the policy's attention output against dense attention (mean, 90th
   * percentile) and the dense attention mass the policy read (mean, 10th percentile); null
   * without decode steps.
   */
  diagnostics?: { samples: number; l2Mean: number | null; l2P90: number | null; recallMean: number | null; recallP10: number | null };
}

/**
 * The records already in `file`. A run killed mid-write leaves at most a torn last line:
 * it is cut off so appending resumes cleanly; a bad line anywhere else is damage, named.
 */
export function readRecords(file: string): EvalRecord[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const out: EvalRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].trim()) continue;
    try {
      out.push(JSON.parse(lines[i]) as EvalRecord);
    } catch {
      if (i !== lines.length - 1) throw new QuestError(`${file}:${i + 1}: not a JSON record`);
      writeFileSync(file, lines.slice(0, i).join('\n') + (i > 0 ? '\n' : ''));
    }
  }
  return out;
}

export function appendRecord(file: string, record: EvalRecord): void {
  appendFileSync(file, JSON.stringify(record) + '\n');
}
