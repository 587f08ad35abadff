/** What a result was produced with: enough to reproduce it or to refuse comparing it. */
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { projectRoot } from '../config/index.js';
import type { BackendChoice } from '../engine/index.js';
import { QuestError, errorMessage } from '../errors.js';

/** The code a result came from: a commit, and what the tree held beyond it. */
export interface GitState {
  gitSha: string | null;
  /** Tracked changes or untracked (non-ignored) files; null where git could not say. */
  gitDirty: boolean | null;
  /**
   * Where dirty: sha256 of `git diff HEAD --binary`, then for each untracked file in path
   * order a line "<path> <sha256 of its contents>" (of its target, for a link), so that a
   * result ties to exact code; else null.
   */
  gitDiffSha256: string | null;
  /** Where dirty: `git status --porcelain` lines (" M src/a.ts", "?? notes.txt"). */
  gitChanges: string[];
}

export interface RunMetadata extends GitState {
  quest: string;
  date: string;
  command: string;
  node: string;
  platform: string;
  cpu: string;
  backend: string;
  backendReason: string;
  device: string;
}

/** sha256 of a file's contents, streamed; of the target's name for a symbolic link. */
async function fileSha256(file: string): Promise<string> {
  const h = createHash('sha256');
  if (lstatSync(file).isSymbolicLink()) return h.update(readlinkSync(file)).digest('hex');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function git(root: string, args: string[]): Promise<string | null> {
  const r = await execa('git', args, { cwd: root, reject: false, stripFinalNewline: false });
  return r.exitCode === 0 ? r.stdout : null;
}

/**
 * A state recorded where the tree was packed (tools/gpu-bundle.sh), for a copy whose .git is not
 * the tree's own: the GPU machine gets the working tree without its history.
 */
function recordedGitState(file: string): GitState {
  let st: Partial<GitState>;
  try {
    st = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new QuestError(`QUEST_GIT_STATE ${file}: ${errorMessage(err)}`);
  }
  if (typeof st?.gitSha !== 'string' || typeof st.gitDirty !== 'boolean' || !Array.isArray(st.gitChanges))
    throw new QuestError(`QUEST_GIT_STATE ${file}: not a git state written by tools/gpu-bundle.sh (gitSha, gitDirty, gitDiffSha256, gitChanges)`);
  return { gitSha: st.gitSha, gitDirty: st.gitDirty, gitDiffSha256: st.gitDiffSha256 ?? null, gitChanges: st.gitChanges };
}

/**
 * The state of the tree at `root` (the project's). Untracked files under `outputDir` (the
 * run's own output, written before this is asked) do not count.
 */
export async function gitState(outputDir?: string, root = projectRoot): Promise<GitState> {
  if (process.env.QUEST_GIT_STATE) return recordedGitState(process.env.QUEST_GIT_STATE);
  const sha = await git(root, ['rev-parse', 'HEAD']);
  const status = await git(root, ['status', '--porcelain=v1', '-z', '--untracked-files=all']);
  if (sha === null || status === null) return { gitSha: sha?.trim() ?? null, gitDirty: null, gitDiffSha256: null, gitChanges: [] };
  // git names files from the tree's root with '/', whatever the platform.
  const rel = outputDir ? path.relative(root, path.resolve(outputDir)).split(path.sep).join('/') : '';
  const own = rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? `${rel}/` : null;
  const inOwn = (f: string) => own !== null && f.startsWith(own);
  // -z: "XY path", NUL-separated; a rename's original path follows as an entry of its own.
  const entries: string[] = [];
  const parts = status.split('\0').filter(Boolean);
  for (let i = 0; i < parts.length; i++) {
    entries.push(parts[i]);
    if (parts[i][0] === 'R' || parts[i][0] === 'C') i++;
  }
  const changes = entries.filter((e) => !(e.startsWith('?? ') && inOwn(e.slice(3))));
  if (changes.length === 0) return { gitSha: sha.trim(), gitDirty: false, gitDiffSha256: null, gitChanges: [] };
  const diff = await execa('git', ['diff', 'HEAD', '--binary'], { cwd: root, encoding: 'buffer', stripFinalNewline: false });
  const untracked = changes.filter((e) => e.startsWith('?? ')).map((e) => e.slice(3)).sort();
  const hash = createHash('sha256').update(diff.stdout);
  for (const f of untracked) hash.update(`${f} ${await fileSha256(path.join(root, f))}\n`);
  return { gitSha: sha.trim(), gitDirty: true, gitDiffSha256: hash.digest('hex'), gitChanges: changes };
}

/** One line saying why a result cannot be tied to a commit, or null where it can. */
export function provenanceWarning(meta: Partial<GitState> | null, what: string): string | null {
  if (!meta || meta.gitDirty === undefined || meta.gitDirty === null) return `${what} records no git state: it cannot be tied to a commit`;
  if (!meta.gitDirty) return null;
  const diff = meta.gitDiffSha256 ? `, diff sha256 ${meta.gitDiffSha256.slice(0, 12)}` : '';
  return `${what} comes from a tree with uncommitted changes (${meta.gitSha?.slice(0, 7) ?? 'no commit'}${diff}): it cannot be tied to a commit`;
}

/** Says on stderr, after a run has written `file`, when it cannot be tied to a commit. */
export function warnProvenance(meta: Partial<GitState>, file: string): void {
  const w = provenanceWarning(meta, file);
  if (w) process.stderr.write(`quest: warning: ${w}\n`);
}

export async function runMetadata(backend: BackendChoice, argv: string[], outputDir?: string): Promise<RunMetadata> {
  const pkg = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string };
  const cuda = backend.info.cuda;
  return {
    quest: pkg.version,
    ...(await gitState(outputDir)),
    date: new Date().toISOString(),
    command: ['quest', ...argv.slice(2)].join(' '),
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    cpu: `${os.cpus()[0]?.model ?? 'unknown'} x${os.cpus().length}`,
    backend: backend.use,
    backendReason: backend.reason,
    device: backend.use === 'cuda' ? cuda.deviceName : `cpu (${backend.info.cpuThreads} threads)`,
  };
}
