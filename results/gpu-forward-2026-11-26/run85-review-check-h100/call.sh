# Session 2026-11-26f call 12 (review): the engine built on this machine after the review's
# change to quest_step's host arithmetic (listed_pages); GPU tests and kernel parity, and the
# attention benchmark at 4K and 32K.
set -u
export QUEST_THREADS=$(nproc)
date -u > $OUT/start.txt
bash .gpu/unpack.sh && touch .gpu/unpacked
bash tools/gpu-run.sh build gputest > $OUT/run.log 2>&1
timeout 120 node bin/quest.js bench-attention --check --lengths 4096,32768 --budgets 1024,2048 --output-path /tmp/b > $OUT/bench.log 2>&1
date -u > $OUT/end.txt
