# Session 2026-11-26f call 2: after the radix select's first pass the fused step fetches into
# L2 the pages surely taken (pfsure) or maybe taken (pfmaybe), on top of off (the select over
# offsets from the least key); against 1ce4347 (head). Parity on each; ncu of pfsure.
set -u
bash .gpu/unpack.sh && touch .gpu/unpacked
mkdir -p /tmp/var && tar -xJf .gpu/variants.tar.xz -C /tmp/var
NODE=cuda/build/Release/quest_engine.node
date -u > $OUT/start.txt
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/card.txt
for v in pfsure pfmaybe; do
  cp /tmp/var/$v.node $NODE
  echo "== $v" >> $OUT/check.log
  timeout 60 node bin/quest.js bench-attention --check --lengths 4096 --budgets 2048 --output-path /tmp/a >> $OUT/check.log 2>&1
done
for v in head off pfsure pfmaybe head off pfsure pfmaybe; do
  cp /tmp/var/$v.node $NODE
  echo "== $v" >> $OUT/ab.log
  timeout 60 node bin/quest.js bench-attention --lengths 4096,16384,32768 --budgets 1024,2048 --output-path /tmp/b >> $OUT/ab.log 2>&1
done
date -u >> $OUT/start.txt
mkdir -p /tmp/prof
for v in off pfsure; do
  cp /tmp/var/$v.node $NODE
  timeout 150 ncu --clock-control none -k regex:quest_step --launch-count 1 --set full -o /tmp/prof/$v \
    node bin/quest.js bench-attention --lengths 32768 --budgets 2048 --output-path /tmp/c >> /tmp/prof/ncu.log 2>&1
  timeout 60 ncu -i /tmp/prof/$v.ncu-rep --page details > /tmp/prof/details-$v.txt 2>&1
  timeout 60 ncu -i /tmp/prof/$v.ncu-rep --page source --print-source sass --csv > /tmp/prof/sass-$v.csv 2>&1
done
tar -C /tmp/prof -cJf $OUT/prof.tar.xz --exclude='*.ncu-rep' .
date -u >> $OUT/start.txt
