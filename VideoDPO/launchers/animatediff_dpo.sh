#!/usr/bin/env bash
# Diffusion-DPO on AnimateDiff (SD 1.5 + motion adapter v1-5-2). Defaults: VideoDPO/configs/animatediff_dpo.yaml
# (16 frames 320x512, full fine-tuning against a frozen copy, beta 5000, lr 2e-5 constant, caption dropout 0.2 as
# upstream; effective batch 16 pairs per GPU). Add --lora_rank 64 for LoRA with the LoRA-disabled reference.
set -euo pipefail
cd "$(dirname "$0")/../.."
NUM_GPUS="${NUM_GPUS:-1}"
accelerate launch --num_processes "$NUM_GPUS" --mixed_precision bf16 \
    VideoDPO/train.py --config VideoDPO/configs/animatediff_dpo.yaml "$@"
