# Session 2026-11-26f call 6 (final, the committed build 48d7310): the documented
# command's steps (GPU tests, torch, the attention benchmark with --check and torch beside,
# the 7B step), then the gate's attention command for the baseline.
set -u
export QUEST_THREADS=$(nproc)
date -u > $OUT/start.txt
bash .gpu/unpack.sh && touch .gpu/unpacked
bash tools/gpu-run.sh gputest torch bench latency > $OUT/run.log 2>&1
timeout 150 node bin/quest.js bench-attention --check --lengths 4096,8192,16384,32768,65536,131072 --budgets 2048 --output-path $OUT/run/gate-attention > $OUT/gate.log 2>&1
timeout 60 node bin/quest.js bench-attention --heads 32 --kv-heads 8 --lengths 4096,32768,131072 --budgets 2048 --torch $OUT/run/torch.json --output-path $OUT/run/gqa > $OUT/gqa.log 2>&1
(cd $OUT && tar -cJf run.tar.xz run && rm -rf run)
date -u > $OUT/end.txt
