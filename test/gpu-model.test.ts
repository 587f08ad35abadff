// The GPU forward pass against the CPU engine and the transformers fixtures: whole-model
// logits, greedy tokens and every policy, on random tokens from a seeded generator.
// Skipped, with a message, where no GPU is (QUEST_REQUIRE_GPU=1: they fail).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, type NativeModel, type NativeSequenceOptions } from '../src/engine/index.js';
import { openModelFolder } from '../src/model/index.js';
import { randint, rng } from '../src/tasks/rng.js';
import { fixtures, gpuTests, relDiff, repo } from './helpers.js';

const gpu = gpuTests('GPU model tests');

// Bounds on max |GPU - reference| / max |reference| of the logits, per fixture: 3x the
// largest difference recorded over the 38-45 H100 runs whose logs are in results/
// (gpu-forward-2026-11-26/run8 to run85, gpu-*-h100-2026-11-26), given after each. `decode`
// covers dense decode steps and every step of a policy whose lists are fixed (StreamingLLM,
// TOVA at budget 1). `prefill` (GPU vs CPU over 2,500 tokens in chunks) was never printed:
// it is derived, not observed, as 40 units of the weights' roundoff (fp16 2^-11, bf16 2^-8)
// spread over a few layers, to be replaced by a measured one; so is the prefill's with a
// bf16 KV cache, where the GPU holds queries and probabilities in bf16 too.
const DERIVED_FP16 = 40 * 2 ** -11;
const DERIVED_BF16 = 40 * 2 ** -8;
const TOLERANCES: Record<string, { transformers: number; decode: number; bf16Kv: number; prefill: number }> = {
  llama: { transformers: 7.2e-3 /* 2.40e-3 */, decode: 1.2e-2 /* 3.99e-3 */, bf16Kv: 2.5e-2 /* 8.18e-3 */, prefill: DERIVED_FP16 },
  qwen2: { transformers: 3.1e-2 /* 1.03e-2 */, decode: 3.0e-2 /* 9.81e-3 */, bf16Kv: 4.3e-2 /* 1.43e-2 */, prefill: DERIVED_BF16 },
  mistral: { transformers: 5.3e-3 /* 1.76e-3 */, decode: 5.7e-3 /* 1.90e-3 */, bf16Kv: 2.6e-2 /* 8.64e-3 */, prefill: DERIVED_FP16 },
  'quest-tiny': { transformers: 5.1e-2 /* 1.68e-2 */, decode: 5.8e-2 /* 1.93e-2 */, bf16Kv: 6.8e-2 /* 2.24e-2 */, prefill: DERIVED_BF16 },
};

/** One greppable line per measured case: `observed-error <fixture> <case> <dtype> <value> ...`. */
const observed = (fixture: string, what: string, dtype: string, value: number, more = '') =>
  console.log(`observed-error ${fixture} ${what} ${dtype} ${value.toExponential(2)}${more}`);

const cases = ['llama', 'qwen2', 'mistral', ...(existsSync(path.join(fixtures, 'quest-tiny', 'expected.json')) ? ['quest-tiny'] : [])];

// Seeded: every run feeds the same tokens, so the near ties that can flip a page between the
// GPU's fp16 and the CPU's fp32 estimate fall the same way each time, and a failure repeats.
const nextToken = rng(20261126);
function randomTokens(n: number, vocab: number): Int32Array {
  return Int32Array.from({ length: n }, () => randint(nextToken, 0, vocab - 1));
}

const argmax = (x: Float32Array) => x.reduce((best, v, i) => (v > x[best] ? i : best), 0);

describe.skipIf(!gpu).each(cases)('%s on the GPU', (name) => {
  const fixture = path.join(fixtures, name);
  const expected = JSON.parse(readFileSync(path.join(fixture, 'expected.json'), 'utf8'));
  const dir = expected.model ? path.join(repo, expected.model) : fixture;
  const folder = openModelFolder(dir);
  const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const dtype = String(config.dtype ?? config.torch_dtype);
  const tol = TOLERANCES[name];
  const vocab = folder.spec.vocabSize;
  let cpu: NativeModel;
  let dev: NativeModel;
  const both = async () => {
    cpu ??= await loadModel(folder.spec, dir, 'cpu');
    dev ??= await loadModel(folder.spec, dir, 'cuda');
    expect(dev.backend).toBe('cuda');
  };
  const opts = (policy: string, budget = 0): NativeSequenceOptions => ({ policy, budget, pageSize: 16, denseLayers: 0 });

  it('matches transformers logits at every position', async () => {
    await both();
    const ref = new Float32Array(readFileSync(path.join(fixture, 'logits.f32')).buffer.slice(0));
    const seq = dev.createSequence(opts('dense'));
    const logits = await seq.prefill(Int32Array.from(expected.prompt_ids), true);
    seq.close();
    const d = relDiff(logits, ref);
    observed(name, 'transformers', dtype, d, ` (bound ${tol.transformers})`);
    expect(d).toBeLessThan(tol.transformers);
  });

  it('matches the CPU engine over chunked prefills, then dense decode steps', async () => {
    await both();
    const prompt = randomTokens(2500, vocab); // two GPU prefill chunks (and ten CPU ones), the last partial
    const fed = randomTokens(24, vocab);
    const [a, b] = [cpu.createSequence(opts('dense')), dev.createSequence(opts('dense'))];
    const la = await a.prefill(prompt, true);
    const lb = await b.prefill(prompt, true);
    const pre = relDiff(lb, la);
    observed(name, 'prefill', dtype, pre, ` (bound ${tol.prefill}, derived)`);
    expect(pre).toBeLessThan(tol.prefill);
    let worst = 0;
    for (const t of fed) {
      const [x, y] = [await a.feed(Int32Array.of(t)), await b.feed(Int32Array.of(t))];
      worst = Math.max(worst, relDiff(y, x));
    }
    observed(name, 'dense', dtype, worst, ` (bound ${tol.decode})`);
    expect(worst).toBeLessThan(tol.decode);
    expect(b.stats().kvBytesRead * 2).toBe(a.stats().kvBytesRead); // the same tokens, fp16 vs fp32
    a.close();
    b.close();
  });

  // The engine's own tensor-core GEMM stays the prefill's fallback where cuBLASLt is absent:
  // QUEST_GEMM=own picks it for a model loaded while it is set.
  it('matches the CPU engine over chunked prefills on the own GEMM (QUEST_GEMM=own)', async () => {
    await both();
    const before = process.env.QUEST_GEMM;
    process.env.QUEST_GEMM = 'own';
    let own: NativeModel;
    try {
      own = await loadModel(folder.spec, dir, 'cuda');
    } finally {
      if (before === undefined) delete process.env.QUEST_GEMM;
      else process.env.QUEST_GEMM = before;
    }
    const prompt = randomTokens(2500, vocab);
    const [a, b] = [cpu.createSequence(opts('dense')), own.createSequence(opts('dense'))];
    expect(relDiff(await b.prefill(prompt, true), await a.prefill(prompt, true))).toBeLessThan(tol);
    a.close();
    b.close();
  });

  // Each policy against its CPU reference, decode steps at a budget well under the context.
  // The token selectors' prompt spans two GPU prefill chunks, so H2O's column sums and
  // SnapKV's window cross a chunk boundary. Lists have lengths the rules fix, so the tokens
  // read must match exactly everywhere. StreamingLLM's lists, and TOVA's at a budget of one
  // token (only the newest), are fixed outright: every step's logits must agree within the
  // decode bound. The others rank pages or tokens by scores formed from fp16 queries and keys
  // (the CPU's are fp32): where two are within that rounding the backends may read different
  // ones, and that step and the later ones (whose keys and values then differ) leave the
  // bound. The engine does not report which positions a step read, so such steps cannot be
  // told from a wrong selection here (the kernel parity checks the GPU's selection steps
  // against the CPU's rules on the same values): Quest on every fixture, and every policy on
  // the trained quest-tiny, must agree on 3 of 4 steps; on the random-weight fixtures
  // attention over random tokens is nearly flat and token ranks turn on differences below
  // fp16 rounding (TOVA agreed on 5 of 16 steps on Mistral in run 85), so there the token
  // selectors' agreement is printed, not required.
  // Quest also at Quest pages other than the GPU's storage page, and selecting per query head;
  // there the tokens a KV head serves (the union of its heads' lists) follow the selection,
  // so a near tie that the backends break apart moves them by a page: within 2%, not equal.
  type Selector = { policy: string; prompt: number; budget: number; steps: number; pageSize?: number; questGqa?: 'per-query-head'; fixed?: boolean };
  const selectors: Selector[] = [
    { policy: 'quest', prompt: 300, budget: 64, steps: 32 },
    { policy: 'quest', prompt: 300, budget: 64, steps: 32, pageSize: 8 },
    { policy: 'quest', prompt: 300, budget: 64, steps: 32, pageSize: 32 },
    { policy: 'quest', prompt: 300, budget: 64, steps: 32, questGqa: 'per-query-head' },
    { policy: 'quest', prompt: 300, budget: 64, steps: 32, pageSize: 8, questGqa: 'per-query-head' },
    ...['streaming', 'h2o', 'tova', 'snapkv', 'oracle-topk'].map((policy) => ({ policy, prompt: 2060, budget: 256, steps: 16, fixed: policy === 'streaming' })),
    { policy: 'tova', prompt: 300, budget: 1, steps: 8, pageSize: 1, fixed: true },
  ];
  const tag = (c: Selector) => [c.policy, `b${c.budget}`, c.pageSize && `p${c.pageSize}`, c.questGqa].filter(Boolean).join('-');
  const label = (c: Selector) => `${c.policy} (budget ${c.budget}${c.pageSize ? `, page ${c.pageSize}` : ''}${c.questGqa ? `, ${c.questGqa}` : ''})`;
  it.each(selectors.map((c) => ({ ...c, label: label(c) })))('matches the CPU engine under $label, reading as many tokens', async (c) => {
    const { policy, prompt, budget, steps } = c;
    await both();
    const context = randomTokens(prompt, vocab);
    const fed = randomTokens(steps, vocab);
    const o: NativeSequenceOptions = { ...opts(policy, budget), pageSize: c.pageSize ?? 16, questGqa: c.questGqa };
    const [a, b] = [cpu.createSequence(o), dev.createSequence(o)];
    await a.prefill(context);
    await b.prefill(context);
    const diffs: number[] = [];
    for (const t of fed) {
      const [x, y] = [await a.feed(Int32Array.of(t)), await b.feed(Int32Array.of(t))];
      diffs.push(relDiff(y, x));
    }
    const within = diffs.filter((d) => d < tol.decode).length;
    const agreeing = diffs.findIndex((d) => d >= tol.decode);
    const [sa, sb] = [a.stats(), b.stats()];
    observed(
      name,
      tag(c),
      dtype,
      Math.max(...diffs),
      ` (${within} of ${steps} steps within ${tol.decode}, the first ${agreeing < 0 ? steps : agreeing} in a row; tokens read ${sb.tokensRead} vs ${sa.tokensRead})`,
    );
    if (c.fixed) expect(within).toBe(steps);
    else if (policy === 'quest' || name === 'quest-tiny') expect(within).toBeGreaterThanOrEqual(0.75 * steps);
    expect(sb.policySamples).toBe(sa.policySamples);
    if (c.questGqa) expect(Math.abs(sb.tokensRead - sa.tokensRead)).toBeLessThanOrEqual(0.02 * sa.tokensRead);
    else expect(sb.tokensRead).toBe(sa.tokensRead);
    a.close();
    b.close();
  });

  it('matches the CPU engine with a bf16 KV cache (the CPU rounding its own to bf16)', async () => {
    await both();
    const prompt = randomTokens(2500, vocab);
    const fed = randomTokens(8, vocab);
    const bf16 = (policy: string, budget = 0): NativeSequenceOptions => ({ ...opts(policy, budget), kvDtype: 'bf16' });
    const [a, b] = [cpu.createSequence(bf16('dense')), dev.createSequence(bf16('dense'))];
    const pre = relDiff(await b.prefill(prompt, true), await a.prefill(prompt, true));
    observed(name, 'prefill', 'bf16-kv', pre, ` (bound ${DERIVED_BF16}, derived)`);
    expect(pre).toBeLessThan(DERIVED_BF16);
    let worst = 0;
    for (const t of fed) worst = Math.max(worst, relDiff(await b.feed(Int32Array.of(t)), await a.feed(Int32Array.of(t))));
    observed(name, 'dense', 'bf16-kv', worst, ` (bound ${tol.bf16Kv})`);
    expect(worst).toBeLessThan(tol.bf16Kv);
    expect(b.stats().kvBytesRead).toBe(a.stats().kvBytesRead);
    a.close();
    b.close();
  });

  it('generates the CPU engine greedy tokens, except past a near tie', async () => {
    await both();
    const prompt = Int32Array.from(expected.prompt_ids);
    const [a, b] = [cpu.createSequence(opts('dense')), dev.createSequence(opts('dense'))];
    await a.prefill(prompt);
    await b.prefill(prompt);
    const n = expected.greedy_ids.length;
    const [ta, tb] = [Array.from(await a.generate(n, new Int32Array(0))), Array.from(await b.generate(n, new Int32Array(0)))];
    const first = ta.findIndex((t, i) => t !== tb[i]);
    if (first < 0) expect(tb).toEqual(ta);
    else {
      // Where they part, the CPU's own top two logits must be within the bound.
      const c = cpu.createSequence(opts('dense'));
      let logits = await c.prefill(prompt);
      if (first > 0) logits = await c.feed(Int32Array.from(ta.slice(0, first)));
      const top = argmax(logits);
      const scale = Math.max(...logits.map(Math.abs));
      expect((logits[top] - logits[tb[first]]) / scale).toBeLessThan(tol.decode);
      c.close();
    }
    a.close();
    b.close();
  });
});

describe.skipIf(!gpu)('GPU sequences', () => {
  it('refuse what the GPU does not implement, and a closed sequence', async () => {
    const dir = path.join(fixtures, 'llama');
    const model = await loadModel(openModelFolder(dir).spec, dir, 'cuda');
    expect(() => model.createSequence({ policy: 'dense', budget: 0, pageSize: 16, denseLayers: 0, kvDtype: 'fp32' })).toThrow(/--kv-dtype fp32/);
    const seq = model.createSequence({ policy: 'dense', budget: 0, pageSize: 16, denseLayers: 0 });
    seq.close();
    expect(() => seq.stats()).toThrow(/closed/);
    expect(() => seq.prefill(Int32Array.of(1, 2))).toThrow(/closed/);
  });

  it('run Quest past the 16,384 pages a top-k block holds in registers', async () => {
    // One-token pages on the shipped model, whose positions reach that far: each step reads
    // its budget (the selection itself is checked against the CPU's rule at 20,000 pages by
    // the kernel parity).
    const tinyDir = path.join(repo, 'models', 'quest-tiny');
    const spec = openModelFolder(tinyDir).spec;
    const seq = (await loadModel(spec, tinyDir, 'cuda')).createSequence({ policy: 'quest', budget: 64, pageSize: 1, denseLayers: 0 });
    await seq.prefill(randomTokens(16400, spec.vocabSize));
    const logits = await seq.feed(Int32Array.of(1, 2));
    expect(logits.every(Number.isFinite)).toBe(true);
    const s = seq.stats();
    expect(s.tokensRead / s.policySamples).toBe(64);
    seq.close();
  });
});
