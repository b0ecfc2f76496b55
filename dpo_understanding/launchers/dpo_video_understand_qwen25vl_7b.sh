#!/usr/bin/env bash
# Video-understanding DPO of Qwen2.5-VL-7B with upstream's recipe (dpo_video_understand_llava_video_7b.sh, protocol §5.1):
# beta 0.1, lr 5e-7, 3 epochs, cosine, warmup 0.3, global batch 64, ZeRO-3 + offload. See _launch.sh for NNODES,
# NODE_RANK, MASTER_ADDR, MASTER_PORT, NPROC_PER_NODE, DEEPSPEED, GLOBAL_BATCH_SIZE, USE_CPU, CONFIG, PYTHON.
#
#   bash dpo_understanding/launchers/dpo_video_understand_qwen25vl_7b.sh --data_path pairs.json --video_folder videos/
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash dpo_understanding/launchers/dpo_video_understand_qwen25vl_7b.sh
#   USE_CPU=1 NPROC_PER_NODE=2 bash dpo_understanding/launchers/dpo_video_understand_qwen25vl_7b.sh \
#       --model_name_or_path runs/tiny-qwen --data_path pairs.json --video_folder media/ --output_dir runs/tiny-dpo
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RECIPE_CONFIG="${HERE}/../configs/video_qwen25vl_7b.yaml"
RECIPE_GLOBAL_BATCH=64
source "${HERE}/_launch.sh"
