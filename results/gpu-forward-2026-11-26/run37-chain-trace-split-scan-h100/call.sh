# Session 2026-11-26d call 4 (experiment, nothing to commit from it). x: HEAD (66ce458) with
# globaltimer stamps in the chained Quest step (the top-k's phases, every kernel's end) and
# the split count's factor and pages-a-split read from the environment. Base: HEAD.
set -u
bash .gpu/unpack.sh && touch .gpu/unpacked
mkdir -p /tmp/v && tar -xJf .gpu/variants.tar.xz -C /tmp/v
use() { cp /tmp/v/$1.node cuda/build/Release/quest_engine.node; }
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/card.txt
date -u > $OUT/start.txt
ba="node bin/quest.js bench-attention --budgets 2048"
use x
QUEST_TRACE=1 timeout 60 $ba --lengths 4096,32768,131072 --output-path /tmp/t > $OUT/trace.log 2>&1
{ for fm in 4,2 6,2 8,2 8,1 12,1 16,1; do f=${fm%,*}; m=${fm#*,}; echo "== split factor $f, pages a split $m"
  QUEST_XSPLIT=$f QUEST_XMINP=$m timeout 60 $ba --lengths 4096,32768,131072 --output-path /tmp/s$f$m; done
  use base; echo "== base"; timeout 60 $ba --lengths 4096,32768,131072 --output-path /tmp/b; } > $OUT/split.log 2>&1
date -u > $OUT/end.txt
