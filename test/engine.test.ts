// The engine's API contract on the CPU backend: feeding token by token computes what one
// prefill computes, whatever the page size, and the statistics count what was read.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, native, type NativeModel } from '../src/engine/index.js';
import { openModelFolder } from '../src/model/index.js';
import { fixtures, relDiff } from './helpers.js';

const dir = path.join(fixtures, 'llama');
const prompt: number[] = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')).prompt_ids;
let loaded: NativeModel | undefined;
// Loaded by whichever test runs first, so each passes alone.
const getModel = async () => (loaded ??= await loadModel(openModelFolder(dir).spec, dir));
const opts = (pageSize = 16) => ({ policy: 'dense', budget: 0, pageSize, denseLayers: 2 });

describe('engine', () => {
  it('loads', async () => {
    const model = await getModel();
    expect(model.backend).toBe('cpu');
    expect(model.weightBytes).toBeGreaterThan(0);
  });

  it.each([1, 16, 64])('prefill + feed equals one prefill (page size %i)', async (pageSize) => {
    const model = await getModel();
    const whole = await model.createSequence(opts(16)).prefill(Int32Array.from(prompt));
    const seq = model.createSequence(opts(pageSize));
    await seq.prefill(Int32Array.from(prompt.slice(0, 200)));
    const fed = await seq.feed(Int32Array.from(prompt.slice(200)));
    expect(seq.length).toBe(prompt.length);
    // Each row's arithmetic is the same however rows are batched or paged: exactly equal.
    expect(relDiff(fed, whole)).toBe(0);
  });

  it('counts decode steps and the tokens dense attention reads', async () => {
    const model = await getModel();
    const seq = model.createSequence(opts());
    await seq.prefill(Int32Array.from(prompt.slice(0, 100)));
    await seq.feed(Int32Array.from(prompt.slice(100, 110)));
    const st = seq.stats();
    expect(st.prefillTokens).toBe(100);
    expect(st.decodeSteps).toBe(10);
    // Layers 2.. are governed (this model has 2 layers, dense_layers 0 would govern both).
    const all = model.createSequence({ ...opts(), denseLayers: 0 });
    await all.prefill(Int32Array.from(prompt.slice(0, 100)));
    await all.feed(Int32Array.from(prompt.slice(100, 110)));
    const s2 = all.stats();
    // Steps at positions 100..109 read 101..110 tokens: mean 105.5, per KV head and layer.
    expect(s2.tokensRead / s2.policySamples).toBeCloseTo(105.5, 6);
  });

  it('turns native errors into rejected promises', async () => {
    const model = await getModel();
    const seq = model.createSequence(opts());
    await expect(seq.feed(Int32Array.from([1]))).rejects.toThrow('feed before prefill');
    await expect(seq.prefill(Int32Array.from([100000]))).rejects.toThrow('outside the vocabulary');
    await expect(seq.generate(4, new Int32Array(0))).rejects.toThrow('generate before prefill');
    expect(() => model.createSequence({ ...opts(), pageSize: 12 })).toThrow('power of two');
    expect(() => model.createSequence({ ...opts(), policy: 'nope' })).toThrow("unknown policy 'nope'");
  });

  it('refuses a setting it does not declare, or one out of its declared range, naming the key', async () => {
    const model = await getModel();
    expect(() => model.createSequence({ ...opts(), policy: 'snapkv', budget: 64, snapkvWindw: 8 })).toThrow(/unknown sequence option 'snapkvWindw' \(known: .*snapkvWindow/);
    expect(() => model.createSequence({ ...opts(), policy: 'h2o', budget: 64, h2oHeavyFraction: 1.5 })).toThrow(/'h2oHeavyFraction' must be a number in \[0, 1\], not 1.5/);
    expect(() => model.createSequence({ ...opts(), policy: 'snapkv', budget: 64, snapkvKernel: 2.5 })).toThrow(/'snapkvKernel' must be an integer/);
    expect(() => model.createSequence({ ...opts(), policy: 'quest', budget: 64, questGqa: 'per-head' })).toThrow(/questGqa: unknown value 'per-head' \(group, per-query-head\)/);
    expect(() => model.createSequence({ ...opts(), policy: 'streaming', budget: 16, streamingSinks: 16 })).toThrow(/streaming needs a budget above its streamingSinks \(16\)/);
  });

  it('describes each policy it creates, and every setting with a default in its range', async () => {
    const model = await getModel();
    const { policies, settings } = native().describePolicies();
    expect(policies.map((p) => p.name)).toEqual(['dense', 'quest', 'h2o', 'streaming', 'tova', 'snapkv', 'oracle-topk']);
    for (const p of policies) expect(model.createSequence({ ...opts(), policy: p.name, budget: 64 }).length).toBe(0);
    expect(settings.map((s) => s.key)).toEqual(['pageSize', 'denseLayers', 'questGqa', 'h2oHeavyFraction', 'streamingSinks', 'snapkvWindow', 'snapkvKernel', 'snapkvInterval', 'kvDtype']);
    for (const s of settings) {
      if (s.type === 'choice') expect(s.choices).toContain(s.default);
      else expect(s.default as number).toBeGreaterThanOrEqual(s.min!);
      if (s.policy !== null) expect(policies.map((p) => p.name)).toContain(s.policy);
    }
  });

  it('refuses a second call on a busy sequence', async () => {
    const model = await getModel();
    const seq = model.createSequence(opts());
    const first = seq.prefill(Int32Array.from(prompt));
    expect(() => seq.prefill(Int32Array.from(prompt))).toThrow('busy');
    await first;
  });
});
