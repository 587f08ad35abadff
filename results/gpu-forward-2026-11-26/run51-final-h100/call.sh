# Session 2026-11-26d call 19. Base: 716522b. New: 5e658f5 with the register bound only on
# the cluster kernel (the explicit minimum of 1 on the others had taken 12 registers more:
# the dense kernel at 108 instead of 96, and a block a SM fewer). GPU tests and parity on new;
# the six-length benchmark base / new twice; GQA base / new; then the documented command's
# torch, bench and latency steps on new, GQA with torch, the gate's attention command and
# Llama-3-8B.
set -u
export QUEST_THREADS=$(nproc)
date -u > $OUT/start.txt
bash .gpu/unpack.sh && touch .gpu/unpacked
mkdir -p /tmp/v && tar -xJf .gpu/variants.tar.xz -C /tmp/v && cp cuda/build/Release/quest_engine.node /tmp/v/new.node
use() { cp /tmp/v/$1.node cuda/build/Release/quest_engine.node; }
timeout 100 node node_modules/vitest/vitest.mjs run test/gpu-model.test.ts test/cuda.test.ts > $OUT/gputest.log 2>&1
ba="node bin/quest.js bench-attention --lengths 4096,8192,16384,32768,65536,131072 --budgets 2048"
{ for v in base new base new; do use $v; echo "== $v"; timeout 60 $ba --output-path /tmp/a-$v; done
  for v in base new; do use $v; echo "== gqa $v"; timeout 60 $ba --heads 32 --kv-heads 8 --output-path /tmp/g-$v; done; use new; } > $OUT/ab.log 2>&1
bash tools/gpu-run.sh torch bench latency > $OUT/gpu-run.log 2>&1
r=$OUT/run
{ timeout 100 python3 tools/bench-torch.py --kv-heads 8 --lengths 4096,32768,131072 --out $r/torch-gqa.json
  timeout 100 node bin/quest.js bench-attention --heads 32 --kv-heads 8 --lengths 4096,32768,131072 --budgets 2048 --torch $r/torch-gqa.json --output-path $r/bench-attention-gqa
  timeout 100 node bin/quest.js bench-attention --check --lengths 4096,8192,16384,32768,65536,131072 --budgets 2048 --output-path $r/baseline-attention
  timeout 100 node bin/quest.js bench-latency --model llama-3-8b --lengths 32768 --policies dense,quest --budgets 2048 --decode-steps 32 --repeats 2 --device cuda --output-path $r/bench-latency-llama3; } > $OUT/extra.log 2>&1
(cd $OUT && tar -cJf run.tar.xz run && rm -rf run)
date -u > $OUT/end.txt
