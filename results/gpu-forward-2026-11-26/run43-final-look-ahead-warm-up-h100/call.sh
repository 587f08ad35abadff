# Session 2026-11-26d call 10. new: 9e21788 + the page attention looking a page ahead for
# lists known to be short (<= 16 pages a split), and 20 ms of warm-up before timing (ours and
# torch's). base (wave): 9e21788. The documented one command on new (GPU tests, torch's side,
# bench-attention --check with torch, the 7B step), GQA with torch, the regression gate's
# attention command, Llama-3-8B; then base / new / base / new at 4K, 32K, 128K and the 7B step
# at 32K on base.
set -u
export QUEST_THREADS=$(nproc)
date -u > $OUT/start.txt
bash .gpu/unpack.sh && touch .gpu/unpacked
mkdir -p /tmp/v && tar -xJf .gpu/variants.tar.xz -C /tmp/v && cp cuda/build/Release/quest_engine.node /tmp/v/new.node
use() { cp /tmp/v/$1.node cuda/build/Release/quest_engine.node; }
bash tools/gpu-run.sh gputest torch bench latency > $OUT/gpu-run.log 2>&1
r=$OUT/run
{ timeout 100 python3 tools/bench-torch.py --kv-heads 8 --lengths 4096,32768,131072 --out $r/torch-gqa.json
  timeout 100 node bin/quest.js bench-attention --heads 32 --kv-heads 8 --lengths 4096,32768,131072 --budgets 2048 --torch $r/torch-gqa.json --output-path $r/bench-attention-gqa
  timeout 100 node bin/quest.js bench-attention --check --lengths 4096,8192,16384,32768,65536,131072 --budgets 2048 --output-path $r/baseline-attention
  timeout 100 node bin/quest.js bench-latency --model llama-3-8b --lengths 32768 --policies dense,quest --budgets 2048 --decode-steps 32 --repeats 2 --device cuda --output-path $r/bench-latency-llama3; } > $OUT/extra.log 2>&1
ba="node bin/quest.js bench-attention --lengths 4096,32768,131072 --budgets 2048 --torch $r/torch.json"
{ for v in wave new wave new; do use $v; echo "== $v"; timeout 60 $ba --output-path /tmp/a-$v; done
  use wave; echo "== wave"; timeout 70 node bin/quest.js bench-latency --model llama-2-7b --lengths 32768 --policies dense,quest --budgets 2048 --decode-steps 32 --repeats 2 --device cuda --output-path /tmp/lw; use new; } > $OUT/ab.log 2>&1
(cd $OUT && tar -cJf run.tar.xz run && rm -rf run)
date -u > $OUT/end.txt
