#!/usr/bin/env bash
# A-B of the decode attention kernels on the GPU machine: the addon of commit $1 (git archive
# of its cuda/ into ab-before/, made here beside this checkout, since the GPU machine has no
# history) beside this tree's built addon, timed alternately (benchAttention: 32 heads x 128,
# 32 and 8 KV heads, 4K and 32K, budget 2048, median of 50), two runs each, on one card.
# Both built for $QUEST_CUDA_ARCHS (90a by default, as tools/gpu-run.sh builds).
#   here:  tools/ab-attention.sh prepare REV      (ab-before/, ignored by git, must then travel: carry it)
#   there: tools/ab-attention.sh run              (after the tree's own build; removes ab-before/ at the end)
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  prepare) [ -n "${2:-}" ] || { echo "usage: tools/ab-attention.sh prepare REV" >&2; exit 2; }
    rm -rf ab-before && mkdir -p ab-before && git archive "$2" cuda | tar -x -C ab-before ;;
  run)
    [ -d ab-before/cuda ] || { echo "tools/ab-attention.sh run: no ab-before/cuda: run 'prepare REV' where the history is, and carry ab-before/" >&2; exit 2; }
    [ -f cuda/build/Release/quest_engine.node ] || { echo "tools/ab-attention.sh run: this tree's addon is not built (node scripts/build-addon.js)" >&2; exit 2; }
    QUEST_ADDON_SRC=ab-before/cuda QUEST_CUDA_ARCHS=${QUEST_CUDA_ARCHS:-90a} node scripts/build-addon.js > /dev/null
    for kv in 32 8; do for i in 1 2; do for b in ab-before/cuda/build cuda/build; do
      node -e "require(process.cwd()+'/'+process.argv[1]+'/Release/quest_engine.node').benchAttention({heads:32,kvHeads:+process.argv[2],headDim:128,pageSize:16,lengths:[4096,32768],budgets:[2048],repeats:50,seed:0}).then(r=>console.log(process.argv[1].split('/')[0],'kv',process.argv[2],JSON.stringify(r.rows.map(x=>[x.length,x.policy,x.budget,x.attentionUs,x.totalUs])))).catch(e=>{console.error('tools/ab-attention.sh: '+e.message);process.exit(1)})" "$b" "$kv"
    done; done; done
    rm -rf ab-before ;;
  *) echo "usage: tools/ab-attention.sh prepare REV | run" >&2; exit 2 ;;
esac
