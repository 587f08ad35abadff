/** What a result was produced with: enough to reproduce it or to refuse comparing it. */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { projectRoot } from '../config/index.js';
import type { BackendChoice } from '../engine/index.js';

export interface RunMetadata {
  quest: string;
  gitSha: string | null;
  gitDirty: boolean | null;
  date: string;
  command: string;
  node: string;
  platform: string;
  cpu: string;
  backend: string;
  backendReason: string;
  device: string;
}

async function git(args: string[]): Promise<string | null> {
  const r = await execa('git', args, { cwd: projectRoot, reject: false });
  return r.exitCode === 0 ? r.stdout.trim() : null;
}

export async function runMetadata(backend: BackendChoice, argv: string[]): Promise<RunMetadata> {
  const pkg = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string };
  const status = await git(['status', '--porcelain', '--untracked-files=no']);
  const cuda = backend.info.cuda;
  return {
    quest: pkg.version,
    gitSha: await git(['rev-parse', 'HEAD']),
    gitDirty: status === null ? null : status.length > 0,
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
