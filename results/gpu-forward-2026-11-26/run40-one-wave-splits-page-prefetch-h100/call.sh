# Session 2026-11-26d call 7. Base: 66ce458. wave: base + the attention's split count capped
# so every block fits at once (per-SM blocks from the occupancy API). new: wave + the page
# attention looking up the next page's entry and physical page while this page's K and V are
# in flight. GPU tests and parity on new; the attention benchmark (MHA 32x128, and GQA 32/8)
# base / wave / new twice; the 7B and Llama-3-8B steps, new and base.
set -u
bash .gpu/unpack.sh && touch .gpu/unpacked
mkdir -p /tmp/v && tar -xJf .gpu/variants.tar.xz -C /tmp/v && cp cuda/build/Release/quest_engine.node /tmp/v/new.node
use() { cp /tmp/v/$1.node cuda/build/Release/quest_engine.node; }
export QUEST_THREADS=$(nproc)
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/card.txt
date -u > $OUT/start.txt
timeout 100 node node_modules/vitest/vitest.mjs run test/gpu-model.test.ts test/cuda.test.ts > $OUT/gputest.log 2>&1
ba="node bin/quest.js bench-attention --lengths 4096,32768,131072 --budgets 2048 --torch results/gpu-forward-2026-11-26/run35-l2-flush-bounds-by-sign-h100/torch.json"
{ echo "== new"; timeout 120 $ba --check --output-path /tmp/a0
  for v in base wave new base wave new; do use $v; echo "== $v"; timeout 60 $ba --output-path /tmp/a-$v; done; use new; } > $OUT/bench.log 2>&1
bg="node bin/quest.js bench-attention --heads 32 --kv-heads 8 --lengths 4096,32768,131072 --budgets 2048"
{ for v in base new base new; do use $v; echo "== $v"; timeout 60 $bg --output-path /tmp/g-$v; done; use new; } > $OUT/bench-gqa.log 2>&1
bl="node bin/quest.js bench-latency --lengths 32768 --budgets 2048 --decode-steps 32 --repeats 1 --device cuda --policies dense,quest"
{ for m in llama-2-7b llama-3-8b; do echo "== new $m"; timeout 70 $bl --model $m --output-path /tmp/l1$m
  use base; echo "== base $m"; timeout 70 $bl --model $m --output-path /tmp/l2$m; use new; done; } > $OUT/latency.log 2>&1
date -u > $OUT/end.txt
