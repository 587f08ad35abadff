// tools/make-short-rows.mjs, the short vt and cwe training rows (docs/training.md): each row's
// answers read back from its own text (the chain followed from the asked value; the words
// counted in the list), and bad flags named.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from '../src/model/tokenizer.js';
import { defaultModel, repo, tempDirs } from './helpers.js';

const tempDir = tempDirs();
const tool = (args: string[]) => execa('node', [path.join(repo, 'tools', 'make-short-rows.mjs'), ...args], { reject: false });
const rows = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

describe('tools/make-short-rows.mjs', () => {
  it('writes vt rows whose answers are the chain from the asked value, among the asked number of noise lines', async () => {
    const out = tempDir();
    const r = await tool(['vt', '--hops', '3', '--noise', '4:5', '--length', '320', '-n', '30', '--seed', '7', '--out', out]);
    expect(r.exitCode, r.stderr).toBe(0);
    const got = rows(path.join(out, 'vt-320.jsonl'));
    const tok = loadTokenizer(defaultModel);
    expect(got).toHaveLength(30);
    for (const [i, s] of got.entries()) {
      expect(s).toMatchObject({ id: `vt-L320-${i}`, task: 'vt' });
      const value = /assigned the value (\d+) in the text above/.exec(s.question)?.[1];
      expect(s.question).toContain(`4 variables are assigned the value ${value}`);
      const lines = s.context.trim().split('\n').slice(1).filter((l: string) => l.length > 0);
      const assigned = new Map<string, string>();
      for (const l of lines.filter((x: string) => x.startsWith('VAR '))) {
        const m = /^VAR ([A-Z]{5}) = (?:VAR ([A-Z]{5}) |(\d+))$/.exec(l);
        expect(m, l).not.toBeNull();
        assigned.set(m![2] ?? m![3], m![1]);
      }
      const chain: string[] = [];
      for (let at = assigned.get(value!); at !== undefined; at = assigned.get(at)) chain.push(at);
      expect(chain).toEqual(s.answers);
      const noise = lines.filter((x: string) => !x.startsWith('VAR '));
      expect(noise.length).toBeGreaterThanOrEqual(4);
      expect(noise.length).toBeLessThanOrEqual(5);
      expect(new Set(noise).size).toBe(1);
      // As train-model.py lays the row out: BOS, context, question, the names in the chain's
      // (the text's) order and a full stop, EOS; within the bucket and its 32 tokens of answer slack
      // (at 320 some draws of five noise lines do not fit: the tool must have left them out).
      const row = tok.encode(s.context, true).length + tok.encode(s.question).length + tok.encode(` ${chain.join(' ')}.`).length + 1;
      expect(row).toBeLessThanOrEqual(320 + 32 + 1);
    }
  });

  it('writes cwe rows whose answers are the ten words repeated in the list', async () => {
    const out = tempDir();
    const r = await tool(['cwe', '--repeats', '2:3', '--others', '5:9', '--length', '320', '-n', '30', '--seed', '8', '--out', out]);
    expect(r.exitCode, r.stderr).toBe(0);
    for (const s of rows(path.join(out, 'cwe-320.jsonl'))) {
      const items = [...s.context.matchAll(/(\d+)\. ([a-z]+)/g)];
      expect(items.map((m) => Number(m[1]))).toEqual(items.map((_, k) => k + 1));
      const counts = new Map<string, number>();
      for (const m of items) counts.set(m[2], (counts.get(m[2]) ?? 0) + 1);
      const repeated = [...counts].filter(([, c]) => c > 1);
      expect(repeated.map(([w]) => w).sort()).toEqual([...s.answers].sort());
      const times = new Set(repeated.map(([, c]) => c));
      expect(times.size).toBe(1);
      expect([2, 3]).toContain([...times][0]);
      const once = counts.size - 10;
      expect(once).toBeGreaterThanOrEqual(5);
      expect(once).toBeLessThanOrEqual(9);
      expect(s.question).toContain('What are the 10 most common words in the above list?');
    }
  });

  it('names the flag that is wrong', async () => {
    const out = tempDir();
    const cases: [string[], RegExp][] = [
      [['fwe', '--length', '320', '-n', '1', '--seed', '1', '--out', out], /the task is vt or cwe, not fwe/],
      [['vt', '--length', '320', '-n', '1', '--out', out], /--seed \(missing\): expected a whole number/],
      [['vt', '--noise', '5-8', '--length', '320', '-n', '1', '--seed', '1', '--out', out], /--noise 5-8: expected LO:HI/],
      [['vt', '--hops', '4', '--noise', '2:3', '--length', '320', '-n', '1', '--seed', '1', '--out', out], /--noise 2:3: at least as many noise lines/],
      [['vt', '--length', '100', '-n', '2', '--seed', '1', '--out', out], /--length 100: too short for these rows/],
      [['cwe', '--repeats', '1:3', '--length', '320', '-n', '1', '--seed', '1', '--out', out], /--repeats 1:3: the ten words at least twice/],
      [['vt', '--hops', '1', '--noise', '2:5', '--length', '224', '-n', '200', '--seed', '1', '--out', out], /--noise 2:5: at --length 224 no row of 5 fitted/],
      [['vt', '--hop', '1', '--length', '224', '-n', '1', '--seed', '1', '--out', out], /Unknown option '--hop'/],
      [['vt', '--length', '224', '-n', '0', '--seed', '1', '--out', out], /-n 0: at least one row/],
      [['vt', '--hops', '1', '--noise', '2:2', '--length', '224', '-n', '2', '--seed', '1', '--out', path.join(repo, 'package.json')], /--out .*package\.json: cannot write/],
    ];
    for (const [args, msg] of cases) {
      const r = await tool(args);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
  });
});
