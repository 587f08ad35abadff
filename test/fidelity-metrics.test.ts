// Every metric against values the original Python code computed (test/fidelity/metrics/README.md).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { evalConfig } from '../src/config/index.js';
import { sequenceMatcherRatio } from '../src/metrics/difflib.js';
import { fuzzRatio, levenshteinRatio } from '../src/metrics/fuzz.js';
import { firstInteger, rulerPostprocess, stringMatchAll, stringMatchPart } from '../src/metrics/index.js';
import { jiebaCut } from '../src/metrics/jieba.js';
import { PY_WORD, pyDigitRuns, pyDigitsValue, pyLower, pySplit, pyStrip } from '../src/metrics/python.js';
import { loadTokenizer } from '../src/model/tokenizer.js';
import { TASKS, type Sample } from '../src/tasks/index.js';
import { defaultModel, quest, repo } from './helpers.js';

const dir = path.join(repo, 'test', 'fidelity', 'metrics');
const read = (file: string) => JSON.parse(readFileSync(path.join(dir, file), 'utf8'));

interface LongBenchCase {
  dataset: string;
  prediction: string;
  answers: string[];
  expected: number;
}
const cases = read('cases.json') as {
  all_classes: string[];
  longbench: LongBenchCase[];
  code_sim_levenshtein: Omit<LongBenchCase, 'dataset'>[];
  ratios: { a: string; b: string; difflib: number; levenshtein: number; fuzz_difflib: number; fuzz_levenshtein: number }[];
  ruler: { prediction: string; refs: string[]; postprocessed: string; all: number; part: number }[];
  passkey: { response: string; value: string | null }[];
};

/** Floats to 1e-12 relative (they come out bit-identical; the bound is the contract). */
const close = (got: number, want: number) => got === want || Math.abs(got - want) <= 1e-12 * Math.abs(want);

/** A LongBench v1 score as eval.py's scorer computes one prediction's: the max over the answers. */
function lbScore(dataset: string, prediction: string, answers: string[], codeSim?: string): number {
  const sample = { id: 'x', task: dataset, context: '', question: '', answers, meta: { allClasses: cases.all_classes, codeSim } } as Sample;
  return TASKS[dataset].score(prediction, sample);
}

/** The cases that differ, for a readable failure; [] when all agree. */
function mismatches<T>(items: T[], ok: (item: T) => boolean): T[] {
  return items.filter((x) => !ok(x)).slice(0, 5);
}

describe("Python's str and re semantics, code point by code point", () => {
  const u = read('unicode.json') as {
    python: string;
    unidata_version: string;
    isspace: number[][];
    re_s_is_isspace: boolean;
    re_d: number[][];
    re_d_values: string[];
    re_w: number[][];
    unassigned: number[][];
    lower: Record<string, string>;
  };
  const table = (ranges: number[][]) => {
    const t = new Uint8Array(0x110000);
    for (const [a, b] of ranges) t.fill(1, a, b + 1);
    return t;
  };
  const unassigned = table(u.unassigned);
  const word = new RegExp(`^${PY_WORD}$`, 'u');
  /** Code points where `ours` and Python's table disagree: none that Python's Unicode assigns. */
  function differences(pyTable: Uint8Array, ours: (c: string) => boolean): { all: number; assigned: number[] } {
    let all = 0;
    const assigned: number[] = [];
    for (let cp = 0; cp < 0x110000; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      if ((pyTable[cp] === 1) !== ours(String.fromCodePoint(cp))) {
        all++;
        if (!unassigned[cp]) assigned.push(cp);
      }
    }
    return { all, assigned };
  }

  it('pins the Python the tables came from', () => {
    expect([u.python, u.unidata_version]).toEqual(['3.11.2', '14.0.0']);
  });

  it('str.isspace and re \\s, as str.split() and str.strip() use them: the same set everywhere', () => {
    expect(u.re_s_is_isspace).toBe(true);
    expect(differences(table(u.isspace), (c) => pySplit(`a${c}b`).length === 2).all).toBe(0);
    expect(differences(table(u.isspace), (c) => pyStrip(`${c}a${c}`) === 'a').all).toBe(0);
  });

  it('re \\d: decimal digits of every script, with their values', () => {
    expect(differences(table(u.re_d), (c) => pyDigitRuns(c).length === 1).assigned).toEqual([]);
    u.re_d.forEach(([a], k) => {
      const got = [...u.re_d_values[k]].map((_, i) => pyDigitsValue(String.fromCodePoint(a + i))).join('');
      expect(got).toBe(u.re_d_values[k]);
    });
  });

  it('re \\w (and so \\b): str.isalnum() or "_"', () => {
    expect(differences(table(u.re_w), (c) => word.test(c)).assigned).toEqual([]);
  });

  it('str.lower', () => {
    const bad: number[] = [];
    for (let cp = 0; cp < 0x110000; cp++) {
      if ((cp >= 0xd800 && cp <= 0xdfff) || unassigned[cp]) continue;
      const c = String.fromCodePoint(cp);
      if (pyLower(c) !== (u.lower[cp] ?? c)) bad.push(cp);
    }
    expect(bad).toEqual([]);
  });
});

describe('LongBench metrics.py through eval.py scorer (rouge 1.0.1, jieba 0.42.1, fuzzywuzzy on difflib)', () => {
  const datasets = [...new Set(cases.longbench.map((c) => c.dataset))];
  for (const dataset of datasets) {
    const mine = cases.longbench.filter((c) => c.dataset === dataset);
    it(`${dataset}: ${mine.length} cases`, () => {
      expect(mismatches(mine, (c) => close(lbScore(dataset, c.prediction, c.answers), c.expected))).toEqual([]);
    });
  }

  it('code_sim with --code-sim levenshtein is fuzzywuzzy on python-Levenshtein', () => {
    const bad = mismatches(cases.code_sim_levenshtein, (c) => close(lbScore('lcc', c.prediction, c.answers, 'levenshtein'), c.expected));
    expect(bad).toEqual([]);
    // The two backends do disagree on some of these cases, so the choice is visible in the data.
    expect(cases.code_sim_levenshtein.some((c) => lbScore('lcc', c.prediction, c.answers) !== c.expected)).toBe(true);
  });

  it('a retrieval reference with no paragraph number fails with a clear error, as metrics.py raises IndexError', () => {
    expect(() => lbScore('passage_retrieval_en', 'Paragraph 3', ['the third'])).toThrow('retrieval_score: the reference "the third" has no "Paragraph N" (N in digits), which LongBench\'s metrics.py requires');
  });
});

describe('difflib and python-Levenshtein ratios, fuzz.ratio on each', () => {
  it(`${cases.ratios.length} pairs up to 420 characters (autojunk from 200)`, () => {
    expect(mismatches(cases.ratios, (c) => close(sequenceMatcherRatio(c.a, c.b), c.difflib) && close(levenshteinRatio(c.a, c.b), c.levenshtein))).toEqual([]);
    expect(mismatches(cases.ratios, (c) => fuzzRatio(c.a, c.b) === c.fuzz_difflib && fuzzRatio(c.a, c.b, 'levenshtein') === c.fuzz_levenshtein)).toEqual([]);
  });
});

describe('code_sim backend option', () => {
  it('defaults to difflib, from the config to the samples, and names a bad value in one line', async () => {
    expect(evalConfig(undefined, {}).codeSim).toBe('difflib');
    const opts = { tokenizer: loadTokenizer(defaultModel), lengths: [1024], depths: [50], seed: 0, perLength: 1, longbenchDir: path.join(repo, 'datasets', 'longbench-fixtures') };
    expect(TASKS.lcc.samples(opts)[0].meta.codeSim).toBe('difflib');
    expect(TASKS.lcc.samples({ ...opts, codeSim: 'levenshtein' })[0].meta.codeSim).toBe('levenshtein');
    const r = await quest(['eval', '--tasks', 'lcc', '--code-sim', 'rapidfuzz']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe('quest: --code-sim: "rapidfuzz" is not one of difflib, levenshtein');
  });
});

describe("RULER's postprocess_pred and string_match_all / _part", () => {
  it(`${cases.ruler.length} predictions`, () => {
    expect(mismatches(cases.ruler, (c) => rulerPostprocess(c.prediction) === c.postprocessed)).toEqual([]);
    expect(mismatches(cases.ruler, (c) => close(stringMatchAll(c.prediction, c.refs), c.all) && stringMatchPart(c.prediction, c.refs) === c.part)).toEqual([]);
  });
});

describe("Quest's passkey reading: int(re.search(r'\\d+', response).group())", () => {
  it(`${cases.passkey.length} responses`, () => {
    for (const c of cases.passkey) {
      const got = firstInteger(c.response);
      if (c.value === null) expect(got).toBeNull();
      else if (BigInt(c.value) < 2n ** 53n) expect(got).toBe(Number(c.value));
      else expect(got).toBeGreaterThanOrEqual(2 ** 53);
    }
  });
});

describe('jieba.cut(s, cut_all=False)', () => {
  // QUEST_JIEBA_CASES: another file of make.py's format, e.g. all 10,000 strings (README.md).
  const file = process.env.QUEST_JIEBA_CASES ?? path.join(dir, 'jieba.json');
  const { cases: jieba } = JSON.parse(readFileSync(file, 'utf8')) as { cases: [string, string[]][] };
  it(`agrees with Python jieba 0.42.1 on at least 99.9% of ${jieba.length} random mixed strings`, () => {
    const differ = jieba.filter(([s, want]) => JSON.stringify(jiebaCut(s)) !== JSON.stringify(want));
    expect(1 - differ.length / jieba.length, `differ: ${JSON.stringify(differ.slice(0, 3))}`).toBeGreaterThanOrEqual(0.999);
  });
});
