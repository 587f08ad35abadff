#!/usr/bin/env bash
# Training data for tools/train-model.py, made by the project's own generators
# (`quest tasks generate`; evaluation uses --seed 0 and up, training 1000 and up).
#   tools/make-training-data.sh        rounds 1-2 (seeds 1000+) into .data/train/, packed
#                                      into .gpu/train-data.tar.xz for the GPU machine
#   tools/make-training-data.sh uuid   round 4 (seeds 5000+) into .data/train-uuid/: fresh
#                                      UUID needles (niah_single_3) at 512-32K tokens and a
#                                      smaller refresher of the other tasks; made where it is
#                                      used (the GPU machine's cores), $JOBS at a time
set -euo pipefail
cd "$(dirname "$0")/.."
depths=$(seq -s, 0 5 100)
gen() { # task[-tag] length count seed
  local f="$out/$1-$2.jsonl"
  [ -s "$f" ] || node bin/quest.js tasks generate --task "${1%-r*}" --length "$2" -n "$3" --seed "$4" --depths "$depths" --out "$f" >/dev/null
}
if [ "${1:-}" = uuid ]; then
  out=.data/train-uuid
  mkdir -p "$out"
  export -f gen
  export out depths
  seed=5000
  jobs=()
  # Many files of a few hundred samples each, so the cores share the work evenly.
  add() { for ((i = 0; i < $3; i++)); do jobs+=("$1-r4p$i $2 $4 $((seed++))"); done; }
  add niah_single_3 512 4 500
  add niah_single_3 1024 6 500
  add niah_single_3 2048 10 300
  add niah_single_3 4096 10 150
  add niah_single_3 8192 4 100
  add niah_single_3 16384 2 50
  add niah_single_3 32768 2 30
  for L in 512 1024 2048 4096 8192 16384 32768; do add passkey $L 1 200; done
  for t in niah_single_1 niah_single_2; do
    for L in 1024 2048 4096 8192; do add $t $L 1 200; done
    add $t 16384 1 80
    add $t 32768 1 50
  done
  printf '%s\n' "${jobs[@]}" | xargs -P "${JOBS:-12}" -L 1 bash -c 'gen "$@"' _
  # A bucket is one length: merge each task's parts into task-length files.
  for f in "$out"/*-r4p0-*.jsonl; do
    base=${f%-r4p0-*}; L=${f##*-}
    cat "$base"-r4p*-"$L" > "$base-$L" && rm "$base"-r4p*-"$L"
  done
  cp .data/kjv-train.txt "$out/lm-kjv-train.txt"
  ls "$out" | wc -l
  exit 0
fi
out=.data/train
mkdir -p "$out" .gpu
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
