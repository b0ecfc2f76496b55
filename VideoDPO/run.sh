#!/usr/bin/env bash
# The whole VideoDPO pipeline on Wan 2.1 T2V 1.3B: generate -> sift with the reward model -> Flow-DPO -> sample.
# Every step resumes when re-run. NUM_GPUS (default 1) GPUs: generation and sifting run one shard per GPU, then merge.
#   PROMPTS=prompts.json DATA=turbo_dpo_dataset OUT=out/wan_flow_dpo bash VideoDPO/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PROMPTS="${PROMPTS:-prompts.json}"
DATA="${DATA:-turbo_dpo_dataset}"
OUT="${OUT:-out/wan_flow_dpo}"
REWARD="${REWARD:-CodeGoat24/UnifiedReward-qwen-7b}"
NUM_GPUS="${NUM_GPUS:-1}"

shard_all() {  # run "$@" once per GPU with --shard i/NUM_GPUS, then once with --merge
    if [ "$NUM_GPUS" -le 1 ]; then "$@"; return; fi
    for i in $(seq 0 $((NUM_GPUS - 1))); do CUDA_VISIBLE_DEVICES=$i "$@" --shard "$i/$NUM_GPUS" & done
    wait
    "$@" --merge
}

shard_all python VideoDPO/data_generation.py --config VideoDPO/configs/wan_generate.yaml \
    --prompts_file "$PROMPTS" --output_dir "$DATA"
shard_all python VideoDPO/sift_dpo_data.py --config VideoDPO/configs/sift.yaml \
    --data_path "$DATA/data.json" --reward_model "$REWARD" --device_map cuda
NUM_GPUS="$NUM_GPUS" bash VideoDPO/launchers/wan_flow_dpo.sh --data_path "$DATA/dpo_data.json" --output_dir "$OUT"
python VideoDPO/inference.py --config VideoDPO/configs/wan_generate.yaml --trained "$OUT" --model recorded \
    --prompts_file "$PROMPTS" --output_dir "$OUT/videos" --num_videos 1
