# Session 2026-11-26d call 2: the attention benchmark flushes L2 before every timed replay
# (both builds have that). Base: HEAD's kernels (bench flush commit). New: the key bounds
# chunked channel-major, the estimate a block a chunk reading one bound line per channel by
# the query's sign; the radix select stopping once a whole bin is taken. GPU tests and kernel
# parity on new; torch's side; the attention benchmark base / new / base / new; the 7B step.
set -u
bash .gpu/unpack.sh && touch .gpu/unpacked
xz -dc .gpu/base.node.xz > /tmp/base.node && cp cuda/build/Release/quest_engine.node /tmp/new.node
export QUEST_THREADS=$(nproc)
use() { cp /tmp/$1.node cuda/build/Release/quest_engine.node; }
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/card.txt
date -u > $OUT/start.txt
timeout 100 node node_modules/vitest/vitest.mjs run test/gpu-model.test.ts test/cuda.test.ts > $OUT/gputest.log 2>&1
timeout 120 python3 tools/bench-torch.py --lengths 4096,32768,131072 --budgets 2048 --out $OUT/torch.json > $OUT/torch.log 2>&1
ba="node bin/quest.js bench-attention --lengths 4096,32768,131072 --budgets 2048 --torch $OUT/torch.json"
{ echo "== new"; timeout 120 $ba --check --output-path /tmp/a1
  use base; echo "== base"; timeout 90 $ba --output-path /tmp/a2
  use new; echo "== new"; timeout 90 $ba --output-path /tmp/a3
  use base; echo "== base"; timeout 90 $ba --output-path /tmp/a4; use new; } > $OUT/bench.log 2>&1
bl="node bin/quest.js bench-latency --model llama-2-7b --lengths 32768 --budgets 2048 --decode-steps 32 --repeats 1 --device cuda --policies dense,quest"
{ echo "== new"; timeout 70 $bl --output-path /tmp/l1
  use base; echo "== base"; timeout 70 $bl --output-path /tmp/l2; use new; } > $OUT/latency.log 2>&1
date -u > $OUT/end.txt
