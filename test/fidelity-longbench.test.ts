// LongBench v1 and v2 prompts, truncation and scoring flow against the originals' own Python,
// run on edge cases; test/fidelity/longbench/README.md says how expected.json was made.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TextTokenizer } from '../src/model/tokenizer.js';
import { TASKS } from '../src/tasks/index.js';
import { truncateV1, truncateV2 } from '../src/tasks/longbench/prompt.js';
import { LONGBENCH_TASKS, firstLine, lengthBucket } from '../src/tasks/longbench/v1.js';
import { extractChoice, longbenchV2 } from '../src/tasks/longbench/v2.js';
import type { Sample, SampleOptions } from '../src/tasks/types.js';
import { repo, tempDir } from './helpers.js';

interface Split {
  text: string;
  question: string;
}
interface Truncation {
  prompt: string;
  maxLength: number;
  text: string;
}
const expected = JSON.parse(readFileSync(path.join(repo, 'test', 'fidelity', 'longbench', 'expected.json'), 'utf8')) as {
  v1: {
    maxlen: Record<string, number>;
    rows: Record<string, unknown>[];
    prompts: Record<string, Split[]>;
    samples: (Split & { dataset: string; row: number; length: number })[];
    truncation: Truncation[];
    firstLine: { prediction: string; processed: string }[];
    buckets: { length: number; bucket: string }[];
  };
  v2: {
    items: Record<string, string>[];
    prompts: Split[];
    samples: (Split & { item: number; length: number })[];
    truncation: Truncation[];
    judged: { output: string; answer: string; skipped: boolean; pred?: string | null; judge?: boolean }[];
  };
};

// The script's tokenizer: a token per code point, BOS added with special tokens, decode
// skipping BOS and dropping one leading space, as SentencePiece's decoder does.
const BOS = 0x110000;
const fake: TextTokenizer = {
  file: 'fake',
  chat: null,
  encode: (text, special = false) => [...(special ? [BOS] : []), ...Array.from(text, (c) => c.codePointAt(0)!)],
  decode: (ids) => {
    const s = Array.from(ids, (i) => (i === BOS ? '' : String.fromCodePoint(i))).join('');
    return s.startsWith(' ') ? s.slice(1) : s;
  },
};

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));
for (const name of Object.keys(expected.v1.prompts)) writeFileSync(path.join(dir, `${name}.jsonl`), expected.v1.rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
const v2File = path.join(dir, 'data.json');
writeFileSync(v2File, JSON.stringify(expected.v2.items));

const opts = (lengths: number[]): SampleOptions => ({ tokenizer: fake, lengths, depths: [50], seed: 0, perLength: 1000, longbenchDir: dir, longbenchV2File: v2File });
const joined = (s: Sample): Split => ({ text: s.context + s.question, question: s.question });
const NO_TRUNCATION = 1e9;

describe('LongBench v1 against LongBench/pred.py and eval.py', () => {
  it('has every dataset of dataset2prompt.json with dataset2maxlen.json generation length', () => {
    expect(LONGBENCH_TASKS.map((t) => t.name).sort()).toEqual(Object.keys(expected.v1.maxlen).sort());
    for (const [name, n] of Object.entries(expected.v1.maxlen)) expect(TASKS[name].maxNewTokens, name).toBe(n);
  });

  it('fills every template as str.format does, context and question split at the template tail', () => {
    for (const [name, want] of Object.entries(expected.v1.prompts)) {
      const got = TASKS[name].samples(opts([NO_TRUNCATION]));
      expect(got.map(joined), name).toEqual(want);
      expect(got.every((s) => s.meta.truncated === false)).toBe(true);
    }
  });

  it('truncates in the middle as pred.py does: int(max_length/2) tokens each side, each half decoded alone', () => {
    for (const c of expected.v1.truncation) expect(truncateV1(fake, c.prompt, c.maxLength).text, `${JSON.stringify(c.prompt)} at ${c.maxLength}`).toBe(c.text);
  });

  it('builds the truncated samples of pred.py, max_length being the length', () => {
    for (const c of expected.v1.samples) {
      const s = TASKS[c.dataset].samples(opts([c.length])).find((x) => x.id === `${c.dataset}-L${c.length}-r${c.row}`)!;
      expect(joined(s), `${c.dataset} row ${c.row} at ${c.length}`).toEqual({ text: c.text, question: c.question });
    }
  });

  it("keeps eval.py's first line of the few-shot predictions and LongBench-E's buckets", () => {
    for (const c of expected.v1.firstLine) expect(firstLine(c.prediction), JSON.stringify(c.prediction)).toBe(c.processed);
    for (const c of expected.v1.buckets) expect(lengthBucket(c.length), String(c.length)).toBe(c.bucket);
  });
});

describe('LongBench v2 against pred.py and result.py', () => {
  it('fills prompts/0shot.txt as the chain of str.replace does, values stripped as str.strip does', () => {
    expect(longbenchV2.samples(opts([NO_TRUNCATION])).map(joined)).toEqual(expected.v2.prompts);
  });

  it('truncates as query_llm does: max_len//2 tokens, then -max_len//2 from the end, decoded once', () => {
    for (const c of expected.v2.truncation) expect(truncateV2(fake, c.prompt, c.maxLength).text, `${JSON.stringify(c.prompt)} at ${c.maxLength}`).toBe(c.text);
  });

  it('builds the truncated samples of pred.py, max_len being the length', () => {
    for (const c of expected.v2.samples) {
      const s = longbenchV2.samples(opts([c.length])).find((x) => x.id === `longbench_v2-L${c.length}-v${c.item}`)!;
      expect(joined(s), `item ${c.item} at ${c.length}`).toEqual({ text: c.text, question: c.question });
    }
  });

  it('leaves an empty response out, counts one without a choice as wrong', () => {
    const [sample] = longbenchV2.samples(opts([NO_TRUNCATION]));
    for (const c of expected.v2.judged) {
      const score = longbenchV2.score(c.output, { ...sample, answers: [c.answer] });
      expect(score, JSON.stringify(c.output)).toBe(c.skipped ? null : c.judge ? 1 : 0);
      if (!c.skipped) expect(extractChoice(c.output), JSON.stringify(c.output)).toBe(c.pred);
    }
  });
});
