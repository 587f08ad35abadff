# Session 2026-11-26f call 5: fin (the clean form of mb2: one finish_cluster sending by
# st.async, used by the fused step and the cluster attention kernel) against sync and mb2
# (run 78); 64K, 128K and GQA 32x8 (the three kernels, the cluster attention kernel). Parity.
set -u
bash .gpu/unpack.sh && touch .gpu/unpacked
mkdir -p /tmp/var && tar -xJf .gpu/variants.tar.xz -C /tmp/var
NODE=cuda/build/Release/quest_engine.node
date -u > $OUT/start.txt
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/card.txt
for v in fin; do
  cp /tmp/var/$v.node $NODE
  echo "== $v" >> $OUT/check.log
  timeout 60 node bin/quest.js bench-attention --check --lengths 4096 --budgets 2048 --output-path /tmp/a >> $OUT/check.log 2>&1
  timeout 60 node bin/quest.js bench-attention --check --lengths 4096 --budgets 2048 --heads 32 --kv-heads 8 --output-path /tmp/a >> $OUT/check.log 2>&1
done
for v in sync mb2 fin sync mb2 fin; do
  cp /tmp/var/$v.node $NODE
  echo "== $v" >> $OUT/ab.log
  timeout 60 node bin/quest.js bench-attention --lengths 4096,16384,32768,65536,131072 --budgets 1024,2048 --output-path /tmp/b >> $OUT/ab.log 2>&1
  echo "== $v gqa" >> $OUT/ab.log
  timeout 60 node bin/quest.js bench-attention --lengths 4096,32768 --budgets 1024,2048 --heads 32 --kv-heads 8 --output-path /tmp/b >> $OUT/ab.log 2>&1
done
date -u >> $OUT/start.txt
