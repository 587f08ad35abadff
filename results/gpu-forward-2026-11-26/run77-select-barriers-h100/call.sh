# Session 2026-11-26f call 3: sync (two histograms in turns, min/max with one barrier, one
# packed scan to place the taken pages) on top of pf (ed88ba1); fence and relax (the fused
# step's cluster barriers as fence + relaxed arrive, or the first one relaxed after a block
# barrier) on top of sync; head is 1ce4347. Parity on each; SASS of the barrier forms.
set -u
bash .gpu/unpack.sh && touch .gpu/unpacked
mkdir -p /tmp/var && tar -xJf .gpu/variants.tar.xz -C /tmp/var
NODE=cuda/build/Release/quest_engine.node
date -u > $OUT/start.txt
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/card.txt
(cd .gpu/sasstest && nvcc -arch=sm_90 -cubin -o bar.cubin bar.cu && cuobjdump -sass bar.cubin) > $OUT/sass-barriers.txt 2>&1
for v in sync fence relax; do
  cp /tmp/var/$v.node $NODE
  echo "== $v" >> $OUT/check.log
  timeout 60 node bin/quest.js bench-attention --check --lengths 4096 --budgets 2048 --output-path /tmp/a >> $OUT/check.log 2>&1
done
for v in pf sync fence relax pf sync fence relax; do
  cp /tmp/var/$v.node $NODE
  echo "== $v" >> $OUT/ab.log
  timeout 60 node bin/quest.js bench-attention --lengths 4096,16384,32768 --budgets 1024,2048 --output-path /tmp/b >> $OUT/ab.log 2>&1
done
for v in head sync head sync; do
  cp /tmp/var/$v.node $NODE
  echo "== $v" >> $OUT/long.log
  timeout 60 node bin/quest.js bench-attention --lengths 65536,131072 --budgets 2048 --output-path /tmp/b >> $OUT/long.log 2>&1
  echo "== $v gqa" >> $OUT/long.log
  timeout 60 node bin/quest.js bench-attention --lengths 32768 --budgets 2048 --heads 32 --kv-heads 8 --output-path /tmp/b >> $OUT/long.log 2>&1
done
date -u >> $OUT/start.txt
