#!/usr/bin/env bash
# One call on the GPU machine (pack first with tools/gpu-bundle.sh), running the named steps
# (all of them by default); everything lands in $OUT/run, to be tarred before it comes back:
#   fixture     the shipped model's transformers logits (test/fixtures/quest-tiny)
#   torch       torch's attention timings (tools/bench-torch.py)
#   bench       quest bench-attention --check, with torch beside
#   sweep       passkey of the shipped model at 4K-32K, 5 depths
#   niah        RULER niah_single_1/2/3 of the shipped model at 8K
#   passkey32k  passkey at 32K alone
set -uo pipefail
bash .gpu/unpack.sh
r=$OUT/run
mkdir -p "$r"
log() { echo "== $(date -u +%H:%M:%S) $*"; }
export PYTHONUNBUFFERED=1 QUEST_THREADS=$(nproc)
tiny="node bin/quest.js eval --model models/quest-tiny --samples 5"
log device; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
for step in ${@:-fixture torch bench sweep niah}; do
  log "$step"
  case $step in
    fixture) python3 tools/make-fixtures.py --trained models/quest-tiny --out "$r/fixture-quest-tiny" ;;
    torch) timeout 120 python3 tools/bench-torch.py --out "$r/torch.json" --repeats 50 ;;
    bench) timeout 150 node bin/quest.js bench-attention --check --torch "$r/torch.json" --output-path "$r/bench-attention" ;;
    sweep) timeout 200 $tiny --tasks passkey --lengths 4096,8192,16384,32768 --depths 0,25,50,75,100 --output-path "$r/passkey-sweep" ;;
    niah) timeout 80 $tiny --tasks niah_single_1,niah_single_2,niah_single_3 --lengths 8192 --output-path "$r/niah-8k" ;;
    passkey32k) timeout 330 $tiny --tasks passkey --lengths 32768 --depths 0,25,50,75,100 --output-path "$r/passkey-32k" ;;
    *) echo "unknown step $step" ;;
  esac
done
log done
