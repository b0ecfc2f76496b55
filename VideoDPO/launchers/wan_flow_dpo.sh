#!/usr/bin/env bash
# Flow-DPO on Wan 2.1 T2V 1.3B. Defaults: VideoDPO/configs/wan_flow_dpo.yaml (33 frames 480x832, LoRA r64, beta 500,
# logit-normal timesteps, bf16, gradient checkpointing, cached text embeddings + latents, effective batch 16 pairs
# per GPU). One GPU: NUM_GPUS=1 (~40 GB peak, docs/dpo.md "memory plan"); N GPUs: data-parallel, same config.
# Extra flags are passed on, e.g.  bash VideoDPO/launchers/wan_flow_dpo.sh --max_train_steps 200 --report_to wandb
set -euo pipefail
cd "$(dirname "$0")/../.."
NUM_GPUS="${NUM_GPUS:-1}"
accelerate launch --num_processes "$NUM_GPUS" --mixed_precision bf16 \
    VideoDPO/train.py --config VideoDPO/configs/wan_flow_dpo.yaml "$@"
