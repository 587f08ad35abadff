// InfiniteBench: its scorers against the values its own compute_scores.py gives
// (test/fidelity/infinitebench/cases.json; its README says how it was made), its prompts and
// middle truncation against templates and token arithmetic written here from its source, and
// the refusals of bad files.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '../src/model/tokenizer.js';
import { task } from '../src/tasks/index.js';
import { defaultModel, quest, repo, tempDirs } from './helpers.js';

const temp = tempDirs();
const fixtures = path.join(repo, 'datasets', 'infinitebench-fixtures');
// compute_scores.py's task names -> ours.
const OURS: Record<string, string> = {
  passkey: 'retrieve_passkey', number_string: 'retrieve_number', kv_retrieval: 'retrieve_kv', longdialogue_qa_eng: 'en_dia',
  longbook_choice_eng: 'en_mc', code_debug: 'code_debug', math_find: 'math_find', longbook_qa_eng: 'en_qa', longbook_sum_eng: 'en_sum',
};
const cases = (JSON.parse(readFileSync(path.join(repo, 'test', 'fidelity', 'infinitebench', 'cases.json'), 'utf8')) as {
  cases: { task: string; prediction: string; label: unknown; score: number }[];
}).cases;

describe("InfiniteBench's scorers", () => {
  it.each(cases.map((c) => [c.task, c.prediction, c]))('%s %j', (_t, _p, c) => {
    const sample = { id: 'x', task: OURS[c.task], context: '', question: '', answers: [], meta: { label: c.label } };
    expect(task(OURS[c.task]).score(c.prediction, sample)).toBeCloseTo(c.score, 12);
  });
});

describe("InfiniteBench's prompts", () => {
  const tok = loadTokenizer(defaultModel);
  const rows = (file: string) => readFileSync(path.join(fixtures, `${file}.jsonl`), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const opts = (L: number) => ({ tokenizer: tok, lengths: [L], depths: [], perLength: 10, seed: 0, infinitebenchDir: fixtures });

  it("fills prompt.py's yarn_mistral template and splits the question off after {context}", () => {
    const r = rows('passkey')[0];
    const [s] = task('retrieve_passkey').samples(opts(4096));
    const prompt = `There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you about the important information.\n\n${r.context}\n\n${r.input}\n\nThe pass key is`;
    expect(s.context + s.question).toBe(tok.decode(tok.encode(prompt, true)));
    expect(s.question).toBe(`\n\n${r.input}\n\nThe pass key is`);
    expect(s.meta.truncated).toBe(false);
  });

  it("builds Math.Find's prefix from the input's \"The ... of\"", () => {
    const [s] = task('math_find').samples(opts(4096));
    expect(s.context.startsWith('What is the largest number in the following list?\n\n[')).toBe(true);
  });

  it('keeps the first and last length // 2 tokens of a longer prompt, decoded once', () => {
    const r = rows('longbook_qa_eng')[0];
    const prompt = `Read the book and answer the question. Be very concise in your answer.\n\n${r.context}\n\nQuestion: ${r.input}\nAnswer:`;
    const ids = tok.encode(prompt, true);
    for (const L of [101, 128]) {
      const [s] = task('en_qa').samples(opts(L));
      const half = Math.floor(L / 2);
      expect(ids.length).toBeGreaterThan(L);
      expect(s.context + s.question).toBe(tok.decode([...ids.slice(0, half), ...ids.slice(ids.length - half)]));
      expect(s.meta.truncated).toBe(true);
    }
  });

  it("labels En.MC and Code.Debug as get_answer does: [option, letter]", () => {
    expect(task('en_mc').samples(opts(4096))[0].meta.label).toEqual(['A silver whistle', 'B']);
    expect(task('code_debug').samples(opts(4096))[0].meta.label).toEqual(['broken', 'B']);
  });
});

describe('InfiniteBench end to end and bad input', () => {
  it('runs every task of the fixtures folder and averages the benchmark', async () => {
    const out = temp();
    const r = await quest(['eval', '--tasks', 'infinitebench', '--infinitebench-dir', fixtures, '--lengths', '256', '--limit', '1', '--output-path', out]);
    expect(r.exitCode).toBe(0);
    const rows = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')).rows;
    expect(rows.map((x: { task: string }) => x.task)).toEqual([...Object.values(OURS)].sort().concat('infinitebench (avg of 9)'));
  });

  it('names the file, line and field a row lacks, and a folder without its files', async () => {
    const dir = temp();
    writeFileSync(path.join(dir, 'passkey.jsonl'), '{"context": "x", "input": "y", "answer": ["1"]}\n{"context": "x", "answer": ["1"]}\n');
    const r = await quest(['eval', '--tasks', 'retrieve_passkey', '--infinitebench-dir', dir]);
    expect(r.stderr.trim()).toBe(`quest: ${path.join(dir, 'passkey.jsonl')}:2: missing field "input"`);
    const none = await quest(['eval', '--tasks', 'infinitebench', '--infinitebench-dir', temp()]);
    expect(none.stderr.trim()).toMatch(/^quest: --infinitebench-dir \S+: holds none of InfiniteBench's <task>\.jsonl files$/);
  });
});
