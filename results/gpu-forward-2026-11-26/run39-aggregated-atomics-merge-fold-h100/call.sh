# Session 2026-11-26d call 6. Base: 66ce458. agg: base + the radix passes' atomics
# aggregated over the lanes that share a digit (__match_any_sync). new: agg + page-list
# attention merging in the last split of each list (no merge launch) for Quest's lists.
# GPU tests and parity on new; the attention benchmark base / agg / new twice; the 7B step.
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
  for v in base agg new base agg new; do use $v; echo "== $v"; timeout 60 $ba --output-path /tmp/a-$v; done; use new; } > $OUT/bench.log 2>&1
bl="node bin/quest.js bench-latency --model llama-2-7b --lengths 32768 --budgets 2048 --decode-steps 32 --repeats 1 --device cuda --policies dense,quest"
{ echo "== new"; timeout 70 $bl --output-path /tmp/l1
  use base; echo "== base"; timeout 70 $bl --output-path /tmp/l2; use new; } > $OUT/latency.log 2>&1
date -u > $OUT/end.txt
