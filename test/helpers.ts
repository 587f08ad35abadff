import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll } from 'vitest';

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

// Each test file loads this module afresh, so the hook is the file's own.
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

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
export function relDiff(a: Float32Array, ref: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return diff / scale;
}
