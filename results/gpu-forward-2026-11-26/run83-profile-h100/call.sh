# Session 2026-11-26f call 10 (the first try, call 9, carried a stale production node_modules
# and ran nothing): ncu of the fused step as it stands (0f084f9, built here for sm_90).
set -u
bash .gpu/unpack.sh && touch .gpu/unpacked
mkdir -p /tmp/var && tar -xJf .gpu/variants.tar.xz -C /tmp/var
mkdir -p cuda/build/Release && cp /tmp/var/cur.node cuda/build/Release/quest_engine.node
date -u > $OUT/start.txt
mkdir -p /tmp/prof
timeout 150 ncu --clock-control none -k regex:quest_step --launch-count 1 --set full -o /tmp/prof/cur \
  node bin/quest.js bench-attention --lengths 32768 --budgets 2048 --output-path /tmp/c > /tmp/prof/ncu.log 2>&1
timeout 60 ncu -i /tmp/prof/cur.ncu-rep --page details --print-details all > /tmp/prof/details.txt 2>&1
timeout 60 ncu -i /tmp/prof/cur.ncu-rep --page source --print-source sass --csv > /tmp/prof/sass.csv 2>&1
timeout 60 ncu -i /tmp/prof/cur.ncu-rep --page raw --csv > /tmp/prof/raw.csv 2>&1
timeout 120 node bin/quest.js bench-attention --lengths 4096,32768 --budgets 1024,2048 --output-path /tmp/d > /tmp/prof/bench.log 2>&1
tar -C /tmp/prof -cJf $OUT/prof.tar.xz --exclude='*.ncu-rep' .
date -u >> $OUT/start.txt
