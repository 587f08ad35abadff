# Session 2026-11-26f call 8 (final, 0f084f9): the documented command, with the native engine
# built on this machine, then the gate's attention command for the baseline.
set -u
export QUEST_THREADS=$(nproc)
date -u > $OUT/start.txt
bash .gpu/unpack.sh && touch .gpu/unpacked
which cmake g++ nvcc > $OUT/tools.txt 2>&1; cmake --version | head -1 >> $OUT/tools.txt
bash tools/gpu-run.sh build gputest torch bench latency > $OUT/run.log 2>&1
timeout 150 node bin/quest.js bench-attention --check --lengths 4096,8192,16384,32768,65536,131072 --budgets 2048 --output-path $OUT/run/gate-attention > $OUT/gate.log 2>&1
(cd $OUT && tar -cJf run.tar.xz run && rm -rf run)
date -u > $OUT/end.txt
