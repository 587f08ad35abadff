#!/usr/bin/env bash
# Packs what a run of quest on the GPU machine needs beside the working tree into .gpu/
# (git-ignored; name it in the device tool's carry): Node (../shared/gpu/stage), the built
# dist/, the production node_modules with vitest (the GPU tests run there) and the native
# addon, each as a tarball.
# There:  bash .gpu/unpack.sh   (installs node, unpacks the rest)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f .gpu/node.xz ] || ../shared/gpu/stage
npm run build --silent
tmp=$(mktemp -d)
cp package.json package-lock.json "$tmp/"
node -e "const p=require('$tmp/package.json'); for (const k of ['cmake-js','node-addon-api','node-api-headers']) delete p.dependencies[k]; p.devDependencies={vitest:p.devDependencies.vitest}; delete p.scripts; require('fs').writeFileSync('$tmp/package.json', JSON.stringify(p))"
(cd "$tmp" && rm -f package-lock.json && npm install --ignore-scripts --no-audit --no-fund --silent)
# vite's CSS compiler: not used by node tests, and 10 MB of the 64 MB a call may carry.
rm -rf "$tmp"/node_modules/lightningcss*
tar -C "$tmp" -cJf .gpu/node_modules.tar.xz node_modules
tar -cJf .gpu/dist.tar.xz dist cuda/build/Release/quest_engine.node
rm -rf "$tmp"
cat > .gpu/unpack.sh <<'UNPACK'
set -e
xz -dc .gpu/node.xz > /usr/local/bin/node && chmod +x /usr/local/bin/node
tar -xJf .gpu/node_modules.tar.xz
tar -xJf .gpu/dist.tar.xz
UNPACK
du -sh .gpu/*
