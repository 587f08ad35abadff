#!/usr/bin/env bash
# Training data for tools/train-model.py, made by the project's own generators
# (`quest tasks generate`) with seeds 1000+ (evaluation uses --seed 0 and up), written to
# .data/train/ and packed into .gpu/train-data.tar.xz for the GPU machine.
#   tools/make-training-data.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=.data/train
mkdir -p "$out" .gpu
depths=$(seq -s, 0 5 100)
gen() { # task[-tag] length count seed
  local f="$out/$1-$2.jsonl"
  [ -s "$f" ] || node bin/quest.js tasks generate --task "${1%-r2}" --length "$2" -n "$3" --seed "$4" --depths "$depths" --out "$f"
}
seed=1000
for L in 512 1024 2048 4096; do gen passkey $L 1500 $((seed++)); done
for L in 8192 16384; do gen passkey $L 800 $((seed++)); done
gen passkey 32768 600 $((seed++))
for t in niah_single_1 niah_single_2 niah_single_3; do
  for L in 1024 2048 4096 8192; do gen $t $L 300 $((seed++)); done
  gen $t 16384 150 $((seed++))
  gen $t 32768 100 $((seed++))
done
for t in niah_multikey_1 niah_multivalue niah_multiquery; do
  for L in 2048 8192; do gen $t $L 150 $((seed++)); done
done
# Round 2: UUID values (niah_single_3) and key matching (niah_multikey_1) were the weak
# spots of the first run; more of them at short lengths, where they are cheap.
for t in niah_single_3 niah_multikey_1; do
  for L in 1024 2048 4096; do gen $t-r2 $L 1000 $((seed++)); done
done
cp .data/kjv-train.txt "$out/lm-kjv-train.txt"
tar -C .data -cf - train | xz -T2 -6 > .gpu/train-data.tar.xz
ls -la .gpu/train-data.tar.xz
