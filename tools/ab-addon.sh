#!/usr/bin/env bash
# A-B of two builds of the native engine on the GPU machine, on one card in one call: the addon
# of commit REV (git archive of its cuda/ into ab-before/, made here beside this checkout, since
# the GPU machine has no history) against this tree's built addon, each run twice (run:
# $AB_ROUNDS times), alternately.
# Both built for $QUEST_CUDA_ARCHS (90a by default, as tools/gpu-run.sh builds).
#   here:  tools/ab-addon.sh prepare REV     (ab-before/, ignored by git, must then travel: carry it)
#   there: tools/ab-addon.sh attention       the decode attention kernels alone (benchAttention:
#                                            32 heads x 128, 32 and 8 KV heads, 4K and 32K,
#                                            budget 2048, median of 50)
#          tools/ab-addon.sh run CMD...      any command (a quest bench-latency, say), REV's
#                                            addon copied into cuda/build for its runs; $AB_ROUNDS
#                                            rounds of before then ours (2)
#          tools/ab-addon.sh build           REV's addon alone (tools/gpu-run.sh's build step
#                                            runs it beside the tree's own build)
#   attention and run after the tree's own build, as often as needed (ab-before/ stays; REV's
#   build again is incremental, but only where ab-before/ is not carried again: a carried path
#   replaces the one on the machine, its build with it); this tree's addon is put back however
#   `run` ends, but for a kill -9.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { echo "usage: tools/ab-addon.sh prepare REV | build | attention | run CMD..." >&2; exit 2; }
ours=cuda/build/Release/quest_engine.node
before=ab-before/cuda/build/Release/quest_engine.node
build_rev() {
  [ -d ab-before/cuda ] || { echo "tools/ab-addon.sh: no ab-before/cuda: run 'prepare REV' where the history is, and carry ab-before/" >&2; exit 2; }
  QUEST_ADDON_SRC=ab-before/cuda QUEST_CUDA_ARCHS=${QUEST_CUDA_ARCHS:-90a} node scripts/build-addon.js
}
build_before() {
  [ -f "$ours" ] || { echo "tools/ab-addon.sh: this tree's addon is not built (node scripts/build-addon.js)" >&2; exit 2; }
  build_rev > /dev/null
}
case "${1:-}" in
  prepare) [ -n "${2:-}" ] || usage
    rm -rf ab-before && mkdir -p ab-before && git archive "$2" cuda | tar -x -C ab-before ;;
  build) build_rev ;;
  attention) build_before
    for kv in 32 8; do for i in 1 2; do for b in ab-before/cuda/build cuda/build; do
      node -e "require(process.cwd()+'/'+process.argv[1]+'/Release/quest_engine.node').benchAttention({heads:32,kvHeads:+process.argv[2],headDim:128,pageSize:16,lengths:[4096,32768],budgets:[2048],repeats:50,seed:0}).then(r=>console.log(process.argv[1].split('/')[0],'kv',process.argv[2],JSON.stringify(r.rows.map(x=>[x.length,x.policy,x.budget,x.attentionUs,x.totalUs])))).catch(e=>{console.error('tools/ab-addon.sh: '+e.message);process.exit(1)})" "$b" "$kv"
    done; done; done ;;
  run) shift; [ $# -gt 0 ] || usage
    build_before
    kept=$(mktemp)
    cp -p "$ours" "$kept"
    # Put back with its own time, so that a later build here still sees what it is built from.
    trap 'cp -p "$kept" "$ours"; rm -f "$kept"' EXIT
    for i in $(seq "${AB_ROUNDS:-2}"); do for v in before ours; do
      if [ $v = before ]; then cp "$before" "$ours"; else cp "$kept" "$ours"; fi
      echo "== ab $v $i: $*"
      "$@" || echo "tools/ab-addon.sh: the $v run $i failed"
    done; done ;;
  *) usage ;;
esac
