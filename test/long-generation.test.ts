// Long-generation tasks end to end on the shipped model and our own small problem files:
// greedy against the engine's own generate(), seeded sampling, stop strings, pass@1 over
// draws, generation-length columns and the refusals of bad input.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine/index.js';
import { openModelFolder } from '../src/model/index.js';
import { loadTokenizer } from '../src/model/tokenizer.js';
import { defaultModel, quest, repo, tempDirs } from './helpers.js';

const temp = tempDirs();
const math = path.join(repo, 'datasets', 'math', 'math500-mini.jsonl');
const aime = path.join(repo, 'datasets', 'math', 'aime-mini.jsonl');

interface Rec {
  sampleId: string;
  policy: string;
  prediction: string;
  generatedTokens: number;
  stoppedBy: string;
  score: number;
}

async function run(args: string[]): Promise<{ recs: Rec[]; rows: Record<string, unknown>[] }> {
  const out = temp();
  const r = await quest(['eval', '--tasks', 'math500', '--math-file', math, '--samples', '2', ...args, '--output-path', out]);
  expect(r.stderr).not.toMatch(/Error/);
  expect(r.exitCode).toBe(0);
  const recs = readFileSync(path.join(out, 'samples.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Rec);
  return { recs: recs.sort((a, b) => (a.sampleId < b.sampleId ? -1 : 1)), rows: JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')).rows };
}

describe('long-generation tasks', () => {
  it("greedy (temperature 0) generates what the engine's own greedy generate() does on the same prompt", async () => {
    const { recs } = await run(['--max-new-tokens', '24']);
    const folder = openModelFolder(defaultModel);
    const tok = loadTokenizer(defaultModel);
    const model = await loadModel(folder.spec, defaultModel);
    const problems = readFileSync(math, 'utf8').trim().split('\n').map((l) => JSON.parse(l).problem as string);
    for (const [i, rec] of recs.entries()) {
      // The shipped model has no chat template: the prompt is the problem, a newline and the papers' instruction, after BOS.
      const prompt = `${problems[i]}\nPlease reason step by step, and put your final answer within \\boxed{}.`;
      const seq = model.createSequence({ policy: 'dense', budget: 0, pageSize: 16, denseLayers: 2 });
      await seq.prefill(Int32Array.from(tok.encode(prompt, true)));
      const ids = await seq.generate(24, Int32Array.from(folder.stopTokens));
      seq.close();
      expect(rec.prediction).toBe(tok.decode(ids));
      expect(rec.generatedTokens).toBe(ids.length);
    }
  });

  it('the same --seed draws the same tokens under every policy; another seed draws others', async () => {
    const sampled = ['--max-new-tokens', '16', '--temperature', '1', '--top-k', '50', '--top-p', '0.95', '--policies', 'dense,streaming', '--budgets', '32'];
    const a = await run(sampled);
    const b = await run(sampled);
    const c = await run([...sampled, '--seed', '1']);
    expect(b.recs.map((r) => r.prediction)).toEqual(a.recs.map((r) => r.prediction));
    expect(c.recs.map((r) => r.prediction)).not.toEqual(a.recs.map((r) => r.prediction));
    // The greedy text is not what sampling drew.
    const g = await run(['--max-new-tokens', '16']);
    expect(a.recs.filter((r) => r.policy === 'dense').map((r) => r.prediction)).not.toEqual(g.recs.map((r) => r.prediction));
  });

  it('a stop string ends the generation and cuts the text before it; the tokens before it are those drawn without it', async () => {
    const args = ['--max-new-tokens', '48', '--temperature', '0.8', '--seed', '3'];
    const free = await run(args);
    const stopped = await run([...args, '--stop', ' the']);
    let cut = 0;
    for (const [i, r] of stopped.recs.entries()) {
      expect(r.prediction).not.toContain(' the');
      const at = free.recs[i].prediction.indexOf(' the');
      if (at >= 0) {
        cut++;
        expect(r.stoppedBy).toBe('stop-string');
        expect(r.prediction).toBe(free.recs[i].prediction.slice(0, at));
      } else expect(r.prediction).toBe(free.recs[i].prediction);
    }
    expect(cut).toBeGreaterThan(0);
  });

  it('pass@1 is the mean over --num-samples draws; the table carries mean and p90 generation length', async () => {
    const out = temp();
    const r = await quest(['eval', '--tasks', 'aime24', '--aime-file', aime, '--samples', '3', '--num-samples', '2', '--max-new-tokens', '12', '--temperature', '1', '--output-path', out]);
    expect(r.exitCode).toBe(0);
    const recs = readFileSync(path.join(out, 'samples.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Rec);
    expect(recs.map((x) => x.sampleId).sort()).toEqual(['aime24-0-s0', 'aime24-0-s1', 'aime24-1-s0', 'aime24-1-s1', 'aime24-2-s0', 'aime24-2-s1']);
    const [row] = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')).rows;
    expect(row.n).toBe(6);
    expect(row.score).toBeCloseTo((100 * recs.reduce((a, x) => a + x.score, 0)) / 6, 10);
    const lens = recs.map((x) => x.generatedTokens).sort((a, b) => a - b);
    expect(row.genTokensMean).toBeCloseTo(lens.reduce((a, b) => a + b, 0) / 6, 10);
    // numpy.percentile(lens, 90): position 0.9 * 5 = 4.5, halfway between the 5th and 6th.
    expect(row.genTokensP90).toBeCloseTo((lens[4] + lens[5]) / 2, 10);
    expect(r.stdout).toContain('gen tokens p90');
  });

  it('quest tasks list shows the long-generation tasks', async () => {
    const r = await quest(['tasks', 'list']);
    for (const t of ['math500', 'aime24', 'math-data']) expect(r.stdout).toMatch(new RegExp(`\\| ${t} \\|.*\\| 32768 \\|`));
  });
});

describe('long-generation bad input', () => {
  it('names the file, line and field a problem lacks', async () => {
    const file = path.join(temp(), 'p.jsonl');
    writeFileSync(file, '{"problem": "1+1?", "answer": "2"}\n{"problem": "2+2?"}\n');
    const r = await quest(['eval', '--tasks', 'math500', '--math-file', file]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(`quest: ${file}:2: missing field "answer"`);
    const a = await quest(['eval', '--tasks', 'aime24', '--aime-file', file]);
    // AIME takes Problem/Answer or problem/answer.
    expect(a.stderr.trim()).toBe(`quest: ${file}:2: missing field "Answer" or "answer"`);
    const d = await quest(['eval', '--tasks', 'math-data', '--data-file', file, '--data-fields', 'problem=question,answer=answer']);
    expect(d.stderr.trim()).toBe(`quest: ${file}:1: missing field "question"`);
  });

  it.each([
    [['--max-new-tokens', '33024'], /^quest: --max-new-tokens 33024: math500's prompt and generation must fit the 33024 positions \S+config\.json allows$/],
    [['--max-new-tokens', '33000'], /^quest: math500-0-s0: the prompt is \d+ tokens and 33000 may be generated, but \S+ allows 33024 positions \(lower --max-new-tokens\)$/],
    [['--stop', 'a\\qb'], /^quest: --stop: "a\\qb" is not a string with valid escapes/],
    [['--stop', ''], /^quest: --stop: empty; a stop string needs at least one character$/],
    [['--top-p', '0'], /^quest: --top-p: "0" is not a number in \(0, 1\]$/],
    [['--temperature', '-1'], /^quest: --temperature: "-1" is not a number >= 0$/],
    [['--top-k', '2.5'], /^quest: --top-k: "2.5" is not a non-negative integer$/],
    [['--data-fields', 'problem=q'], /^quest: --data-fields: "problem=q" is not problem=<field>,answer=<field>$/],
  ])('refuses %j before the first sample', async (args, message) => {
    const out = temp();
    const r = await quest(['eval', '--tasks', 'math500', '--math-file', math, ...args, '--output-path', out]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toMatch(message);
  });
});
