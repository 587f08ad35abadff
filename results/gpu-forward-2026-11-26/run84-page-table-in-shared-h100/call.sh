# Session 2026-11-26f call 11: the fused step's page table copied into shared memory by
# cp.async while the bounds load (tbl), and tbl with the attention's query taken from shared
# memory (tblq); against 0f084f9 (cur). Parity on each; three alternations.
set -u
bash .gpu/unpack.sh && touch .gpu/unpacked
mkdir -p /tmp/var && tar -xJf .gpu/variants.tar.xz -C /tmp/var
mkdir -p cuda/build/Release
NODE=cuda/build/Release/quest_engine.node
date -u > $OUT/start.txt
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/card.txt
for v in tbl tblq; do
  cp /tmp/var/$v.node $NODE
  echo "== $v" >> $OUT/check.log
  timeout 60 node bin/quest.js bench-attention --check --lengths 4096 --budgets 2048 --output-path /tmp/a >> $OUT/check.log 2>&1
done
for v in cur tbl tblq cur tbl tblq cur tbl tblq; do
  cp /tmp/var/$v.node $NODE
  echo "== $v" >> $OUT/ab.log
  timeout 60 node bin/quest.js bench-attention --lengths 4096,16384,32768 --budgets 1024,2048 --output-path /tmp/b >> $OUT/ab.log 2>&1
done
date -u >> $OUT/start.txt
