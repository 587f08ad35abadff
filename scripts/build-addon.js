#!/usr/bin/env node
// Builds the native engine (cuda/) with cmake-js into cuda/build/Release/quest_engine.node.
// QUEST_CUDA=0 skips the CUDA backend; QUEST_CUDA_ARCHS="90" overrides the architectures;
// QUEST_ADDON_SRC builds another copy of cuda/ (into its build/), as tools/ab-addon.sh does.
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const cmakeJs = path.join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
const src = process.env.QUEST_ADDON_SRC || 'cuda';
const args = [cmakeJs, 'compile', '-d', src, '-O', path.join(src, 'build'), '-p', String(availableParallelism())];
if (process.env.QUEST_CUDA === '0') args.push('--CDQUEST_CUDA=OFF');
if (process.env.QUEST_CUDA_ARCHS) args.push(`--CDCMAKE_CUDA_ARCHITECTURES=${process.env.QUEST_CUDA_ARCHS}`);
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error('quest: building the native engine failed (see the output above). cmake >= 3.18 and a C++17 compiler are needed.');
  process.exit(r.status ?? 1);
}
