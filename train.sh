#!/usr/bin/env bash
# Reward-model SFT launcher: torchrun over nodes and GPUs, DeepSpeed ZeRO-2 by default.
#
#   bash train.sh                                        # scripts/configs/reward_qwen25vl_7b.yaml on every local GPU
#   bash train.sh --output_dir runs/x --learning_rate 1e-5   # extra flags go to `python -m unifiedreward.train`
#   DEEPSPEED=scripts/zero3.json bash train.sh           # ZeRO-3 (zero3_offload.json: + CPU offload; none: plain DDP)
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash train.sh   # on each node, NODE_RANK=0..NNODES-1
#   USE_CPU=1 bash train.sh --model_name_or_path runs/tiny --data_path data.json --output_dir runs/tiny-sft
#
# Environment (all optional):
#   NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), MASTER_PORT (29500),
#   NPROC_PER_NODE / GPUS_PER_NODE (number of visible GPUs; 1 on CPU),
#   CONFIG (scripts/configs/reward_qwen25vl_7b.yaml; on CPU scripts/configs/tiny_cpu.yaml),
#   DEEPSPEED (scripts/zero2.json; "none" disables it; never used on CPU), USE_CPU (1 forces the CPU path),
#   PYTHON (python).
#
# On a machine without CUDA (or with USE_CPU=1) the run uses torchrun + DDP over gloo with --use_cpu and no
# DeepSpeed: the Hugging Face Trainer cannot drive DeepSpeed on CPU. A --config or --deepspeed given on the command
# line overrides the one chosen here (the last occurrence of a flag wins).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python}"
export PYTHONPATH="${ROOT}${PYTHONPATH:+:${PYTHONPATH}}"

NNODES="${NNODES:-1}"
NODE_RANK="${NODE_RANK:-0}"
MASTER_ADDR="${MASTER_ADDR:-127.0.0.1}"
MASTER_PORT="${MASTER_PORT:-29500}"

if [[ "${USE_CPU:-0}" == "1" ]]; then
    NUM_GPUS=0
else
    NUM_GPUS="$("${PYTHON}" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)"
fi

EXTRA=()
if [[ "${NUM_GPUS}" == "0" ]]; then
    NPROC_PER_NODE="${NPROC_PER_NODE:-${GPUS_PER_NODE:-1}}"
    CONFIG="${CONFIG:-${ROOT}/scripts/configs/tiny_cpu.yaml}"
    EXTRA+=(--use_cpu true --ddp_backend gloo)
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    echo "train.sh: no CUDA device (or USE_CPU=1): ${NPROC_PER_NODE} CPU process(es) per node, gloo, no DeepSpeed" >&2
else
    NPROC_PER_NODE="${NPROC_PER_NODE:-${GPUS_PER_NODE:-${NUM_GPUS}}}"
    CONFIG="${CONFIG:-${ROOT}/scripts/configs/reward_qwen25vl_7b.yaml}"
    DEEPSPEED="${DEEPSPEED:-${ROOT}/scripts/zero2.json}"
    if [[ "${DEEPSPEED}" != "none" ]]; then
        EXTRA+=(--deepspeed "${DEEPSPEED}")
    fi
fi

set -x
exec "${PYTHON}" -m torch.distributed.run \
    --nnodes "${NNODES}" \
    --node_rank "${NODE_RANK}" \
    --master_addr "${MASTER_ADDR}" \
    --master_port "${MASTER_PORT}" \
    --nproc_per_node "${NPROC_PER_NODE}" \
    -m unifiedreward.train \
    --config "${CONFIG}" \
    ${EXTRA[@]+"${EXTRA[@]}"} \
    "$@"
