# Session 2026-11-26d call 20 (review): one_wave_splits asks the driver once per kernel
# instead of on every call; --budgets checked before any GPU work. GPU tests, kernel parity and
# the attention benchmark on the reviewed build.
set -u
export QUEST_THREADS=$(nproc)
bash .gpu/unpack.sh && touch .gpu/unpacked
date -u > $OUT/start.txt
timeout 100 node node_modules/vitest/vitest.mjs run test/gpu-model.test.ts test/cuda.test.ts > $OUT/gputest.log 2>&1
timeout 120 node bin/quest.js bench-attention --check --lengths 4096,32768,131072 --budgets 2048 --output-path /tmp/a > $OUT/bench.log 2>&1
timeout 60 node bin/quest.js bench-attention --heads 32 --kv-heads 8 --lengths 32768,131072 --budgets 2048 --output-path /tmp/g >> $OUT/bench.log 2>&1
date -u > $OUT/end.txt
