# Session 2026-11-26e call 19: the radix select counting each thread's run of keys alike down
# to the pass's digit with one atomic (agg), against 627d64c (head): kernel parity on agg;
# Quest at 4K-128K and GQA at 32K, head / agg alternating.
set -u
bash .gpu/unpack.sh && touch .gpu/unpacked
mkdir -p /tmp/var && tar -xJf .gpu/variants.tar.xz -C /tmp/var
NODE=cuda/build/Release/quest_engine.node
date -u > $OUT/start.txt
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/card.txt
cp /tmp/var/agg.node $NODE
timeout 100 node bin/quest.js bench-attention --check --lengths 4096 --budgets 2048 --output-path /tmp/a > $OUT/check.log 2>&1
for v in head agg head agg; do
  cp /tmp/var/$v.node $NODE
  echo "== $v" >> $OUT/ab.log
  timeout 60 node bin/quest.js bench-attention --lengths 4096,32768,65536,131072 --budgets 2048 --output-path /tmp/b >> $OUT/ab.log 2>&1
  timeout 60 node bin/quest.js bench-attention --heads 32 --kv-heads 8 --lengths 32768 --budgets 2048 --output-path /tmp/g >> $OUT/ab.log 2>&1
done
date -u > $OUT/end.txt
