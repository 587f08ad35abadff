import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, expect } from 'vitest';
import { loadModel, native } from '../src/engine/index.js';
import type { NativeModel, NativeModelSpec, NativeOneLayerInput, NativeSequenceOptions, NativeStepSelection } from '../src/engine/index.js';
import { settingDefaults } from '../src/run/policies.js';
import { rng } from '../src/tasks/rng.js';

export const repo = path.resolve(import.meta.dirname, '..');
export const fixtures = path.join(repo, 'test', 'fixtures');
export const defaultModel = path.join(repo, 'models', 'quest-tiny');

const made: string[] = [];

/** A fresh temp folder, removed when the test file's tests are done. */
export function tempDir(prefix = 'quest-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** A maker of temp folders that are removed after each test of the file that calls it. */
export function tempDirs(prefix = 'quest-test-'): () => string {
  const made: string[] = [];
  afterEach(() => {
    for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const d = tempDir(prefix);
    made.push(d);
    return d;
  };
}

/** Each record of an eval's samples.jsonl as its JSON line, without the timings. */
export const recordsWithoutTimings = (dir: string) =>
  readFileSync(path.join(dir, 'samples.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const r = JSON.parse(l);
      for (const k of ['selectMs', 'prefillMs', 'decodeMsPerStep']) delete r.stats[k];
      return JSON.stringify(r);
    });

/** A cell of a shared prefill: the policy at the budget (dense: none), every setting at its default, selections recorded. */
export const shareCell = (policy: string, budget: number, pageSize: number): NativeSequenceOptions => ({
  ...settingDefaults(),
  policy,
  budget: policy === 'dense' ? 0 : budget,
  pageSize,
  denseLayers: 0,
  recordSelections: true,
});

/** A model folder's engines on the CPU and on the GPU, loaded on the first call and kept. */
export function enginePair(spec: NativeModelSpec, dir: string): () => Promise<{ cpu: NativeModel; dev: NativeModel }> {
  let pair: Promise<{ cpu: NativeModel; dev: NativeModel }> | undefined;
  return () =>
    (pair ??= (async () => {
      const cpu = await loadModel(spec, dir, 'cpu');
      const dev = await loadModel(spec, dir, 'cuda');
      expect(dev.backend).toBe('cuda');
      return { cpu, dev };
    })());
}

const cuda = native().backendInfo().cuda;
/** A usable CUDA device: the addon was built with CUDA and sees a GPU. */
export const hasGpu = cuda.compiled && cuda.devices > 0;

/**
 * Whether the GPU tests named `what` run. Without a GPU they are skipped, saying why; with
 * QUEST_REQUIRE_GPU=1 (the GPU machine's runs) the file fails instead, so that a build
 * without CUDA cannot pass as green.
 */
export function gpuTests(what: string): boolean {
  if (hasGpu) return true;
  const why = cuda.error || (cuda.compiled ? 'no CUDA device' : 'the addon was built without CUDA');
  if (process.env.QUEST_REQUIRE_GPU === '1') throw new Error(`QUEST_REQUIRE_GPU=1 but ${what} cannot run: ${why}`);
  console.log(`${what} skipped: ${why}`);
  return false;
}

// Each test file loads this module afresh, so the hook is the file's own.
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Sets the environment variable `name` (unsets it for undefined); returns what puts its old value back. */
export function setEnv(name: string, value: string | undefined): () => void {
  const before = process.env[name];
  const put = (v: string | undefined) => {
    if (v === undefined) delete process.env[name];
    else process.env[name] = v;
  };
  put(value);
  return () => put(before);
}

/** A writable copy of a model folder. */
export function copyModel(src: string): string {
  const dir = path.join(tempDir(), path.basename(src));
  cpSync(src, dir, { recursive: true });
  return dir;
}

/** Runs the CLI as a user would; never throws, so the exit code can be checked. */
export function quest(args: string[], env: Record<string, string> = {}) {
  return execa(process.execPath, [path.join(repo, 'bin', 'quest.js'), ...args], { reject: false, env });
}

/**
 * A near tie: a CPU selection margin within what the backends' scores can differ by, relative
 * to their scale. A GPU score is formed from its query and key (or page bound), each rounded to
 * the cache type (unit roundoff u: fp16 2^-11, bf16 2^-8), so a product moves by 2u and a
 * probability, whose normaliser moves too, by 4u; and both factors carry the drift the forward
 * pass has gathered by that layer (`drift`, the logits' bound relative to their scale), once each.
 */
export const nearTie = (u: number, drift: number) => 4 * u + 2 * drift;

// A GPU-vs-reference bound derived from the arithmetic rather than observed: 40 units of the
// GPU weights' roundoff (fp16 2^-11, bf16 2^-8), relative to the largest logit.
export const DERIVED_FP16 = 40 * 2 ** -11;
export const DERIVED_BF16 = 40 * 2 ** -8;

/** Rewrites a safetensors header in place (the data is left as it was). */
export function editHeader(file: string, edit: (h: Record<string, any>) => void): void {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  edit(header);
  let text = JSON.stringify(header);
  // Keep the data where it was: pad the new header to the old length.
  if (text.length > n) throw new Error('edited header grew');
  text = text.padEnd(n, ' ');
  const out = Buffer.concat([buf.subarray(0, 8), Buffer.from(text, 'utf8'), buf.subarray(8 + n)]);
  writeFileSync(file, out);
}

/** max |a - ref| over max |ref|: a logits difference relative to the reference's scale. */
export function relDiff(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return diff / scale;
}

/**
 * A CLI run's stderr without its progress lines (every 10 s and at the end, without a terminal)
 * and the provenance warning, which follows the checkout's state, not the run's.
 */
export function stderrNotes(stderr: string): string {
  return stderr
    .split('\n')
    .filter((l) => !/^quest: warning: .* (comes from a tree with uncommitted changes|records no git state)/.test(l))
    .filter((l) => !/^\S+ \d+\/\d+ \| \S+ elapsed \| eta \S+$/.test(l))
    .join('\n')
    .trim();
}

export const sameList = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.prototype.every.call(a, (v: number, i: number) => v === b[i]);

/** Where two backends' selections of one step and layer part: the reference's margin at each list that differs. */
export function partedMargins(ref: NativeStepSelection, other: NativeStepSelection, layer: number): number[] {
  const [la, lb] = [ref.lists[layer], other.lists[layer]];
  expect(lb).toHaveLength(la.length);
  return la.flatMap((list, j) => (sameList(list, lb[j]) ? [] : [ref.margins[layer][j]]));
}

/**
 * Tokens read over recorded decode steps, as the engine counts them: a KV head's list, or,
 * where the lists are per query head, the union of its `group` heads' lists.
 */
export function tokensServed(steps: NativeStepSelection[], kvHeads: number, group: number): number {
  let total = 0;
  for (const { lists } of steps)
    for (const layer of lists) {
      if (layer.length === kvHeads) total += layer.reduce((n, list) => n + list.length, 0);
      else for (let g = 0; g < kvHeads; g++) total += new Set(layer.slice(g * group, (g + 1) * group).flatMap((list) => Array.from(list))).size;
    }
  return total;
}

/** One attention layer's raw inputs for runOneLayer (keys cached as given, no RoPE). */
export type LayerCase = Pick<NativeOneLayerInput, 'heads' | 'kvHeads' | 'headDim' | 'promptLength' | 'steps' | 'keys' | 'values' | 'queries'>;

/** A seeded random layer case: Gaussian keys, values and queries. */
export function randomCase(seed: number, promptLength = 45, steps = 40, heads = 4, kvHeads = 2, headDim = 8): LayerCase {
  const next = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(next() + 1e-12)) * Math.cos(2 * Math.PI * next());
  const total = promptLength + steps;
  const fill = (n: number, scale: number) => Float32Array.from({ length: n }, () => gauss() * scale);
  return { heads, kvHeads, headDim, promptLength, steps, keys: fill(total * kvHeads * headDim, 1.5), values: fill(total * kvHeads * headDim, 1), queries: fill(total * heads * headDim, 1.5) };
}

/** The softmax of q.k / sqrt(d) of query head h at position r over the positions `over`, float64 from the raw inputs. */
export function headProbabilities(c: LayerCase, r: number, h: number, over: readonly number[]): number[] {
  const { heads, kvHeads: kvh, headDim: d } = c;
  const g = Math.floor(h / (heads / kvh));
  const logits = over.map((t) => {
    let dot = 0;
    for (let i = 0; i < d; i++) dot += c.queries[(r * heads + h) * d + i] * c.keys[(t * kvh + g) * d + i];
    return dot / Math.sqrt(d);
  });
  const mx = Math.max(...logits);
  const e = logits.map((x) => Math.exp(x - mx));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}
