# Session 2026-11-26d call 11: the GPU half of the CI gate (.github/workflows/gpu-regression.yml)
# on the final build (716522b's kernels): the accuracy suite on the GPU and its check against
# the committed baseline, the attention kernels and the 7B step and their latency checks.
set -u
export QUEST_THREADS=$(nproc)
date -u > $OUT/start.txt
bash .gpu/unpack.sh && touch .gpu/unpacked
r=$OUT/gate; mkdir -p $r
q="node bin/quest.js"
{ echo "== eval"; timeout 200 $q eval --config configs/regression-gpu.yaml --output-path $r/eval-gpu; echo "rc=$?"
  echo "== check eval"; $q check --baseline results/baseline/eval-regression-gpu/results.json --current $r/eval-gpu --max-accuracy-drop 2; echo "rc=$?"
  echo "== attention"; timeout 150 $q bench-attention --check --lengths 4096,8192,16384,32768,65536,131072 --budgets 2048 --output-path $r/attention; echo "rc=$?"
  echo "== check attention"; $q check --baseline results/baseline/attention-h100/rows.json --current $r/attention --max-latency-ratio 1.15; echo "rc=$?"
  echo "== latency"; timeout 200 $q bench-latency --model llama-2-7b --lengths 4096,32768 --policies dense,quest --budgets 2048 --decode-steps 32 --repeats 2 --device cuda --output-path $r/latency; echo "rc=$?"
  echo "== check latency"; $q check --baseline results/baseline/latency-7b-h100/rows.json --current $r/latency --max-latency-ratio 1.15; echo "rc=$?"; } > $OUT/gate.log 2>&1
(cd $OUT && tar -cJf gate.tar.xz gate && rm -rf gate)
date -u > $OUT/end.txt
