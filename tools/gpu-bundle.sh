#!/usr/bin/env bash
# Packs what a run of quest on the GPU machine needs beside the working tree into .gpu/
# (git-ignored; name it in the device tool's carry): Node (../shared/gpu/stage), the built
# dist/ and the production node_modules with vitest (the GPU tests run there) and cmake-js
# (the native engine is built there, by tools/gpu-run.sh's build step), each as a tarball.
# There:  bash .gpu/unpack.sh   (installs node, unpacks the rest)
# The call's 64 MiB hold .gpu/ beside the tree only with the tree's large folders out
# (tools/gpu-carry.sh out, after this; in, after the call).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f .gpu/node.stripped ]; then
  ../shared/gpu/stage
  # Stripped of its symbols Node packs to about half: the call's 64 MiB must hold it, the tree and node_modules.
  xz -dc .gpu/node.xz > .gpu/node && strip .gpu/node && xz -9e -T0 -c .gpu/node > .gpu/node.xz && rm .gpu/node && touch .gpu/node.stripped
fi
npm run build --silent
tmp=$(mktemp -d)
cp package.json package-lock.json "$tmp/"
node -e "const p=require('$tmp/package.json'); p.devDependencies={vitest:p.devDependencies.vitest}; delete p.scripts; require('fs').writeFileSync('$tmp/package.json', JSON.stringify(p))"
(cd "$tmp" && rm -f package-lock.json && npm install --ignore-scripts --no-audit --no-fund --silent)
# What a call may carry is 64 MiB, the working tree included. Left out: vite's CSS compiler
# (node tests do not use it, 10 MB) and jieba (LongBench's Chinese scoring, 14 MB; its
# datasets are not on the GPU machine either, and the metric says what is missing).
rm -rf "$tmp"/node_modules/lightningcss* "$tmp"/node_modules/@node-rs
tar -C "$tmp" -cJf .gpu/node_modules.tar.xz node_modules
tar -cJf .gpu/dist.tar.xz dist
# The copy there has no history of its own: results it writes take the tree's state from here.
node --input-type=module -e "import { gitState } from './dist/report/metadata.js'; console.log(JSON.stringify(await gitState()))" > .gpu/git-state.json
rm -rf "$tmp"
cat > .gpu/unpack.sh <<'UNPACK'
set -e
xz -dc .gpu/node.xz > /usr/local/bin/node && chmod +x /usr/local/bin/node
tar -xJf .gpu/node_modules.tar.xz
tar -xJf .gpu/dist.tar.xz
UNPACK
du -sh .gpu/*
