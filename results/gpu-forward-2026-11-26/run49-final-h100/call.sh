# Session 2026-11-26d call 17: the final build (5e658f5). The documented one command (GPU
# tests, torch's side, bench-attention --check with torch beside, the 7B step), then GQA
# (32 query x 8 KV heads) with torch beside, the regression gate's attention command for the
# baseline, and the Llama-3-8B step.
set -u
export QUEST_THREADS=$(nproc)
date -u > $OUT/start.txt
bash tools/gpu-run.sh gputest torch bench latency > $OUT/gpu-run.log 2>&1
r=$OUT/run
{ timeout 100 python3 tools/bench-torch.py --kv-heads 8 --lengths 4096,32768,131072 --out $r/torch-gqa.json
  timeout 100 node bin/quest.js bench-attention --heads 32 --kv-heads 8 --lengths 4096,32768,131072 --budgets 2048 --torch $r/torch-gqa.json --output-path $r/bench-attention-gqa
  timeout 100 node bin/quest.js bench-attention --check --lengths 4096,8192,16384,32768,65536,131072 --budgets 2048 --output-path $r/baseline-attention
  timeout 100 node bin/quest.js bench-latency --model llama-3-8b --lengths 32768 --policies dense,quest --budgets 2048 --decode-steps 32 --repeats 2 --device cuda --output-path $r/bench-latency-llama3; } > $OUT/extra.log 2>&1
(cd $OUT && tar -cJf run.tar.xz run && rm -rf run)
date -u > $OUT/end.txt
