# Session 2026-11-26e call 20: the fused step's lists in turns (s2, s4, s8: halves, quarters,
# eighths), each turn's estimate starting once every block of the turns before has scored,
# so that one turn's select overlaps the next one's bytes; against 627d64c (head). Parity on
# each; Quest at 4K and 32K, head / s2 / s4 / s8 twice.
set -u
bash .gpu/unpack.sh && touch .gpu/unpacked
mkdir -p /tmp/var && tar -xJf .gpu/variants.tar.xz -C /tmp/var
NODE=cuda/build/Release/quest_engine.node
date -u > $OUT/start.txt
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/card.txt
for v in s2 s4 s8; do
  cp /tmp/var/$v.node $NODE
  echo "== $v" >> $OUT/check.log
  timeout 60 node bin/quest.js bench-attention --check --lengths 4096 --budgets 2048 --output-path /tmp/a >> $OUT/check.log 2>&1
done
for v in head s2 s4 s8 head s2 s4 s8; do
  cp /tmp/var/$v.node $NODE
  echo "== $v" >> $OUT/ab.log
  timeout 60 node bin/quest.js bench-attention --lengths 4096,32768 --budgets 2048 --output-path /tmp/b >> $OUT/ab.log 2>&1
done
date -u > $OUT/end.txt
