import type { CodeSimBackend } from '../metrics/fuzz.js';
import type { TextTokenizer } from '../model/tokenizer.js';

/** One evaluation item: the context is prefilled dense, the question follows it. */
export interface Sample {
  id: string;
  task: string;
  context: string;
  question: string;
  answers: string[];
  meta: Record<string, unknown>;
  /** Token ids given directly (perplexity windows), instead of text to tokenize. */
  ids?: { context: number[]; question: number[] };
  /** The prompt went through the model's chat template, which writes its own BOS. */
  chat?: boolean;
  /** Subgroups the benchmark also reports apart (LongBench-E length buckets; LongBench v2 difficulty and length). */
  groups?: string[];
}

export interface SampleOptions {
  tokenizer: TextTokenizer;
  /** Target prompt lengths in tokens of the model's own tokenizer. */
  lengths: number[];
  /** Needle depths in percent, where the task has a needle (passkey cycles through them). */
  depths: number[];
  /** Samples to generate per length. */
  perLength: number;
  seed: number;
  /** A haystack text of the user's (RULER's essay haystack); the shipped one otherwise. */
  haystackFile?: string;
  /** QA sources in their original formats: SQuAD v2 JSON (qa_1), HotpotQA JSON (qa_2). */
  qaFiles?: string[];
  /** A folder of LongBench's <dataset>.jsonl files; with longbenchE, its <dataset>_e.jsonl. */
  longbenchDir?: string;
  longbenchE?: boolean;
  /** Truncate LongBench prompts so that chat template and generation fit the length too (not the originals' way). */
  longbenchFit?: boolean;
  /** LongBench's code_sim backend: fuzzywuzzy on difflib (LongBench's own install) or on python-Levenshtein. */
  codeSim?: CodeSimBackend;
  /** LongBench v2's data.json (a list of questions). */
  longbenchV2File?: string;
  /** The text perplexity reads, and its dense prefix in tokens. */
  textFile?: string;
  pplPrefix?: number;
}

export interface Task {
  name: string;
  /** The benchmark it belongs to; tables average over a benchmark's tasks. */
  benchmark: string;
  /** Where the task's definition comes from. */
  source: string;
  metric: string;
  /** Tokens generated; 0 for a task scored on likelihoods (perplexity). */
  maxNewTokens: number;
  samples(opts: SampleOptions): Sample[];
  /**
   * 1 for a correct prediction, 0 for a wrong one, or a fraction for partial metrics; null for
   * one the benchmark leaves out of its score (LongBench v2 skips an empty response).
   */
  score(prediction: string, sample: Sample): number | null;
}
