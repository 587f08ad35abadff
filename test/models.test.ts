// quest models check, and the refusals of what a backend does not serve (issue #22).
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine/index.js';
import { openModelFolder } from '../src/model/index.js';
import { PRESETS } from '../src/model/presets.js';
import { servedBy } from '../src/cli/models.js';
import { copyModel, defaultModel, fixtures, quest } from './helpers.js';

const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

const BOTH = ['yarn-llama', 'yarn-qwen2', 'qwen3', 'phi3-longrope', 'mistral-window', 'dynamic-llama', 'gemma2', 'gemma3'];

describe('quest models check', () => {
  it('a model both backends serve', async () => {
    const r = await quest(['models', 'check', path.join(fixtures, 'llama')]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split('\n').slice(1, 3)).toEqual(['cpu   served', 'cuda  served']);
    expect(r.stdout).toContain('llama, 2 layers, 4 heads (2 KV) of 64, rope llama3, 4096 positions');
  });

  it.each(BOTH)('%s: both backends serve it', async (name) => {
    const r = await quest(['models', 'check', path.join(fixtures, name)]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split('\n').slice(1, 3)).toEqual(['cpu   served', 'cuda  served']);
  });

  it('names the sliding window and the layers it covers', async () => {
    const r = await quest(['models', 'check', path.join(fixtures, 'mistral-window')]);
    expect(r.stdout).toContain('sliding window 48 on 2 of 2 layers');
  });

  it('a config it cannot read: one line naming the file and field', async () => {
    const dir = copyModel(defaultModel);
    made.push(path.dirname(dir));
    const cfg = path.join(dir, 'config.json');
    const c = JSON.parse(readFileSync(cfg, 'utf8'));
    c.architectures = ['Gemma4ForCausalLM'];
    writeFileSync(cfg, JSON.stringify(c));
    const r = await quest(['models', 'check', dir]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim()).toBe(
      `quest: ${cfg}: unknown architecture "Gemma4ForCausalLM" (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Phi3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM)`,
    );
  });
});

describe('the GPU backend refuses what it does not serve', () => {
  // With no tensors listed, reading any weight would fail on a missing tensor: the refusal comes first.
  it('an intermediate size off the GEMV\'s multiple of 32, before any weight is read', async () => {
    const dir = path.join(fixtures, 'gemma2');
    const spec = { ...openModelFolder(dir).spec, intermediateSize: 250, tensors: [] };
    const why = 'hidden and intermediate sizes must be multiples of 32';
    await expect(loadModel(spec, dir, 'cuda')).rejects.toThrow(`${dir}: the CUDA backend does not serve this model: ${why}`);
  });
});

describe('policies on sliding-window layers', () => {
  const dir = path.join(fixtures, 'mistral-window');
  const expected = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8'));
  const prompt = Int32Array.from(expected.prompt_ids);
  const fed = Int32Array.from(expected.greedy_ids.slice(0, 8));
  const kvBytesPerToken = 64 * 2 * 4; // head_dim x (key, value) x fp32, one KV head

  async function run(slidingLayers: boolean[], policy: string, budget: number) {
    const spec = { ...openModelFolder(dir).spec, slidingLayers };
    const model = await loadModel(spec, dir);
    const seq = model.createSequence({ policy, budget, pageSize: 16, denseLayers: 0 });
    await seq.prefill(prompt);
    const logits = await seq.feed(fed);
    return { logits: Array.from(logits), stats: seq.stats() };
  }

  it('a layer that reads its window is not governed: a small budget changes nothing', async () => {
    const dense = await run([true, true], 'dense', 0);
    const quest = await run([true, true], 'quest', 32);
    expect(quest.logits).toEqual(dense.logits);
    expect(quest.stats.policySamples).toBe(0);
    // Each step reads the window (48 tokens) in both layers: bytes counted, budget not.
    expect(quest.stats.kvBytesRead).toBe(fed.length * 2 * 48 * kvBytesPerToken);
  });

  it('a full layer beside it is governed by the budget', async () => {
    const q = await run([true, false], 'quest', 32);
    expect(q.stats.policySamples).toBe(fed.length); // steps x one governed layer x one KV head
    // Quest's two pages of 16, the current one partial: at most the budget.
    expect(q.stats.tokensRead / q.stats.policySamples).toBeLessThanOrEqual(32);
    expect(q.stats.tokensRead).toBeGreaterThan(0);
    expect(q.stats.kvBytesRead).toBe(fed.length * 48 * kvBytesPerToken + q.stats.tokensRead * kvBytesPerToken);
  });
});

describe('issue #22 presets', () => {
  it.each([
    ['qwen3-8b', ''],
    ['phi-3-mini-128k', ''],
    ['gemma-2-9b', ''],
    ['yarn-llama-2-7b', ''],
  ])('%s: served on the CPU; on the GPU, or what stops it', (name, why) => {
    expect(servedBy({ ...PRESETS[name], tensors: [] })).toEqual({ cpu: '', cuda: why });
  });

  it("yarn-llama-2-7b's attention factor is transformers' 0.1 ln(32) + 1", () => {
    expect(PRESETS['yarn-llama-2-7b'].rope.attentionFactor).toBeCloseTo(0.1 * Math.log(32) + 1, 15);
  });
});

describe('issue #23 presets', () => {
  it.each(['llama-2-7b-awq', 'llama-3-8b-awq', 'llama-3-70b-awq'])('%s: AWQ 4-bit in groups of 128, served on both backends', (name) => {
    expect(PRESETS[name].quant).toEqual({ method: 'awq', bits: 4, groupSize: 128, zeroOffset: 0 });
    expect(servedBy({ ...PRESETS[name], tensors: [] })).toEqual({ cpu: '', cuda: '' });
  });

  it('serve 4-bit Phi-3 and groups of 16 on the CPU only', () => {
    const awq = { method: 'awq', bits: 4, groupSize: 16, zeroOffset: 0 } as const;
    expect(servedBy({ ...PRESETS['llama-2-7b'], quant: awq, tensors: [] }).cuda).toBe('4-bit group_size must be a multiple of 32 on the GPU');
    expect(servedBy({ ...PRESETS['phi-3-mini-128k'], quant: { ...awq, groupSize: 128 }, tensors: [] })).toEqual({ cpu: '', cuda: '4-bit Phi-3 (fused projections) is not served on the GPU yet' });
  });
});

describe('how far a scaled rope is served', () => {
  const spec = (edit: (c: Record<string, any>) => void) => {
    const dir = copyModel(defaultModel);
    made.push(path.dirname(dir));
    const file = path.join(dir, 'config.json');
    const c = JSON.parse(readFileSync(file, 'utf8'));
    edit(c);
    writeFileSync(file, JSON.stringify(c));
    return openModelFolder(dir).spec;
  };

  it("YaRN with the pretraining length as max_position_embeddings (Qwen2.5's advice): factor x original", () => {
    const s = spec((c) => {
      c.max_position_embeddings = 32768;
      c.rope_parameters = { rope_type: 'yarn', rope_theta: 1e6, factor: 4, original_max_position_embeddings: 32768 };
    });
    expect(s.maxPositions).toBe(131072);
  });

  it('dynamic NTK: factor x max_position_embeddings', () => {
    const s = spec((c) => (c.rope_parameters = { rope_type: 'dynamic', rope_theta: 1e6, factor: 2 }));
    expect(s.maxPositions).toBe(2 * 33024);
  });
});
