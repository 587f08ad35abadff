#!/usr/bin/env bash
# One call on the GPU machine (pack first with tools/gpu-bundle.sh), running the named steps
# (all of them by default); everything lands in $OUT/run, to be tarred before it comes back,
# but a trained model, which comes back beside it in parts ($OUT/NAME.tar.aa, .ab, ...):
#   build       the native engine, for the card's architecture only ($QUEST_CUDA_ARCHS, 90a by
#               default: Hopper's wgmma prefill needs the sm_90a target; the steps after it need
#               it, the bundle carries none), and ab-before/'s beside it where carried
#               (tools/ab-addon.sh build); both together took 134 and 143 s on two H100 machines
#               (2026-12-07 16:47 and 17:32 UTC), where one earlier machine had built 42 of 45
#               objects of the tree alone in 3 minutes
#   fixture     the shipped model's transformers logits (test/fixtures/quest-tiny)
#   torch       torch's attention timings (tools/bench-torch.py)
#   bench       quest bench-attention --check, with torch beside
#   sweep       passkey of the shipped model at 4K-32K, 5 depths
#   niah        RULER niah_single_1/2/3 of the shipped model at 8K
#   passkey32k  passkey at 32K alone
#   gputest     the GPU test files (kernels and the whole model against the CPU engine, and a
#               shared prefill's and a decode batch's cells against each alone)
#   fulltest    the whole test suite (the LongBench Chinese-scoring tests fail here: the bundle
#               leaves their tokenizer package out)
#               Both test steps set QUEST_REQUIRE_GPU=1: a GPU test fails here instead of
#               skipping when the addon was built without CUDA or sees no device.
#   gpusweep    passkey of the shipped model at 4K-32K on the GPU, 5 depths x $SAMPLES samples
#   gpuniah     RULER niah_single_1/2/3 at 8K on the GPU, $SAMPLES samples
#   train       fine-tune the shipped model on the UUID round (.gpu/train-uuid.tar.xz, made by
#               tools/make-training-data.sh uuid) into /tmp/models/$TRAIN_NAME (sent back in parts), with $TRAIN_ARGS
#               (default: round 4's recipe)
#   train-ruler round 8 (docs/training.md): fine-tune the shipped model on RULER's 11 synthetic
#               tasks and passkey (.gpu/train-ruler.tar.xz, made by tools/make-training-data.sh ruler)
#               into /tmp/models/$RULER_NAME (sent back in parts) with $RULER_ARGS (default: the recipe of docs/training.md),
#               then evaluate it dense on the GPU on those 11 tasks at $RULER_LENGTHS (4096), $SAMPLES each;
#               run it after build, in the same call
#   adopt       copy /tmp/models/$TRAIN_NAME over models/quest-tiny, so that the steps after it
#               (gpuniah, gpusweep, fixture) measure the fine-tuned model
#   prefill     transformers' prefill of $PREFILL_MODEL (llama-2-7b) at $PREFILL_LENGTHS (4096,32768)
#               (tools/bench-torch.py --prefill), then ours beside it (bench-latency, dense, --torch), 3 repeats
#   ppl         the shipped model's perplexity on kjv-heldout at 4K, 16K and 32K: transformers in fp32
#               (tools/perplexity-torch.py) beside ours on the GPU, after a dense prefix of 64
#               tokens and, at 32K, of 16K (which the flash prefill computes)
#   latency     quest bench-latency on the GPU: llama-2-7b preset, $LAT_POLICIES (default dense,
#               quest) at budget 2048 and $LAT_LENGTHS (default 4096,32768), $LAT_REPEATS repeats (2)
#   profile     each kernel's GPU time (ncu, one metric; tools/kernel-times.py) over $PROFILE_CMD
#               (default: llama-3-8b at 4K, a decode batch of 4, dense and Quest), the launches
#               inside the NVTX range $PROFILE_RANGE ("decode step/": the engine's decode steps;
#               empty: all) whose names match $PROFILE_KERNELS (ncu's --kernel-name, default
#               all), at most $PROFILE_COUNT (400) after skipping $PROFILE_SKIP (0); with
#               $PROFILE_SECTIONS (ncu section names, e.g. "SpeedOfLight Occupancy WarpStateStats
#               LaunchStats ComputeWorkloadAnalysis MemoryWorkloadAnalysis") those sections of
#               each such launch instead, as text with each section's tables (WarpStateStats: every
#               stall reason), into run/ncu-sections.txt
#   eval70      quest eval (passkey, dense and Quest 2048, one sample) on a random-weight
#               Meta-Llama-3-70B-shaped AWQ folder (tools/make-random-model.py, about 40 GB in
#               /tmp) at 32K, 110,592 and 126,976 tokens in one run (one load; its 131,072
#               positions hold the prompt and the answer); on an 80 GB card at 09bbd98 the last
#               said how many tokens of cache would fit, the records before it kept
#   decode      the decode tables that README and results/ publish, into $r/decode/NAME (copy
#               each folder to results/ from a clean tree): the 13-cell sweep of llama-2-7b at 32K
#               (bench-eval), llama-3-8b at 32K at batch 1, 4 and 8, llama-2-7b-awq at 4K and 32K
#               and llama-3-70b-awq at 32K (dense and Quest 2048)
#   abdecode    an A-B of the decode step against the addon of ab-before/ (tools/ab-addon.sh
#               prepare REV, carried): the batch rows (llama-3-8b at 32K, batch 1, 4 and 8, dense
#               and Quest 2048, with the host's issue time) and the 13-cell sweep, each build
#               twice, alternately; after build
#   abprefill   an A-B of H2O's prefill (llama-2-7b at 32K, dense beside it) against the addon of
#               ab-before/, each build twice, alternately; after build
#   lanes       QUEST_DECODE_LANES=0 against unset (1), in one binary, alternately, twice: the batch
#               rows (llama-3-8b at 32K, batch 1, 4 and 8, dense and Quest 2048) and the 13-cell
#               sweep; after build and gputest
#   linear      quest bench-linear of llama-2-7b-awq and llama-3-8b at batch 1, 4 and 8 (each
#               layer's GEMV alone, and the step's 32 layers back to back) into $r/linear/NAME
#               (copy each to results/linear-<card>-<date>/ from a clean tree)
# Two calls may run side by side (training beside the tests) once .gpu/unpack.sh has run.
set -uo pipefail
[ -f .gpu/unpacked ] || { bash .gpu/unpack.sh && touch .gpu/unpacked; }
r=$OUT/run
mkdir -p "$r"
log() { echo "== $(date -u +%H:%M:%S) $*"; }
export PYTHONUNBUFFERED=1 QUEST_THREADS=$(nproc)
# The copy's .git is not the tree's: results take the state gpu-bundle.sh recorded.
[ -f .gpu/git-state.json ] && export QUEST_GIT_STATE=$PWD/.gpu/git-state.json
# A trained model lives outside $r and comes back as parts of at most 15 MiB (a file of $OUT may
# hold 16 MiB): cat $OUT/NAME.tar.* | tar -x puts it together.
trained=/tmp/models
mkdir -p "$trained"
send_model() {
  tar -C "$trained" -cf - "$1" | split -b 15M - "$OUT/$1.tar." || return 1
  cp "$trained/$1/training_log.json" "$r/$1-training_log.json" || echo "send_model: $1 has no training_log.json"
}
tiny="node bin/quest.js eval --model models/quest-tiny --samples 5"
train_name=${TRAIN_NAME:-quest-tiny-r4}
train_args=${TRAIN_ARGS:---lr 5e-4 --focus niah_single_3=0.5 --curriculum 0:4096,0.4:32768 --minutes 5}
ruler_name=${RULER_NAME:-quest-tiny-r8}
ruler_args=${RULER_ARGS:---by-task --teacher models/quest-tiny --lm-rows 16 --lm-share 0 --context-weight 0 --lr 5e-4 --curriculum 0:4096,0.4:16384,0.85:32768 --minutes 5.5}
gpu="node bin/quest.js eval --model models/quest-tiny --device cuda --samples ${SAMPLES:-20}"
# The published decode commands (README, results/), which the A-B and lanes steps rerun.
batch="node bin/quest.js bench-latency --model llama-3-8b --lengths 32768 --batch 1,4,8 --policies dense,quest --budgets 2048 --decode-steps 16 --repeats 1 --device cuda"
sweep="node bin/quest.js bench-eval --model llama-2-7b --lengths 32768 --policies dense,quest,h2o,streaming --budgets 256,512,1024,2048 --decode-steps 64 --repeats 1 --device cuda"
log device; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
for step in ${@:-build fixture torch bench sweep niah}; do
  log "$step"
  case $step in
    build) before=
      if [ -d ab-before/cuda ]; then
        bash tools/ab-addon.sh build > "$r/ab-before-build.log" 2>&1 &
        before=$!
      fi
      QUEST_CUDA_ARCHS=${QUEST_CUDA_ARCHS:-90a} node scripts/build-addon.js || exit 1
      [ -z "$before" ] || wait "$before" || echo "build: ab-before's build failed ($r/ab-before-build.log)" ;;
    fixture) python3 tools/make-fixtures.py --trained models/quest-tiny --out "$r/fixture-quest-tiny" ;;
    train) mkdir -p .data && tar -xJf .gpu/train-uuid.tar.xz -C .data &&
      python3 tools/train-model.py --data .data/train-uuid --tokenizer models/quest-tiny --init models/quest-tiny --out "$trained/$train_name" $train_args &&
      send_model "$train_name" ;;
    train-ruler) mkdir -p .data && tar -xJf .gpu/train-ruler.tar.xz -C .data &&
      python3 tools/train-model.py --data .data/train-ruler --tokenizer models/quest-tiny --init models/quest-tiny --out "$trained/$ruler_name" $ruler_args &&
      send_model "$ruler_name" &&
      timeout 150 node bin/quest.js eval --model "$trained/$ruler_name" --device cuda --samples "${SAMPLES:-20}" --tasks ruler --lengths "${RULER_LENGTHS:-4096}" \
        --output-path "$r/$ruler_name-ruler" ;;
    adopt) cp "$trained/$train_name"/* models/quest-tiny/ ;;
    torch) timeout 120 python3 tools/bench-torch.py --out "$r/torch.json" --repeats 50 ;;
    bench) timeout 150 node bin/quest.js bench-attention --check --torch "$r/torch.json" --output-path "$r/bench-attention" ;;
    sweep) timeout 200 $tiny --tasks passkey --lengths 4096,8192,16384,32768 --depths 0,25,50,75,100 --output-path "$r/passkey-sweep" ;;
    niah) timeout 80 $tiny --tasks niah_single_1,niah_single_2,niah_single_3 --lengths 8192 --output-path "$r/niah-8k" ;;
    passkey32k) timeout 330 $tiny --tasks passkey --lengths 32768 --depths 0,25,50,75,100 --output-path "$r/passkey-32k" ;;
    gputest) QUEST_REQUIRE_GPU=1 timeout 300 node node_modules/vitest/vitest.mjs run test/gpu-model.test.ts test/cuda.test.ts test/share-gpu.test.ts ;;
    fulltest) QUEST_REQUIRE_GPU=1 timeout 300 node node_modules/vitest/vitest.mjs run ;;
    latency) timeout 300 node bin/quest.js bench-latency --model llama-2-7b --lengths "${LAT_LENGTHS:-4096,32768}" --policies "${LAT_POLICIES:-dense,quest}" \
      --budgets 2048 --decode-steps 32 --repeats "${LAT_REPEATS:-2}" --device cuda --output-path "$r/bench-latency-7b" ;;
    prefill) m=${PREFILL_MODEL:-llama-2-7b} lens=${PREFILL_LENGTHS:-4096,32768}
      node --input-type=module -e "import { preset } from './dist/model/presets.js'; console.log(JSON.stringify([{ name: '$m', spec: preset('$m') }]))" > "$r/preset-$m.json" &&
      timeout 240 python3 tools/bench-torch.py --prefill "$r/preset-$m.json" --lengths "$lens" --repeats 3 --out "$r/torch-prefill-$m.json" &&
      timeout 300 node bin/quest.js bench-latency --model "$m" --lengths "$lens" --policies dense --decode-steps 4 --repeats 3 --device cuda \
        --torch "$r/torch-prefill-$m.json" --output-path "$r/prefill-$m" ;;
    ppl) timeout 120 python3 tools/perplexity-torch.py --lengths 4096,16384,32768 --prefixes 64,16384 --out "$r/ppl-torch.json" &&
      timeout 120 node bin/quest.js eval --tasks perplexity --lengths 4096,16384,32768 --samples 1 --policies dense --device cuda --output-path "$r/ppl-gpu" &&
      timeout 60 node bin/quest.js eval --tasks perplexity --lengths 32768 --ppl-prefix 16384 --samples 1 --policies dense --device cuda --output-path "$r/ppl-gpu-16k" ;;
    gpusweep) timeout 150 $gpu --tasks passkey --lengths 4096,8192,16384,32768 --depths 0,25,50,75,100 --output-path "$r/gpu-passkey-sweep" ;;
    gpuniah) timeout 100 $gpu --tasks niah_single_1,niah_single_2,niah_single_3 --lengths 8192 --output-path "$r/gpu-niah-8k" ;;
    profile) cmd=${PROFILE_CMD:-node bin/quest.js bench-latency --model llama-3-8b --lengths 4096 --batch 4 --policies dense,quest --budgets 2048 --decode-steps 4 --repeats 1 --device cuda}
      range=${PROFILE_RANGE-decode step/}
      pick=(--clock-control none ${range:+--nvtx --nvtx-include "$range"} --kernel-name "${PROFILE_KERNELS:-regex:.}"
        --launch-skip "${PROFILE_SKIP:-0}" --launch-count "${PROFILE_COUNT:-400}")
      if [ -n "${PROFILE_SECTIONS:-}" ]; then
        timeout 400 ncu "${pick[@]}" $(printf -- '--section %s ' $PROFILE_SECTIONS) --print-details all $cmd > "$r/ncu-sections.txt" 2>&1 ||
          { echo "profile: ncu failed (run/ncu-sections.txt):"; tail -5 "$r/ncu-sections.txt"; }
      else
        timeout 400 ncu "${pick[@]}" --metrics gpu__time_duration.sum --csv $cmd > "$r/ncu.csv" 2> "$r/ncu.err" ||
          { echo "profile: ncu failed (run/ncu.err):"; tail -5 "$r/ncu.err"; }
        python3 tools/kernel-times.py "$r/ncu.csv" | tee "$r/kernel-times.md"
      fi ;;
    eval70) [ -f /tmp/r70/config.json ] || python3 tools/make-random-model.py /tmp/r70
      timeout 540 node bin/quest.js eval --model /tmp/r70 --device cuda --tasks passkey --lengths 32768,110592,126976 --depths 50 --samples 1 \
        --policies dense,quest --budgets 2048 --output-path "$r/eval70" ;;
    decode) d=$r/decode lat="node bin/quest.js bench-latency --policies dense,quest --budgets 2048 --device cuda"
      timeout 150 $sweep --output-path "$d/bench-eval-llama-2-7b"
      timeout 120 $batch --output-path "$d/batch-llama-3-8b"
      timeout 120 $lat --model llama-2-7b-awq --lengths 4096,32768 --decode-steps 32 --repeats 5 --output-path "$d/llama-2-7b-awq"
      timeout 150 $lat --model llama-3-70b-awq --lengths 32768 --decode-steps 16 --repeats 1 --output-path "$d/llama-3-70b-awq" ;;
    abdecode) ab="bash tools/ab-addon.sh run"
      timeout 420 $ab $batch --output-path "$r/ab-batch" | grep -E "^== ab|^\| llama"
      timeout 240 $ab $sweep --output-path "$r/ab-sweep" | grep -E "^== ab|^\| llama" ;;
    abprefill) timeout 240 bash tools/ab-addon.sh run node bin/quest.js bench-latency --model llama-2-7b --lengths 32768 --policies dense,h2o \
        --budgets 2048 --decode-steps 2 --repeats 1 --device cuda --output-path "$r/ab-prefill" | grep -E "^== ab|^\| llama" ;;
    lanes) for i in 1 2; do for v in 0 1; do
        QUEST_DECODE_LANES=$v timeout 100 $batch --output-path "$r/lanes-batch-$v-$i" | sed "s/^/lanes=$v $i /" | grep -E "\| llama"
        QUEST_DECODE_LANES=$v timeout 60 $sweep --output-path "$r/lanes-sweep-$v-$i" | sed "s/^/lanes=$v $i /" | grep -E "\| llama"
      done; done ;;
    linear) for m in llama-2-7b-awq llama-3-8b; do
        timeout 60 node bin/quest.js bench-linear --model $m --batch 1,4,8 --output-path "$r/linear/$m"
      done ;;
    *) echo "unknown step $step" ;;
  esac
done
log done
