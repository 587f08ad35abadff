#!/usr/bin/env bash
# One call on the GPU machine (see tools/gpu-bundle.sh): the kernels' parity against the
# CPU backend, torch's and our attention timings side by side, the shipped model's
# transformers fixture, and a dense passkey/RULER sweep of the shipped model. Everything
# lands in $OUT/gpu-run.tgz, with the log in $OUT/gpu-run.log.
set -uo pipefail
bash .gpu/unpack.sh
r=$OUT/run
mkdir -p "$r"
log() { echo "== $(date -u +%H:%M:%S) $*"; }
export PYTHONUNBUFFERED=1 QUEST_THREADS=$(nproc)
log device; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
log fixture; python3 tools/make-fixtures.py --trained models/quest-tiny --out "$r/fixture-quest-tiny"
log torch; timeout 120 python3 tools/bench-torch.py --out "$r/torch.json" --repeats 50
log quest bench-attention; timeout 150 node bin/quest.js bench-attention --check --torch "$r/torch.json" --output-path "$r/bench-attention"
log passkey sweep; timeout 200 node bin/quest.js eval --model models/quest-tiny --tasks passkey --lengths 4096,8192,16384,32768 --depths 0,25,50,75,100 --samples 5 --output-path "$r/passkey-sweep"
log niah; timeout 80 node bin/quest.js eval --model models/quest-tiny --tasks niah_single_1,niah_single_2,niah_single_3 --lengths 8192 --samples 5 --output-path "$r/niah-8k"
log done
