#!/usr/bin/env bash
# Second GPU call of 2026-11-26: the top-k rewrite measured (parity first), and the shipped
# model's passkey at 32K, which the first call's 200-second CPU budget cut short.
set -uo pipefail
bash .gpu/unpack.sh
r=$OUT/run
mkdir -p "$r"
log() { echo "== $(date -u +%H:%M:%S) $*"; }
export PYTHONUNBUFFERED=1 QUEST_THREADS=$(nproc)
log device; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
log torch; timeout 120 python3 tools/bench-torch.py --out "$r/torch.json" --repeats 50
log quest bench-attention; timeout 150 node bin/quest.js bench-attention --check --torch "$r/torch.json" --output-path "$r/bench-attention"
log passkey 32K; timeout 330 node bin/quest.js eval --model models/quest-tiny --tasks passkey --lengths 32768 --depths 0,25,50,75,100 --samples 5 --output-path "$r/passkey-32k"
log done
