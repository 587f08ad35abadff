#!/usr/bin/env bash
# A device call carries the working tree and the ignored paths it names (.gpu/, ab-before/) in
# 64 MiB, and .gpu/ alone is about 30 MB: around a call, the tree's large tracked folders that the
# decode and model runs do not read leave the tree and come back.
#   tools/gpu-carry.sh out   after tools/gpu-bundle.sh (whose git-state.json then records the
#                            clean tree), moves them to ../gpu-carry-stash/
#   tools/gpu-carry.sh in    puts them back; run it right after the call: a commit in between
#                            would record their deletion
# $GPU_CARRY_OUT names the folders instead (the default leaves out the fixtures that only
# test/gpu-arch reads, test/fidelity and results/).
set -euo pipefail
cd "$(dirname "$0")/.."
stash=../gpu-carry-stash
default="test/fixtures/gemma2 test/fixtures/gemma3 test/fixtures/phi3-longrope test/fixtures/yarn-llama test/fixtures/yarn-qwen2
  test/fixtures/dynamic-llama test/fixtures/mistral-window test/fixtures/qwen3 test/fidelity results"
folders=${GPU_CARRY_OUT:-$default}
case "${1:-}" in
  out)
    [ ! -e "$stash" ] || { echo "tools/gpu-carry.sh: $stash exists: run 'in' first" >&2; exit 2; }
    [ -z "$(git status --porcelain -- $folders)" ] || { echo "tools/gpu-carry.sh: changes under the folders to move; commit them first" >&2; exit 2; }
    for f in $folders; do [ -e "$f" ] || { echo "tools/gpu-carry.sh: $f is not in the tree (GPU_CARRY_OUT?)" >&2; exit 2; }; done
    for f in $folders; do
      mkdir -p "$stash/$(dirname "$f")"
      mv "$f" "$stash/$f"
    done
    du -sh --exclude=.git --exclude=node_modules --exclude=cuda/build --exclude=dist . ;;
  in)
    [ -d "$stash" ] || { echo "tools/gpu-carry.sh: no $stash to put back" >&2; exit 2; }
    for f in $folders; do
      if [ -e "$stash/$f" ]; then mv "$stash/$f" "$f"; fi
    done
    rm -r "$stash"
    git status --short -- $folders ;;
  *) echo "usage: tools/gpu-carry.sh out | in" >&2; exit 2 ;;
esac
