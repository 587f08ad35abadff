# Session 2026-11-26d call 16. Base: 716522b. New: call 15's build with the long lists of one
# head (dense past 4K) left free of the register bound (in call 15 their dense step at 32K
# took 186 us against 184). GPU tests and parity on new; the attention benchmark base / new
# twice, MHA and GQA; the 7B and Llama-3-8B steps, new and base.
set -u
export QUEST_THREADS=$(nproc)
date -u > $OUT/start.txt
bash .gpu/unpack.sh && touch .gpu/unpacked
mkdir -p /tmp/v && tar -xJf .gpu/variants.tar.xz -C /tmp/v && cp cuda/build/Release/quest_engine.node /tmp/v/new.node
use() { cp /tmp/v/$1.node cuda/build/Release/quest_engine.node; }
timeout 100 node node_modules/vitest/vitest.mjs run test/gpu-model.test.ts test/cuda.test.ts > $OUT/gputest.log 2>&1
ba="node bin/quest.js bench-attention --lengths 4096,32768,131072 --budgets 2048"
{ echo "== new"; timeout 120 $ba --check --output-path /tmp/a0
  for v in base new base new; do use $v; echo "== $v"; timeout 60 $ba --output-path /tmp/a-$v; done
  for v in base new base new; do use $v; echo "== gqa $v"; timeout 60 $ba --heads 32 --kv-heads 8 --output-path /tmp/g-$v; done; use new; } > $OUT/bench.log 2>&1
bl="node bin/quest.js bench-latency --lengths 32768 --budgets 2048 --decode-steps 32 --repeats 1 --device cuda --policies dense,quest"
{ for m in llama-2-7b llama-3-8b; do echo "== new $m"; timeout 70 $bl --model $m --output-path /tmp/l1$m
  use base; echo "== base $m"; timeout 70 $bl --model $m --output-path /tmp/l2$m; use new; done; } > $OUT/latency.log 2>&1
date -u > $OUT/end.txt
