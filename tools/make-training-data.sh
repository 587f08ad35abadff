#!/usr/bin/env bash
# Training data for tools/train-model.py, made by the project's own generators
# (`quest tasks generate`; evaluation uses --seed 0 and up, training 1000 and up).
#   tools/make-training-data.sh        rounds 1-2 (seeds 1000+) into .data/train/, packed
#                                      into .gpu/train-data.tar.xz for the GPU machine
#   tools/make-training-data.sh uuid   round 4 (seeds 5000+) into .data/train-uuid/: fresh
#                                      UUID needles (niah_single_3) at 512-32K tokens and a
#                                      smaller refresher of the other tasks; made where it is
#                                      used (the GPU machine's cores), $JOBS at a time
#   tools/make-training-data.sh ruler  round 11 (seeds 6000+) into .data/train-ruler/, packed into
#                                      .gpu/train-ruler.tar.xz: RULER's 11 synthetic tasks and
#                                      passkey at 1K-16K (vt, cwe, fwe ten times as many at 1K-2K;
#                                      rounds 8-9's set is this script at 944c54d^), the single
#                                      needles also at 32K, and short vt and cwe rows
#                                      (tools/make-short-rows.mjs; round 10's set is this script at 40902f6)
#                                      (docs/training.md says why these); `ruler smoke`: 16
#                                      samples a task at 1K and 2K into .data/train-ruler-smoke/
# Needs .data/kjv-train.txt (tools/make-texts.py).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -s .data/kjv-train.txt ] || { echo "tools/make-training-data.sh: .data/kjv-train.txt is missing: make it first with tools/make-texts.py (see its header)" >&2; exit 1; }
depths=$(seq -s, 0 5 100)
gen() { # task[-tag] length count seed
  local f="$out/$1-$2.jsonl"
  [ -s "$f" ] || node bin/quest.js tasks generate --task "${1%-r*}" --length "$2" -n "$3" --seed "$4" --depths "$depths" --out "$f" >/dev/null
}
# Many files of a few samples each, one seed each, so the cores share the work evenly; then
# each task's parts ("TASK-TAGpN-L.jsonl") merged into one file a length, a bucket of training.
export -f gen
export depths
jobs=()
add() { for ((i = 0; i < $3; i++)); do jobs+=("$1-${tag}p$i $2 $4 $((seed++))"); done; }
run_parts() {
  export out
  printf '%s\n' "${jobs[@]}" | xargs -P "${JOBS:-$(nproc)}" -L 1 bash -c 'gen "$@"' _
  for f in "$out"/*-"$tag"p0-*.jsonl; do
    base=${f%-"$tag"p0-*}; L=${f##*-}
    cat "$base"-"$tag"p*-"$L" > "$base-$L" && rm "$base"-"$tag"p*-"$L"
  done
  cp .data/kjv-train.txt "$out/lm-kjv-train.txt"
  ls "$out" | wc -l
}
if [ "${1:-}" = uuid ]; then
  out=.data/train-uuid tag=r4 seed=5000
  mkdir -p "$out"
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
  run_parts
  exit 0
fi
if [ "${1:-}" = ruler ]; then
  tag=r8 seed=6000
  # length:samples of every task; most at 4K (the first target), fewer at 8K-16K (the second).
  sizes="1024:300 2048:300 4096:600 8192:150 16384:80"
  out=.data/train-ruler
  [ "${2:-}" = smoke ] && sizes="1024:16 2048:16" out=.data/train-ruler-smoke
  mkdir -p "$out"
  for t in passkey niah_single_1 niah_single_2 niah_single_3 niah_multikey_1 niah_multikey_2 niah_multikey_3 \
    niah_multivalue niah_multiquery vt cwe fwe; do
    # cwe and fwe shuffle every sample of a file by the one permutation of its seed (the common
    # words sit at the same places): parts of 8 samples, so no placement is seen often.
    per=50; case $t in cwe | fwe) per=8 ;; esac
    for s in $sizes; do
      L=${s%:*} n=${s#*:}
      # its question names four keys: at 1K, RULER's smallest essay (500 words) leaves some draws no room
      [ "$t-$L" = niah_multiquery-1024 ] && continue
      # Round 10: ten times as many vt, cwe and fwe at 1K-2K (rounds 8-9 learned their format, not the task).
      case $t-$L in vt-1024 | vt-2048 | cwe-1024 | cwe-2048 | fwe-1024 | fwe-2048) [ "${2:-}" = smoke ] || n=$((n * 10)) ;; esac
      p=$((n < per ? n : per))
      add $t "$L" $(((n + p - 1) / p)) $p
    done
  done
  # Passkey and the single needles keep their 32K (the model's longest) in training.
  [ "${2:-}" = smoke ] || for t in passkey niah_single_1 niah_single_2 niah_single_3; do add $t 32768 4 10; done
  run_parts
  # Round 11: short rows, where vt's chained lookup and cwe's count were learned on the CPU (docs/training.md, "Short rows").
  [ "${2:-}" = smoke ] || {
    # the probes' rows as they were (their generator dropped what did not fit, as this one now refuses it)
    node tools/make-short-rows.mjs vt --hops 1 --noise 2:2 --length 224 -n 30000 --seed 8501 --out "$out"
    node tools/make-short-rows.mjs vt --hops 4 --noise 5:6 --length 384 -n 20000 --seed 8502 --out "$out"
    node tools/make-short-rows.mjs cwe --repeats 3:3 --others 5:9 --length 320 -n 20000 --seed 8503 --out "$out"
  }
  [ "${2:-}" = smoke ] || { mkdir -p .gpu && tar -C .data -cf - train-ruler | xz -T"$(nproc)" -6 > .gpu/train-ruler.tar.xz && ls -la .gpu/train-ruler.tar.xz; }
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
