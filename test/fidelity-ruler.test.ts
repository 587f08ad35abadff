// RULER's and Quest's prompts to the letter: test/fidelity/ruler/expected.json holds what the
// originals' own functions produce on fixed inputs (how it was made: test/fidelity/ruler/README.md).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { depthPrefix, drawPasskey, passkeySplit, passkeyText } from '../src/tasks/passkey.js';
import { DEPTHS, depthIndex, NOISE, promptText, RULER_COMMIT, type Prompt } from '../src/tasks/ruler/common.js';
import { cwePrompt, cweWords, numbered } from '../src/tasks/ruler/cwe.js';
import { fwePrompt, zipfCounts, zipfWords } from '../src/tasks/ruler/fwe.js';
import { essayContext, lineContext, needle, niahPrompt } from '../src/tasks/ruler/niah.js';
import { qaPrompt } from '../src/tasks/ruler/qa.js';
import { exampleText, randomizeIcl, statements, vtContext, vtPrompt, withExample } from '../src/tasks/ruler/vt.js';
import { repo } from './helpers.js';

interface Split {
  full: string;
  input: string;
  answer_prefix: string;
}
type Cfg = { haystack: 'noise' | 'needle' | 'essay'; value: string; numK: number; numV: number; numQ: number };
const data = JSON.parse(readFileSync(path.join(repo, 'test', 'fidelity', 'ruler', 'expected.json'), 'utf8')) as {
  ruler_commit: string;
  depths: number[];
  depth_index: number[][];
  niah: (Split & { config: Cfg; n: number; draws: string[]; distractors: string[]; samples: number[][]; sentences: string[]; answers: string[] })[];
  vt: (Split & { icl: { n: number; names: string[]; positions: number[]; text: string }; n: number; names: string[]; value: string; positions: number[]; new_names: string[]; new_value: string; answers: string[] })[];
  cwe: (Split & { max_seq_length: number; example: string[]; picked: string[]; answers: string[] })[];
  fwe: (Split & { coded: string[]; num_words: number; answers: string[] })[];
  fwe_counts: { size: number; num_words: number; counts: number[] }[];
  qa: (Split & { docs: string[]; question: string })[];
  passkey: { n_garbage: number; depth: number; draws: number[]; prompt: string; key: number; prefix: number; context: string; question: string }[];
};

/** The whole text is RULER's input + answer_prefix, and the question ends with that answer prefix. */
function expectRuler(p: Prompt, c: Split) {
  expect(promptText(p)).toBe(c.full);
  expect(c.input + c.answer_prefix).toBe(c.full);
  expect(p.question.endsWith(c.answer_prefix)).toBe(true);
  expect(p.context.length).toBeGreaterThan(0);
}

describe('RULER fidelity', () => {
  it('the data was made from the pinned commit', () => {
    expect(data.ruler_commit).toBe(RULER_COMMIT);
  });

  it("DEPTHS and the essay's insertion index are niah.py's", () => {
    expect(DEPTHS).toEqual(data.depths);
    expect(data.depth_index.map((_, count) => data.depths.map((d) => depthIndex(count, d)))).toEqual(data.depth_index);
  });

  it.each(data.niah.map((c, i) => [i, c] as const))('niah case %i: template, singular form, needles, context', (_, c) => {
    const numK = Math.max(c.config.numK, c.config.numQ);
    const keys: string[] = [];
    const needles: string[] = [];
    const values: string[][] = [];
    let d = 0;
    for (let k = 0; k < numK; k++) {
      keys.push(c.draws[d++]);
      values.push([]);
      for (let v = 0; v < c.config.numV; v++) {
        values[k].push(c.draws[d++]);
        needles.push(needle(c.config.value, keys[k], values[k][v]));
      }
    }
    let context: string;
    if (c.config.haystack === 'essay') context = essayContext(c.sentences, needles, c.samples[0]);
    else {
      const lines = c.config.haystack === 'noise' ? Array<string>(c.n).fill(NOISE) : Array.from({ length: c.n }, (_, i) => needle(c.config.value, c.distractors[2 * i], c.distractors[2 * i + 1]));
      context = lineContext(lines, needles, c.samples[0]);
    }
    const queries = c.samples[1].map((i) => keys[i]);
    expectRuler(niahPrompt(c.config as never, context, queries), c);
    expect(c.samples[1].flatMap((i) => values[i])).toEqual(c.answers);
  });

  it.each(data.vt.map((c, i) => [i, c] as const))('vt case %i: the solved example, its fresh names and value, the chain', (_, c) => {
    const icl = vtPrompt(vtContext(statements(c.icl.names, '12345'), c.icl.n, c.icl.positions), '12345');
    const example = exampleText(icl, c.icl.names);
    expect(example).toBe(c.icl.text);
    const main = vtPrompt(vtContext(statements(c.names, c.value), c.n, c.positions), c.value);
    const p = withExample(randomizeIcl(example, c.new_names, c.new_value), main);
    expectRuler(p, c);
    expect(c.names).toEqual(c.answers);
  });

  it.each(data.cwe.map((c, i) => [i, c] as const))('cwe case %i: the example, its answer after a space, the list', (_, c) => {
    const short = c.max_seq_length < 4096;
    const example = numbered(cweWords(c.example, short ? 3 : 10, short ? 1 : 3));
    const list = numbered(cweWords(c.picked, short ? 6 : 30, short ? 1 : 3));
    expectRuler(cwePrompt(example, c.example.slice(0, 10), list), c);
    expect(c.picked.slice(0, 10)).toEqual(c.answers);
  });

  it("fwe: gen_text's Zipf counts and template", () => {
    for (const g of data.fwe_counts) expect(zipfCounts(g.size, g.num_words)).toEqual(g.counts);
    for (const c of data.fwe) {
      const vocab = [...c.coded].sort();
      vocab[0] = '...';
      expectRuler(fwePrompt(zipfWords(vocab, c.num_words)), c);
      expect(vocab.slice(1, 4)).toEqual(c.answers);
    }
  });

  it.each(data.qa.map((c) => [c.question, c] as const))('qa: the documents and the question %s', (_, c) => {
    expectRuler(qaPrompt(c.docs, c.question), c);
  });

  it.each(data.passkey.map((c) => [c.n_garbage, c.depth, c] as const))("passkey (Quest's passkey.py) at %i characters, depth %i", (_, __, c) => {
    if (c.depth !== 0) expect(depthPrefix(c.n_garbage, c.depth)).toBe(c.prefix);
    // A generator that yields the recorded draws through randint: the split point in [0, n_garbage]
    // (depth 0 only), then the key in [1, 50000], as generate_prompt draws them.
    const floats = [...(c.depth === 0 ? [(c.draws[0] + 0.5) / (c.n_garbage + 1)] : []), (c.draws.at(-1) - 1 + 0.5) / 50000];
    const drawn = drawPasskey(() => floats.shift()!, c.n_garbage, c.depth);
    expect(floats).toEqual([]);
    expect(drawn).toEqual({ text: c.prompt, key: c.key, prefix: c.prefix });
    const text = passkeyText(c.n_garbage, c.prefix, c.key);
    expect(text).toBe(c.prompt);
    expect(passkeySplit(text)).toEqual({ context: c.context, question: c.question });
  });
});
