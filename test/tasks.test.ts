// Task generators and metrics: worked examples, needle placement, lengths, reproducibility.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { firstInteger, firstIntegerMatch, stringMatchAll, stringMatchPart } from '../src/metrics/index.js';
import { loadTokenizer } from '../src/model/tokenizer.js';
import { expandTasks, TASKS } from '../src/tasks/index.js';
import type { Sample, SampleOptions } from '../src/tasks/index.js';
import { defaultModel, repo } from './helpers.js';

const tok = loadTokenizer(defaultModel);
const opts = (o: Partial<SampleOptions> = {}): SampleOptions => ({ tokenizer: tok, lengths: [2048], depths: [0, 50, 100], seed: 7, perLength: 3, ...o });
// RULER's count: the whole prompt's tokens without a BOS
const tokens = (s: Sample) => tok.encode(s.context + s.question).length;

describe('metrics', () => {
  it('reads the first integer as the passkey scorers do', () => {
    expect(firstInteger(' 48213. Remember it')).toBe(48213);
    expect(firstInteger('no digits')).toBeNull();
    expect(firstIntegerMatch(' 0048213', ['48213'])).toBe(1);
    expect(firstIntegerMatch('', ['48213'])).toBe(0);
    expect(firstIntegerMatch('12 then 48213', ['48213'])).toBe(0);
    expect(firstIntegerMatch('7', ['3', '7'])).toBe(1);
  });

  it('string_match_all counts the share of references found, ignoring case', () => {
    expect(stringMatchAll('The numbers are 123 and 456.', ['123', '456', '789'])).toBeCloseTo(2 / 3, 12);
    expect(stringMatchAll('  UUID: ABC-def \x01', ['abc-DEF'])).toBe(1);
    expect(stringMatchAll('', ['123'])).toBe(0);
    expect(stringMatchAll('答案是北京和上海', ['北京', '上海', '广州'])).toBeCloseTo(2 / 3, 12);
  });

  it('string_match_part scores 1 when any reference is found', () => {
    expect(stringMatchPart('It was Thomas Avery.', ['thomas avery', 'Avery'])).toBe(1);
    expect(stringMatchPart('It was the keeper.', ['Thomas Avery'])).toBe(0);
    expect(stringMatchPart('', ['x'])).toBe(0);
  });
});

describe('passkey', () => {
  it("places the key as Quest's passkey.py does, sizes the filler in steps of 128 characters, and leaves the last 400 characters to the question", () => {
    for (const L of [1024, 4096]) {
      const ss = TASKS.passkey.samples(opts({ lengths: [L], depths: [0, 25, 50, 75, 100], perLength: 5 }));
      for (const s of ss) {
        const text = s.context + s.question;
        const chars = s.meta.garbageChars as number;
        expect(chars % 128).toBe(0);
        // Quest keeps the filler under the target (give or take the random key and depth), and
        // 128 characters more reach it
        const [task, prefix, info, suffix, question] = text.split('\n');
        const n = tok.encode(text, true).length;
        expect(n).toBeLessThan(L + 5);
        expect(n + tok.encode((prefix.length > suffix.length ? prefix : suffix).slice(0, 128)).length).toBeGreaterThanOrEqual(L - 5);
        expect(task).toMatch(/^There is an important info hidden/);
        expect(info).toBe(`The pass key is ${s.answers[0]}. Remember it. ${s.answers[0]} is the pass key.`);
        expect(question).toBe('What is the pass key? The pass key is');
        expect(prefix.length + suffix.length).toBe(chars);
        const depth = s.meta.depth as number;
        // depth 0 is a random split point, as generate_prompt's depth_ratio == 0
        if (depth === 0) expect(s.meta.randomDepth).toBe(true);
        else expect(prefix.length).toBe(Math.trunc((chars * depth) / 100));
        expect(s.question).toBe(text.slice(-400));
      }
    }
    const random = TASKS.passkey.samples(opts({ lengths: [1024], depths: [0], perLength: 4 }));
    expect(new Set(random.map((s) => s.meta.prefixChars)).size).toBeGreaterThan(1);
  });

  it('reproduces a set exactly from its seed', () => {
    expect(TASKS.passkey.samples(opts())).toEqual(TASKS.passkey.samples(opts()));
    expect(TASKS.passkey.samples(opts({ seed: 8 }))).not.toEqual(TASKS.passkey.samples(opts()));
  });
});

describe('RULER', () => {
  const sources = { qaFiles: [] as string[], longbenchDir: null, longbenchE: false };
  const synthetic = expandTasks(['ruler'], sources);

  it('expands "ruler" to its synthetic tasks, and to the QA tasks with --qa-file', () => {
    expect(synthetic).toHaveLength(11);
    expect(expandTasks(['ruler'], { ...sources, qaFiles: ['squad.json'] })).toHaveLength(13);
  });

  it.each(synthetic)('%s: prompt plus generation fits the length, as RULER sizes it, and a seed reproduces it', (name) => {
    const t = TASKS[name];
    const ss = t.samples(opts({ lengths: [4096] }));
    expect(ss).toHaveLength(3);
    for (const s of ss) {
      const n = tokens(s) + t.maxNewTokens;
      expect(n).toBeLessThanOrEqual(4096);
      // RULER steps a sample that does not fit down by its increment (500 essay words, 25
      // lines, 10 noises, words or documents) and fwe by a 32nd of the length
      expect(n).toBeGreaterThanOrEqual(0.75 * 4096);
      expect(s.answers.length).toBeGreaterThan(0);
    }
    expect(t.samples(opts({ lengths: [4096], perLength: 1 }))).toEqual(ss.slice(0, 1));
  });

  it('niah: every needle is in the context and every answer is a needle value', () => {
    for (const name of synthetic.filter((n) => n.startsWith('niah'))) {
      for (const s of TASKS[name].samples(opts())) {
        for (const a of s.answers) expect(s.context).toMatch(new RegExp(`One of the special magic \\w+ for [^ ]+ is: ${a}\\.`));
        expect(s.question).toMatch(/^What (is|are all) the special magic/);
      }
    }
  });

  it('niah_single_1 follows the template of RULER to the letter', () => {
    const s = TASKS.niah_single_1.samples(opts({ perLength: 1 }))[0];
    expect(s.context.startsWith('A special magic number is hidden within the following text. Make sure to memorize it. I will quiz you about the number afterwards.\n')).toBe(true);
    expect(s.question).toMatch(/^What is the special magic number for [a-z]+-[a-z]+ mentioned in the provided text\? The special magic number for [a-z]+-[a-z]+ mentioned in the provided text is$/);
    expect(s.answers[0]).toMatch(/^\d{7}$/);
  });

  it('vt, cwe and fwe answers are what their contexts hold', () => {
    const v = TASKS.vt.samples(opts({ perLength: 1 }))[0];
    const [first, ...rest] = v.answers;
    expect(v.context).toMatch(new RegExp(`VAR ${first} = \\d{5}`));
    rest.forEach((x, i) => expect(v.context).toContain(`VAR ${x} = VAR ${v.answers[i]}`));
    const c = TASKS.cwe.samples(opts({ perLength: 1 }))[0];
    const list = c.context.split('\n').at(-2)!;
    // Below 4096 tokens RULER repeats the common words 6 times, not 30.
    for (const w of c.answers) expect(list.split(' ').filter((x) => x === w).length).toBe(6);
    const f = TASKS.fwe.samples(opts({ perLength: 1 }))[0];
    const counts = f.answers.map((w) => f.context.split(' ').filter((x) => x === w).length);
    expect(counts[0]).toBeGreaterThanOrEqual(counts[1]);
    expect(counts[1]).toBeGreaterThanOrEqual(counts[2]);
  });

  it("vt: each sample's solved example has fresh 3-letter names and value (randomize_icl), in front of the task", () => {
    const ss = TASKS.vt.samples(opts({ perLength: 3 }));
    const examples = ss.map((s) => {
      const [example, task] = s.context.split('\n\nMemorize');
      expect(example.startsWith('Memorize and track the chain(s)')).toBe(true);
      expect(task).toMatch(/^ and track the chain/);
      const m = example.match(/they are: {2}([A-Z]{3}) ([A-Z]{3}) ([A-Z]{3}) ([A-Z]{3}) ([A-Z]{3})$/);
      expect(m).not.toBeNull();
      expect(example).toMatch(new RegExp(`\\nVAR ${m![1]} = \\d{5}\\n`));
      return example;
    });
    expect(new Set(examples).size).toBe(3);
  });

  it('qa_1 and qa_2 read SQuAD and HotpotQA files in their original formats', () => {
    const qaFiles = [path.join(repo, 'test', 'data', 'squad-mini.json'), path.join(repo, 'test', 'data', 'hotpot-mini.json')];
    const q1 = TASKS.qa_1.samples(opts({ lengths: [2048], qaFiles, perLength: 4 }));
    expect(q1.map((s) => s.answers)).toEqual([['Thomas Avery'], ['1950'], ['quince'], ['in the old mill beside the river']]);
    expect(q1[0].context).toContain('Document 1:\n');
    expect(q1[0].question).toMatch(/Question: Who first lit the lamp of the harbour lighthouse\? Answer:$/);
    const q2 = TASKS.qa_2.samples(opts({ lengths: [2048], qaFiles, perLength: 2 }));
    expect(q2[0].context).toContain('Marlow Cross\nMarlow Cross is a market town on the banks of the Wenn.');
    expect(() => TASKS.qa_1.samples(opts({ qaFiles: [] }))).toThrow('qa_1 needs --qa-file');
  });
});
