# Session 2026-11-26d call 3. Base: 66ce458 (the estimate by sign). topk: base + the radix
# select with unaligned first digit, one barrier a pass, each warp choosing the digit on its
# own, and Quest's top-k with one packed scan. all: topk + the page attention looking up the
# next page's entry and physical page while this page's K and V are in flight. GPU tests and
# parity on all; the attention benchmark base / topk / all twice (L2 flushed before each
# replay; torch's side from run 35); the 7B step, all and base.
set -u
bash .gpu/unpack.sh && touch .gpu/unpacked
mkdir -p /tmp/v && tar -xJf .gpu/variants.tar.xz -C /tmp/v && cp cuda/build/Release/quest_engine.node /tmp/v/all.node
export QUEST_THREADS=$(nproc)
use() { cp /tmp/v/$1.node cuda/build/Release/quest_engine.node; }
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/card.txt
date -u > $OUT/start.txt
timeout 100 node node_modules/vitest/vitest.mjs run test/gpu-model.test.ts test/cuda.test.ts > $OUT/gputest.log 2>&1
ba="node bin/quest.js bench-attention --lengths 4096,32768,131072 --budgets 2048 --torch results/gpu-forward-2026-11-26/run35-l2-flush-bounds-by-sign-h100/torch.json"
{ echo "== all"; timeout 120 $ba --check --output-path /tmp/a0
  for v in base topk all base topk all; do use $v; echo "== $v"; timeout 60 $ba --output-path /tmp/a-$v; done; use all; } > $OUT/bench.log 2>&1
bl="node bin/quest.js bench-latency --model llama-2-7b --lengths 32768 --budgets 2048 --decode-steps 32 --repeats 1 --device cuda --policies dense,quest"
{ echo "== all"; timeout 70 $bl --output-path /tmp/l1
  use base; echo "== base"; timeout 70 $bl --output-path /tmp/l2; use all; } > $OUT/latency.log 2>&1
date -u > $OUT/end.txt
