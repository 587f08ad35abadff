// LongBench's metrics on worked examples, and its prompt and truncation path on the fixtures.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { classification, codeSim, countScore, fuzzRatio, normalizeAnswer, qaF1, qaF1Zh, retrievalScore, retrievalZhScore, rougeL, rougeZh } from '../src/metrics/longbench.js';
import { loadTokenizer } from '../src/model/tokenizer.js';
import { EVAL_COLUMNS, markdown, summarize } from '../src/report/tables.js';
import type { EvalRecord } from '../src/run/records.js';
import { TASKS } from '../src/tasks/index.js';
import { extractChoice } from '../src/tasks/longbench/v2.js';
import { defaultModel, quest, repo, tempDir } from './helpers.js';

const fixtures = path.join(repo, 'datasets', 'longbench-fixtures');
const tok = loadTokenizer(defaultModel);

describe('LongBench metrics', () => {
  it('qa_f1 normalises case, punctuation and articles, then scores token overlap', () => {
    expect(normalizeAnswer('The  Bronze, bell!')).toBe('bronze bell');
    // "bronze bell" vs "old bronze bell": P = 1, R = 2/3, F1 = 0.8
    expect(qaF1('The Bronze bell!', 'the old bronze bell')).toBeCloseTo(0.8, 12);
    expect(qaF1('', 'eleven')).toBe(0);
    expect(qaF1('eleven eleven', 'eleven')).toBeCloseTo(2 / 3, 12);
  });

  it('qa_f1_zh cuts with jieba and drops Chinese punctuation', () => {
    expect(qaF1Zh('杭州', '杭州')).toBe(1);
    // ["在", "杭州"] vs ["杭州"]: P = 1/2, R = 1
    expect(qaF1Zh('在杭州。', '杭州')).toBeCloseTo(2 / 3, 12);
    expect(qaF1Zh('', '杭州')).toBe(0);
  });

  it('ROUGE-L is the summary-level union LCS over word sets, as the rouge package computes it', () => {
    // LCS words {the, cat, on, mat}: 4 of 5 distinct words each side
    expect(rougeL('the cat sat on the mat', 'the cat lay on the mat')).toBeCloseTo(0.8, 6);
    expect(rougeL('', 'a summary.')).toBe(0);
    expect(rougeL('...', 'a summary.')).toBe(0);
    expect(rougeL('Bells remain. Lamps were new', 'Lamps were new. Bells remain')).toBeCloseTo(1, 6);
    expect(rougeZh('会议讨论了交通', '会议讨论了交通')).toBeCloseTo(1, 6);
  });

  it('classification keeps its quirks: a class inside the true class is dropped, ties split the score', () => {
    const classes = ['City', 'Number', 'Number of something', 'Individual'];
    expect(classification('Type: Individual', 'Individual', classes)).toBe(1);
    expect(classification('City or Individual', 'Individual', classes)).toBe(0.5);
    expect(classification('Number of something', 'Number of something', classes)).toBe(1);
    expect(classification('nothing', 'City', classes)).toBe(0);
  });

  it('count and retrieval score the share of numbers that are right', () => {
    expect(countScore('There are 3 unique paragraphs: 3', '3')).toBe(1);
    expect(countScore('3 or 4', '3')).toBe(0.5);
    expect(countScore('none', '3')).toBe(0);
    expect(retrievalScore('Paragraph 3', 'Paragraph 3')).toBe(1);
    expect(retrievalScore('Paragraph 3 and 13', 'Paragraph 3')).toBe(0.5);
    expect(retrievalZhScore('段落3', '段落3')).toBe(1);
  });

  it('code_sim reads the first line free of comments and scores fuzz.ratio', () => {
    expect(fuzzRatio('abcd', 'abce')).toBe(75);
    expect(fuzzRatio('', 'x')).toBe(0);
    expect(codeSim('\n# area\n    return 2 * (width + height)\n', '    return 2 * (width + height)')).toBe(1);
  });

  it('LongBench v2 extracts the choice as pred.py does', () => {
    expect(extractChoice('The correct answer is (B).')).toBe('B');
    expect(extractChoice('**The correct answer is C**')).toBe('C');
    expect(extractChoice('I think B')).toBeNull();
  });
});

describe('LongBench prompts', () => {
  const opts = { tokenizer: tok, depths: [50], seed: 0, perLength: 10, longbenchDir: fixtures };

  it('fills the official template and splits the question off the end', () => {
    const [s] = TASKS.narrativeqa.samples({ ...opts, lengths: [8192] });
    expect(s.context.startsWith('You are given a story, which can be either a novel or a movie script, and a question.')).toBe(true);
    expect(s.question).toBe('\n\nNow, answer the question based on the story asconcisely as you can, using a single phrase if possible. Do not provide any explanation.\n\nQuestion: What did Mara ring to guide the boats home?\n\nAnswer:');
    expect(s.meta.truncated).toBe(false);
  });

  it('truncates in the middle to the length, as max_length, or with --longbench-fit to leave room for the generation', () => {
    for (const [fit, budget] of [[false, 512], [true, 512 - 128]] as const) {
      for (const s of TASKS.narrativeqa.samples({ ...opts, lengths: [512], longbenchFit: fit })) {
        expect(s.meta.truncated).toBe(true);
        const n = tok.encode(s.context, true).length + tok.encode(s.question).length;
        // the budget counts BOS as pred.py does; give or take the re-tokenised seams
        expect(Math.abs(n - budget)).toBeLessThanOrEqual(4);
        expect(s.context.startsWith('You are given a story')).toBe(true);
        expect(s.question.endsWith('Answer:')).toBe(true);
      }
    }
    expect(() => TASKS.gov_report.samples({ ...opts, lengths: [512], longbenchFit: true })).toThrow(
      '--lengths 512: gov_report generates up to 512 tokens, which leaves --longbench-fit no room for the prompt',
    );
  });

  it('takes --longbench-fit from the command line', async () => {
    const r = await quest(['eval', '--tasks', 'gov_report', '--longbench-dir', fixtures, '--lengths', '512', '--longbench-fit']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe('quest: --lengths 512: gov_report generates up to 512 tokens, which leaves --longbench-fit no room for the prompt');
  });

  it("reads LongBench-E's datasets only, grouped by eval.py's length buckets", () => {
    const e = { ...opts, lengths: [4096], longbenchE: true };
    expect(TASKS.qasper.samples(e).map((s) => s.groups)).toEqual([['0-4k'], ['4-8k'], ['8k+']]);
    expect(() => TASKS.narrativeqa.samples(e)).toThrow('--longbench-e: narrativeqa is not in LongBench-E');
  });

  it('keeps the first line of few-shot predictions and scores the best answer', () => {
    const [s] = TASKS.trec.samples({ ...opts, lengths: [2048] });
    expect(TASKS.trec.score('\nIndividual\nCity', s)).toBe(1);
    const [n] = TASKS.narrativeqa.samples({ ...opts, lengths: [2048] });
    expect(TASKS.narrativeqa.score('a bell', n)).toBe(1);
  });

  it("scores classification against the file's last all_classes, as eval.py's loop leaves it", () => {
    const dir = tempDir();
    const row = (all_classes: string[], _id: string) => JSON.stringify({ input: 'Q?', context: 'c', answers: ['City'], length: 10, all_classes, _id });
    writeFileSync(path.join(dir, 'trec.jsonl'), `${row(['City', 'Number'], 'a')}\n${row(['City', 'Town'], 'b')}\n`);
    const [first] = TASKS.trec.samples({ ...opts, longbenchDir: dir, lengths: [2048] });
    // With the first row's own classes "Town" matches nothing and "City" scores 1; with the last row's, both match: 1/2.
    expect(TASKS.trec.score('City Town', first)).toBe(0.5);
  });

  it('names the file and line of malformed JSONL and keeps the records already written', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'narrativeqa.jsonl'), '{"input": "q", "context": "c", "answers": ["a"], "length": 1, "all_classes": null, "_id": "1"}\n{"input": "q", "context": "c"}\n');
    const out = path.join(dir, 'out');
    let r = await quest(['eval', '--tasks', 'narrativeqa', '--longbench-dir', fixtures, '--lengths', '1024', '--limit', '1', '--output-path', out]);
    expect(r.exitCode).toBe(0);
    r = await quest(['eval', '--tasks', 'narrativeqa', '--longbench-dir', dir, '--lengths', '1024', '--output-path', out]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(`quest: ${path.join(dir, 'narrativeqa.jsonl')}:2: missing field "answers", "length", "all_classes", "_id"`);
    writeFileSync(path.join(dir, 'narrativeqa.jsonl'), '{"input": "q", \n');
    r = await quest(['eval', '--tasks', 'narrativeqa', '--longbench-dir', dir, '--lengths', '1024', '--output-path', path.join(dir, 'out2')]);
    expect(r.stderr.trim()).toBe(`quest: ${path.join(dir, 'narrativeqa.jsonl')}:1: not valid JSON`);
  });

  it('runs on the fixtures from the command line with per-dataset, category and overall rows', async () => {
    const out = tempDir();
    const r = await quest(['eval', '--tasks', 'longbench', '--longbench-dir', fixtures, '--lengths', '1024', '--output-path', out]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/\| longbench \(avg of 6\) \| 1024 \|/);
    expect(r.stdout).toMatch(/\| longbench: single-doc QA \(avg of 2\) \|/);
    expect(r.stdout).toMatch(/\| multifieldqa_zh \| 1024 \|/);
  });
});

describe('LongBench v2 scores', () => {
  it('leaves skipped records out of the accuracy and counts them beside n', () => {
    const rec = (key: string, score: number | null): EvalRecord => ({
      key, task: 'longbench_v2', benchmark: 'longbench_v2', category: null, groups: ['easy'], sampleId: key, length: 1024, depth: null,
      contextTokens: 1, questionTokens: 1, policy: 'dense', budget: null, questionMode: 'decode', questionTokensFed: 1, prediction: '', answers: ['A'],
      metric: 'accuracy', score, stats: { tokensPerStep: null, kvBytesPerStep: null, metaBytesPerStep: null, selectMs: 0, prefillMs: 0, decodeMsPerStep: null },
    });
    const rows = summarize([rec('a', 1), rec('b', 0), rec('c', null), rec('d', 1)]);
    const row = rows.find((r) => r.task === 'longbench_v2')!;
    // result.py: 2 right of the 3 written
    expect([row.n, row.skipped]).toEqual([3, 1]);
    expect(row.score).toBeCloseTo((100 * 2) / 3, 10);
    expect(markdown([row], EVAL_COLUMNS)).toContain('| 3 (+1 skipped) |');
    const none = summarize([rec('c', null)]).find((r) => r.task === 'longbench_v2')!;
    expect([none.n, none.skipped, markdown([none], EVAL_COLUMNS).includes('| 0 (+1 skipped) | - |')]).toEqual([0, 1, true]);
  });
});

describe('chat templates', () => {
  it("wraps LongBench prompts in the model's chat template, except the datasets LongBench leaves bare, without a second BOS", async () => {
    const { copyModel } = await import('./helpers.js');
    const dir = copyModel(defaultModel);
    const cfgFile = path.join(dir, 'tokenizer_config.json');
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
    cfg.chat_template = '{{ bos_token }}{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}';
    writeFileSync(cfgFile, JSON.stringify(cfg));
    const chatTok = loadTokenizer(dir);
    const opts = { tokenizer: chatTok, depths: [50], seed: 0, perLength: 1, longbenchDir: fixtures, lengths: [4096] };
    const [n] = TASKS.narrativeqa.samples(opts);
    expect(n.chat).toBe(true);
    expect(n.context.startsWith('<s>[INST] You are given a story')).toBe(true);
    expect(n.question.endsWith('Answer: [/INST]')).toBe(true);
    const [t] = TASKS.trec.samples(opts);
    expect(t.chat).toBeUndefined();
    expect(t.context.startsWith('Please determine the type')).toBe(true);
    // The runner encodes a chat prompt without adding special tokens: one BOS, from the text.
    const ids = chatTok.encode(n.context, !n.chat);
    expect(ids[0]).toBe(0);
    expect(ids[1]).not.toBe(0);
  });
});
