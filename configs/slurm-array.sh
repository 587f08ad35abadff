#!/bin/bash
# A quest sweep as a Slurm job array: each array task runs one deterministic shard on its
# own GPU, then one dependent job merges them (quest schedules nothing across machines).
#   sbatch --array=0-7 configs/slurm-array.sh
#   sbatch --dependency=afterok:<array job id> --wrap "npx quest merge runs/sweep/shard-* --output-path runs/sweep/merged"
#SBATCH --job-name=quest-sweep
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --time=04:00:00
set -euo pipefail
cd "${SLURM_SUBMIT_DIR}"
i=$((SLURM_ARRAY_TASK_ID + 1))
n=${SLURM_ARRAY_TASK_COUNT}
# Rerunning a task resumes it: finished records in its folder are kept.
npx quest eval --config configs/regression.yaml --shard "${i}/${n}" --output-path "runs/sweep/shard-${i}"
