// The CLI as a user runs it: the default eval, resuming, bench-latency and env.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { gpuRefusal, native } from '../src/engine/index.js';
import { hasGpu as gpu, quest, repo, tempDirs } from './helpers.js';

const tempDir = tempDirs();

const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n');

describe('quest eval', () => {
  it('runs the shipped default and writes records, CSV, Markdown and JSON', async () => {
    const out = tempDir();
    const r = await quest(['eval', '--output-path', out]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('| task | length | policy | budget |');
    expect(r.stdout).toContain('model quest-tiny');
    expect(r.stdout).toMatch(/\| passkey \| 1024 \| dense \| all \| decode \| 5 \|/);
    expect(r.stdout).toMatch(/\| passkey \| 2048 \| dense \| all \| decode \| 5 \|/);
    const records = lines(path.join(out, 'samples.jsonl')).map((l) => JSON.parse(l));
    expect(records).toHaveLength(10);
    for (const rec of records) {
      expect(rec.score === 0 || rec.score === 1).toBe(true);
      expect(rec.contextTokens + rec.questionTokens).toBeLessThanOrEqual(rec.length);
      expect(typeof rec.prediction).toBe('string');
    }
    expect(lines(path.join(out, 'summary.csv'))[0]).toContain('task,metric,length,policy,budget');
    const results = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8'));
    // The shipped model (models/quest-tiny) retrieves the pass key at its default lengths.
    for (const row of results.rows) expect(row.score).toBeGreaterThanOrEqual(95);
    expect(results.config.tasks).toEqual(['passkey']);
    expect(results.backend).toBe(gpu ? 'cuda' : 'cpu');
    expect(results.gitSha).toMatch(/^[0-9a-f]{40}$/);
    expect(typeof results.gitDirty).toBe('boolean');
    // A result that cannot be tied to a commit says so as it is written.
    const warning = `quest: warning: ${path.join(out, 'results.json')} comes from a tree with uncommitted changes`;
    if (results.gitDirty) {
      expect(results.gitDiffSha256).toMatch(/^[0-9a-f]{64}$/);
      expect(r.stderr).toContain(warning);
    } else {
      expect(results.gitDiffSha256).toBeNull();
      expect(r.stderr).not.toContain(warning);
    }
    expect(results.rows).toHaveLength(2);
    expect(existsSync(path.join(out, 'summary.md'))).toBe(true);
  });

  it('resumes into the same output without repeating or losing a record', async () => {
    const out = tempDir();
    const args = ['eval', '--lengths', '512', '--output-path', out];
    expect((await quest([...args, '--limit', '2'])).exitCode).toBe(0);
    const first = lines(path.join(out, 'samples.jsonl'));
    expect(first).toHaveLength(2);
    expect((await quest([...args, '--limit', '4'])).exitCode).toBe(0);
    const second = lines(path.join(out, 'samples.jsonl'));
    expect(second).toHaveLength(4);
    expect(second.slice(0, 2)).toEqual(first);
    expect(new Set(second.map((l) => JSON.parse(l).key)).size).toBe(4);
  });

  it('refuses to mix runs of different configurations in one output', async () => {
    const out = tempDir();
    expect((await quest(['eval', '--lengths', '512', '--limit', '1', '--output-path', out])).exitCode).toBe(0);
    const r = await quest(['eval', '--lengths', '256', '--limit', '1', '--output-path', out]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('holds a run with a different configuration');
  });
});

describe('quest eval with policies', () => {
  it('prints accuracy by policy x budget with the read statistics', async () => {
    const out = tempDir();
    const r = await quest(['eval', '--tasks', 'passkey', '--policies', 'dense,quest,h2o,streaming', '--budgets', '64,256', '--lengths', '512', '--limit', '2', '--output-path', out]);
    expect(r.exitCode).toBe(0);
    const rows = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')).rows;
    expect(rows.map((x: { policy: string; budget: number | null }) => `${x.policy}@${x.budget ?? 'all'}`)).toEqual([
      'dense@all', 'quest@64', 'quest@256', 'h2o@64', 'h2o@256', 'streaming@64', 'streaming@256',
    ]);
    for (const row of rows) {
      expect(row.n).toBe(2);
      if (row.policy === 'h2o' || row.policy === 'streaming') expect(row.tokensPerStep).toBe(row.budget);
      if (row.policy === 'quest') {
        expect(row.tokensPerStep).toBeLessThanOrEqual(row.budget);
        expect(row.metaKiBPerStep).toBeGreaterThan(0);
      }
    }
    const rec = JSON.parse(lines(path.join(out, 'samples.jsonl'))[0]);
    expect(rec.questionMode).toBe('decode');
    expect(rec.questionTokensFed).toBe(rec.questionTokens);
  });

  it('feeds only the last --question-tokens under the policy', async () => {
    const out = tempDir();
    const r = await quest(['eval', '--lengths', '256', '--limit', '1', '--question-tokens', '3', '--output-path', out]);
    expect(r.exitCode).toBe(0);
    const rec = JSON.parse(lines(path.join(out, 'samples.jsonl'))[0]);
    expect(rec.questionTokensFed).toBe(3);
  });
});

describe('quest eval --tasks perplexity', () => {
  it('reads --text-file and prefills --ppl-prefix tokens, then scores the rest token by token', async () => {
    const run = async (extra: string[]) => {
      const out = tempDir();
      const r = await quest(['eval', '--tasks', 'perplexity', '--lengths', '256', '--limit', '1', '--ppl-prefix', '100', ...extra, '--output-path', out]);
      expect(r.exitCode).toBe(0);
      return JSON.parse(lines(path.join(out, 'samples.jsonl'))[0]);
    };
    const heldout = await run([]);
    expect(heldout.contextTokens).toBe(100);
    expect(heldout.questionTokens).toBe(156);
    expect(heldout.questionTokensFed).toBe(156);
    expect(heldout.score).toBeGreaterThan(1);
    const other = await run(['--text-file', path.join(repo, 'datasets', 'haystack', 'kjv.txt')]);
    expect(other.contextTokens).toBe(100);
    expect(other.score).not.toBe(heldout.score);
  });
});

describe('quest bench-latency', () => {
  it('times prefill and decode for a preset with random weights', async () => {
    const out = tempDir();
    const r = await quest(['bench-latency', '--model', 'tiny', '--lengths', '64,128', '--decode-steps', '4', '--repeats', '1', '--output-path', out]);
    expect(r.exitCode).toBe(0);
    const { kind, rows } = JSON.parse(readFileSync(path.join(out, 'rows.json'), 'utf8'));
    expect(kind).toBe('latency');
    expect(JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8')).kind).toBe('latency');
    expect(rows.map((x: { length: number }) => x.length)).toEqual([64, 128]);
    for (const row of rows) {
      expect(row.prefillMs).toBeGreaterThan(0);
      expect(row.decodeMsPerStep).toBeGreaterThan(0);
    }
    // Four decode steps after 64 tokens read 65..68 tokens per KV head.
    expect(rows[0].tokensPerStep).toBeCloseTo(66.5, 6);
  });
});

describe('choosing the backend', () => {
  it('sends to the CPU what the GPU forward pass does not implement, saying why', () => {
    expect(gpuRefusal(undefined)).toBeNull();
    expect(gpuRefusal({ kvDtype: 'auto' })).toBeNull();
    expect(gpuRefusal({ kvDtype: 'fp16' })).toBeNull();
    expect(gpuRefusal({ kvDtype: 'bf16' })).toBeNull();
    expect(gpuRefusal({ kvDtype: 'fp32' })).toMatch(/--kv-dtype fp32/);
  });

  it.skipIf(gpu)('--device cuda without a usable GPU fails before any work, naming why', async () => {
    const r = await quest(['eval', '--device', 'cuda', '--lengths', '256', '--samples', '1', '--output-path', tempDir()]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/--device cuda: .*; use --device cpu/);
  });

  it.skipIf(gpu)('--devices without a usable GPU fails before any work, in eval and bench-latency', async () => {
    const out = tempDir();
    const e = await quest(['eval', '--devices', '0,1', '--lengths', '256', '--output-path', out]);
    expect(e.exitCode).toBe(1);
    expect(e.stderr).toMatch(/--devices 0,1: no usable GPU/);
    expect(existsSync(path.join(out, 'samples.jsonl'))).toBe(false);
    const b = await quest(['bench-latency', '--devices', '0', '--model', 'tiny', '--lengths', '256']);
    expect(b.exitCode).toBe(1);
    expect(b.stderr).toMatch(/--devices 0: no usable GPU/);
  });
});

describe('quest env', () => {
  it('says which backends were built and which device runs use', async () => {
    const r = await quest(['env']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/backends built: cpu/);
    expect(r.stdout).toMatch(gpu ? /runs will use: +cuda \(GPU / : /runs will use: +cpu \(/);
    // Which GEMM and attention kernel a prefill runs, wherever the CUDA backend is built.
    if (native().backendInfo().cuda.compiled) expect(r.stdout).toMatch(/prefill gemm: +(cuBLASLt|own tensor-core GEMM \()/);
  });

  it.skipIf(!native().backendInfo().cuda.compiled)("says how a decode batch's attention launches, and names a bad QUEST_DECODE_LANES", async () => {
    expect((await quest(['env'])).stdout).toMatch(/decode batch: +the dense and Quest sequences' attention in one launch a kind a layer/);
    expect((await quest(['env'], { QUEST_DECODE_LANES: '0' })).stdout).toMatch(/decode batch: +each sequence's attention on its own stream \(QUEST_DECODE_LANES=0\)/);
    expect((await quest(['env'], { QUEST_DECODE_LANES: 'yes' })).stdout).toMatch(/decode batch: +QUEST_DECODE_LANES=yes: expected 0 or 1/);
  });
});

describe('the GPU tests', () => {
  // On a machine without a GPU: QUEST_REQUIRE_GPU=1 turns their skip into a failure.
  it.skipIf(gpu)('fail instead of skipping under QUEST_REQUIRE_GPU=1', async () => {
    const vitest = path.join(repo, 'node_modules', 'vitest', 'vitest.mjs');
    const run = (env: Record<string, string>) => execa(process.execPath, [vitest, 'run', 'test/cuda.test.ts'], { cwd: repo, reject: false, env, all: true });
    const required = await run({ QUEST_REQUIRE_GPU: '1' });
    expect(required.exitCode).not.toBe(0);
    expect(required.all).toMatch(/QUEST_REQUIRE_GPU=1 but GPU kernel tests cannot run: /);
    const plain = await run({ QUEST_REQUIRE_GPU: '' });
    expect(plain.exitCode).toBe(0);
    expect(plain.all).toMatch(/GPU kernel tests skipped: /);
  });
});
