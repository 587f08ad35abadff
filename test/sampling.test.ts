// Sampling: the warped distribution and draws against transformers' own warpers
// (test/fidelity/sampling/warpers.json, made outside the project; its README says how).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { pickToken, warpedProbs } from '../src/run/sampling.js';
import { repo } from './helpers.js';

interface Case {
  temperature: number;
  topK: number;
  topP: number;
  logits: number[];
  probs: number[];
  u: number[];
  picks: number[];
}
const cases = (JSON.parse(readFileSync(path.join(repo, 'test', 'fidelity', 'sampling', 'warpers.json'), 'utf8')) as { cases: Case[] }).cases;

describe("sampling as transformers' warpers leave the distribution", () => {
  it.each(cases.map((c, i) => [i, c.temperature, c.topK, c.topP, c]))('case %i: temperature %f, top-k %i, top-p %f', (_i, _t, _k, _p, c) => {
    const s = { temperature: c.temperature, topK: c.topK, topP: c.topP };
    const p = warpedProbs(Float32Array.from(c.logits), s);
    for (let i = 0; i < p.length; i++) {
      expect(p[i] === 0).toBe(c.probs[i] === 0);
      expect(Math.abs(p[i] - c.probs[i])).toBeLessThan(1e-6);
    }
    expect(c.u.map((u) => pickToken(Float32Array.from(c.logits), s, u))).toEqual(c.picks);
  });

  it('temperature 0 takes the first largest logit', () => {
    expect(pickToken(Float32Array.of(1, 3, 3, 2), { temperature: 0, topK: 0, topP: 1 }, 0.99)).toBe(1);
  });
});
