/**
 * What RULER's generators share, as of the pinned commit below: prompt assembly from the
 * templates and answer prefixes (scripts/data/synthetic/constants.py, scripts/data/prepare.py,
 * scripts/pred/call_api.py), token counting, the binary search for the haystack size and the
 * sample loop that steps it down (niah.py, variable_tracking.py, common_words_extraction.py,
 * qa.py: generate_samples), and the essay haystack.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../config/index.js';
import { QuestError } from '../../errors.js';
import type { TextTokenizer } from '../../model/tokenizer.js';

/** NVIDIA/RULER at this commit is the benchmark every RULER task here follows. */
export const RULER_COMMIT = 'c3f5e3b4f87f97e048793bb510a3a6b19a46bf3a';

/** The prompt split where the context ends: the context is prefilled, the question follows it. */
export interface Prompt {
  context: string;
  question: string;
}

/**
 * Python's str.format for a RULER template's named fields: one pass, so braces or `$` in a
 * value stay as they are. Fields the template lacks are ignored, as str.format ignores them.
 */
export function format(template: string, vars: Record<string, string | number>): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    if (!(name in vars)) throw new Error(`RULER template field {${name}} has no value`);
    return String(vars[name]);
  });
}

/**
 * The text RULER sends a base model: prepare.py's 'base' model template ("{task_template}")
 * then the answer prefix, filled by the generator's template.format, sent as input +
 * answer_prefix (call_api.py). `template` is the task template followed by its answer prefix;
 * `before` is text put in front (vt's and cwe's solved examples). The split falls after the
 * line that holds the end of the context.
 */
export function rulerPrompt(template: string, vars: Record<string, string | number>, before = ''): Prompt {
  const at = template.indexOf('{context}');
  const head = format(template.slice(0, at), vars);
  const tail = format(template.slice(at + '{context}'.length), vars);
  const cut = tail.indexOf('\n') + 1;
  return { context: before + head + String(vars.context) + tail.slice(0, cut), question: tail.slice(cut) };
}

export const promptText = (p: Prompt): string => p.context + p.question;

/** RULER's token count: TOKENIZER.text_to_tokens(input_text), the whole text without a BOS. */
export const rulerTokens = (tok: TextTokenizer, text: string): number => tok.encode(text).length;

/**
 * RULER's search for the haystack size: the last midpoint of [lower, upper] that fitted,
 * or null when none did (RULER then goes on with `lower` and never finishes).
 */
export function binarySearch(lower: number, upper: number, fits: (n: number) => boolean): number | null {
  let best: number | null = null;
  while (lower <= upper) {
    const mid = Math.floor((lower + upper) / 2);
    if (fits(mid)) {
      best = mid;
      lower = mid + 1;
    } else upper = mid - 1;
  }
  return best;
}

/** The search's upper bound in niah.py, variable_tracking.py and qa.py: three times the size
 * the tokens of one draw at `incremental` units suggest, and at least twice `incremental`. */
export function upperBound(length: number, incremental: number, probeTokens: number): number {
  return Math.max(Math.trunc((length / (probeTokens / incremental)) * 3), incremental * 2);
}

/** The size the search found, or a clear error where RULER would loop forever. */
export function searched(n: number | null, task: string, length: number): number {
  if (n === null) throw new QuestError(`${task}: --lengths ${length} is too short for the task's prompt`);
  return n;
}

// RULER redraws forever at the smallest size; past this many draws there the length is too short.
const FLOOR_DRAWS = 20;

/**
 * RULER's sample loop: draw at size n; while the draw does not fit (or fails, as a repeated
 * variable name makes vt's fail), step n down by `incremental`, not below it, and draw again.
 */
export function drawFitting<T>(task: string, length: number, n: number, incremental: number, draw: (n: number) => T | null, fits: (s: T) => boolean): T & { n: number } {
  let used = n;
  for (let atFloor = 0; atFloor < FLOOR_DRAWS; ) {
    const s = draw(used);
    if (s !== null && fits(s)) return { ...s, n: used };
    if (used > incremental) used -= incremental;
    else atFloor++;
  }
  throw new QuestError(`${task}: --lengths ${length} is too short: no draw at the smallest haystack fits`);
}

export const defaultHaystack = path.join(projectRoot, 'datasets', 'haystack', 'kjv.txt');

/**
 * The essay haystack as a word list, as niah.py splits it (re.sub(r'\s+', " ", essay).split(" ")).
 * RULER reads Paul Graham's essays (json/PaulGrahamEssays.json, {"text": ...}); a plain text
 * file works too. The default is the project's own public-domain text.
 */
export function haystackWords(file: string | undefined): { words: string[]; source: string } {
  const src = file ?? defaultHaystack;
  if (!existsSync(src)) throw new QuestError(`--haystack-file ${src}: no such file`);
  let text = readFileSync(src, 'utf8');
  if (src.endsWith('.json')) {
    try {
      text = String((JSON.parse(text) as { text: unknown }).text);
    } catch {
      throw new QuestError(`--haystack-file ${src}: not JSON with a "text" field, as RULER's PaulGrahamEssays.json is`);
    }
  }
  const words = text.replace(/\s+/g, ' ').split(' ');
  if (words.length < 100) throw new QuestError(`--haystack-file ${src}: too short to be a haystack`);
  return { words, source: file ? path.resolve(file) : 'datasets/haystack/kjv.txt (King James Bible, public domain)' };
}

/** The first n words of the haystack, repeated as often as needed (niah.py). */
export function haystackText(words: string[], n: number): string {
  const out: string[] = [];
  while (out.length < n) out.push(...words.slice(0, n - out.length));
  return out.join(' ');
}

/**
 * Sentences of a text. RULER uses NLTK's punkt (sent_tokenize), which is not available here;
 * this splits after . ! or ? (and a closing quote) before whitespace, as punkt does on plain
 * prose without abbreviations.
 */
export function sentences(text: string): string[] {
  return text
    .trim()
    .split(/(?<=[.!?]['"\u2019\u201d)]?)\s+/)
    .filter((s) => s.length > 0);
}

/** The noise sentence of RULER's noise haystack and variable tracking (niah.py, variable_tracking.py). */
export const NOISE = 'The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.';

/** niah.py and variable_tracking.py: DEPTHS = np.round(np.linspace(0, 100, num=40)).astype(int). */
export const DEPTHS = Array.from({ length: 40 }, (_, i) => Math.round((100 * i) / 39));

/** Where RULER inserts a needle among `count` sentences: int(len(document_sents) * (depth / 100)). */
export const depthIndex = (count: number, depth: number): number => Math.trunc(count * (depth / 100));
