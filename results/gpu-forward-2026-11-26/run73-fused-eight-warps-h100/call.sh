# Session 2026-11-26e call 21: the fused step with blocks of 8 warps in clusters of 8 (w8:
# 8 keys a thread in the select, half the blocks), against 627d64c (head). Kernel parity
# on w8; Quest at 4K-32K, budgets 1024 and 2048, head / w8 twice; the 7B step.
set -u
export QUEST_THREADS=$(nproc)
bash .gpu/unpack.sh && touch .gpu/unpacked
mkdir -p /tmp/var && tar -xJf .gpu/variants.tar.xz -C /tmp/var
NODE=cuda/build/Release/quest_engine.node
date -u > $OUT/start.txt
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/card.txt
cp /tmp/var/w8.node $NODE
timeout 60 node bin/quest.js bench-attention --check --lengths 4096 --budgets 2048 --output-path /tmp/a > $OUT/check.log 2>&1

for v in head w8 head w8; do
  cp /tmp/var/$v.node $NODE
  echo "== $v" >> $OUT/ab.log
  timeout 60 node bin/quest.js bench-attention --lengths 4096,16384,32768 --budgets 1024,2048 --output-path /tmp/b >> $OUT/ab.log 2>&1
done
for v in head w8; do
  cp /tmp/var/$v.node $NODE
  echo "== $v" >> $OUT/latency.log
  timeout 90 node bin/quest.js bench-latency --model llama-2-7b --lengths 32768 --budgets 2048 --decode-steps 32 --repeats 3 --device cuda --policies quest --output-path /tmp/l >> $OUT/latency.log 2>&1
done
date -u > $OUT/end.txt
