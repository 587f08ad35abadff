# Session 2026-11-26f call 4: the fused step's scores copied to every block by bulk async
# copies counted on an mbarrier, no cluster-wide release (mb1); mb1 plus the split merge by
# st.async onto rank 0's mbarrier (mb2); both on top of sync; against pf (ed88ba1), sync and
# relax (run 77). Parity on each.
set -u
bash .gpu/unpack.sh && touch .gpu/unpacked
mkdir -p /tmp/var && tar -xJf .gpu/variants.tar.xz -C /tmp/var
NODE=cuda/build/Release/quest_engine.node
date -u > $OUT/start.txt
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/card.txt
for v in mb1 mb2; do
  cp /tmp/var/$v.node $NODE
  echo "== $v" >> $OUT/check.log
  timeout 60 node bin/quest.js bench-attention --check --lengths 4096 --budgets 2048 --output-path /tmp/a >> $OUT/check.log 2>&1
done
for v in pf sync relax mb1 mb2 pf sync relax mb1 mb2; do
  cp /tmp/var/$v.node $NODE
  echo "== $v" >> $OUT/ab.log
  timeout 60 node bin/quest.js bench-attention --lengths 4096,16384,32768 --budgets 1024,2048 --output-path /tmp/b >> $OUT/ab.log 2>&1
done
date -u >> $OUT/start.txt
