// A bounded, seeded fuzz of a model folder's safetensors header, config.json and
// tokenizer.json: every mutation either opens and loads, or is refused with a QuestError
// that names a file of the folder. A crash, a signal, a hang or any other error fails.
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { QuestError, errorMessage } from '../src/errors.js';
import { loadModel } from '../src/engine/index.js';
import { openModelFolder } from '../src/model/index.js';
import { loadTokenizer } from '../src/model/tokenizer.js';
import { choice, randint, rng, type Rng } from '../src/tasks/rng.js';
import { fixtures, repo, tempDir } from './helpers.js';

const MUTATIONS = 300;
// Every this many mutations, the mutated folder also goes through the CLI.
const CLI_EVERY = 50;
const SEED = 18;

const base = tempDir();
afterAll(() => rmSync(base, { recursive: true, force: true }));
const dir = path.join(base, 'tiny');
cpSync(path.join(fixtures, 'tiny'), dir, { recursive: true });
const file = {
  header: path.join(dir, 'model.safetensors'),
  config: path.join(dir, 'config.json'),
  tokenizer: path.join(dir, 'tokenizer.json'),
};
const pristine = {
  config: readFileSync(file.config, 'utf8'),
  tokenizer: readFileSync(file.tokenizer, 'utf8'),
  safetensors: readFileSync(file.header),
};
const headerLength = Number(pristine.safetensors.readBigUInt64LE(0));
const headerText = pristine.safetensors.subarray(8, 8 + headerLength).toString('utf8');
const tensorData = pristine.safetensors.subarray(8 + headerLength);

// Values at the edges: zero, negatives, fractions, past 32 and 53 bits, wrong types.
const ODD: unknown[] = [null, 0, -1, 1, 1.5, -0.5, 2 ** 31, 2 ** 53, 1e308, -1e308, '', 'x', '7', true, [], [1, 2], [-1, 3], {}, { a: 1 }];

type Json = Record<string, unknown> | unknown[];

/** A path into `v`, descending at random (shallow paths more often than deep ones). */
function randomPath(next: Rng, v: unknown): (string | number)[] {
  const out: (string | number)[] = [];
  while (typeof v === 'object' && v !== null && next() < 0.75) {
    const keys: (string | number)[] = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
    if (!keys.length) break;
    const k = choice(next, keys);
    out.push(k);
    v = (v as Record<string | number, unknown>)[k];
  }
  return out;
}

/** One structural edit of a JSON document: a value replaced, a key deleted, or a value moved. */
function mutateJson(next: Rng, doc: Json): { doc: unknown; what: string } {
  const p = randomPath(next, doc);
  if (!p.length) return { doc: choice(next, ODD), what: 'the whole document replaced' };
  const parent = p.slice(0, -1).reduce<any>((o, k) => o[k], doc);
  const key = p[p.length - 1];
  const op = randint(next, 0, 3);
  if (op === 0 && !Array.isArray(parent)) {
    delete parent[key];
    return { doc, what: `${p.join('.')} deleted` };
  }
  if (op === 1 && typeof parent[key] === 'number') {
    parent[key] = choice(next, [parent[key] + 1, parent[key] - 1, parent[key] * 2, -parent[key], parent[key] / 3]);
    return { doc, what: `${p.join('.')} changed to ${JSON.stringify(parent[key])}` };
  }
  if (op === 2) {
    const other = randomPath(next, doc).reduce<any>((o, k) => o?.[k], doc);
    parent[key] = other === undefined ? null : JSON.parse(JSON.stringify(other));
    return { doc, what: `${p.join('.')} replaced by another part of the document` };
  }
  parent[key] = choice(next, ODD);
  return { doc, what: `${p.join('.')} set to ${JSON.stringify(parent[key])}` };
}

/** Writes the pristine folder with one mutation; says what it did. */
function mutate(next: Rng): string {
  writeFileSync(file.config, pristine.config);
  writeFileSync(file.tokenizer, pristine.tokenizer);
  writeFileSync(file.header, pristine.safetensors);
  const target = choice(next, ['header', 'header', 'header', 'config', 'config', 'tokenizer'] as const);
  if (target === 'header' && next() < 0.15) {
    // Raw damage: a byte of the header text changed, or the length field off by a little.
    const buf = Buffer.from(pristine.safetensors);
    if (next() < 0.5) buf[8 + randint(next, 0, headerLength - 1)] = randint(next, 0, 255);
    else buf.writeBigUInt64LE(BigInt(Math.max(0, headerLength + randint(next, -16, 16))), 0);
    writeFileSync(file.header, buf);
    return 'model.safetensors: raw header bytes damaged';
  }
  const text = target === 'header' ? headerText : pristine[target];
  const { doc, what } = mutateJson(next, JSON.parse(text) as Json);
  const out = JSON.stringify(doc) ?? 'null';
  if (target === 'header') {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Buffer.byteLength(out)), 0);
    writeFileSync(file.header, Buffer.concat([len, Buffer.from(out), tensorData]));
  } else {
    writeFileSync(file[target], out);
  }
  return `${path.basename(file[target])}: ${what}`;
}

/** Opens and loads the folder as eval does; a refusal must be a QuestError naming a file of it. */
async function openAndLoad(what: string): Promise<'loaded' | 'refused'> {
  try {
    const folder = openModelFolder(dir);
    loadTokenizer(dir);
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('loadModel did not settle in 20 s')), 20_000)));
    try {
      await Promise.race([loadModel(folder.spec, folder.dir, 'cpu'), hang]);
    } finally {
      clearTimeout(timer);
    }
    return 'loaded';
  } catch (err) {
    const msg = errorMessage(err);
    if (!(err instanceof QuestError) || !msg.includes(dir)) throw new Error(`${what}: ${err instanceof QuestError ? 'a QuestError that names no file' : 'not a QuestError'}: ${msg}`);
    return 'refused';
  }
}

/** The CLI on the mutated folder: it finishes in time, exits 0, or 1 with one line naming a file of the folder. */
async function throughCli(what: string): Promise<void> {
  const args = ['eval', '--model', dir, '--device', 'cpu', '--lengths', '512', '--samples', '1', '--depths', '50', '--output-path', path.join(base, 'out')];
  const r = await execa(process.execPath, [path.join(repo, 'bin', 'quest.js'), ...args], { reject: false, timeout: 30_000 });
  rmSync(path.join(base, 'out'), { recursive: true, force: true });
  const seen = `${what}: exit ${r.exitCode}, signal ${r.signal}, timed out ${r.timedOut}, stderr ${r.stderr}`;
  expect(r.timedOut, seen).toBe(false);
  expect(r.signal ?? null, seen).toBeNull();
  expect([0, 1], seen).toContain(r.exitCode);
  if (r.exitCode === 1) {
    const lines = r.stderr.trim().split('\n');
    expect(lines, seen).toHaveLength(1);
    expect(lines[0].startsWith('quest: ') && lines[0].includes(dir), seen).toBe(true);
  }
}

describe('fuzzed model folders', () => {
  it(`${MUTATIONS} seeded mutations open and load, or are refused naming the file`, async () => {
    const next = rng(SEED);
    const outcomes = { loaded: 0, refused: 0 };
    for (let i = 0; i < MUTATIONS; i++) {
      const what = mutate(next);
      try {
        outcomes[await openAndLoad(what)]++;
      } catch (err) {
        throw new Error(`mutation ${i} (seed ${SEED}): ${errorMessage(err)}`);
      }
      if (i % CLI_EVERY === 0) await throughCli(`mutation ${i} (seed ${SEED}), ${what}`);
    }
    // The mutations reach both ends: some still load, most are refused.
    expect(outcomes.loaded).toBeGreaterThan(0);
    expect(outcomes.refused).toBeGreaterThan(outcomes.loaded);
  }, 120_000);
});
