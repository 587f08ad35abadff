# Session 2026-11-26f call 1: the radix select over offsets from the least key, from their
# highest differing bit (off); the fused step's pages handed out by a cluster counter (dyn);
# both; against 1ce4347 (head). Parity on each; ncu of head's and both's fused step.
set -u
bash .gpu/unpack.sh && touch .gpu/unpacked
mkdir -p /tmp/var && tar -xJf .gpu/variants.tar.xz -C /tmp/var
NODE=cuda/build/Release/quest_engine.node
date -u > $OUT/start.txt
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/card.txt
for v in off dyn both; do
  cp /tmp/var/$v.node $NODE
  echo "== $v" >> $OUT/check.log
  timeout 60 node bin/quest.js bench-attention --check --lengths 4096 --budgets 2048 --output-path /tmp/a >> $OUT/check.log 2>&1
done
for v in head off dyn both head off dyn both; do
  cp /tmp/var/$v.node $NODE
  echo "== $v" >> $OUT/ab.log
  timeout 60 node bin/quest.js bench-attention --lengths 4096,16384,32768 --budgets 1024,2048 --output-path /tmp/b >> $OUT/ab.log 2>&1
done
date -u > $OUT/ab-end.txt
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
echo "ncu: $NCU" > $OUT/ncu.log
for v in head both; do
  cp /tmp/var/$v.node $NODE
  timeout 150 $NCU --clock-control none -k regex:quest_step --launch-count 1 --set full -o /tmp/prof-$v \
    node bin/quest.js bench-attention --lengths 32768 --budgets 2048 --output-path /tmp/c >> $OUT/ncu.log 2>&1
  timeout 60 $NCU -i /tmp/prof-$v.ncu-rep --page details > $OUT/details-$v.txt 2>&1
  timeout 60 $NCU -i /tmp/prof-$v.ncu-rep --page source --print-source sass --csv > $OUT/sass-$v.csv 2>&1
done
date -u > $OUT/end.txt
