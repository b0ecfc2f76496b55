#!/usr/bin/env bash
# Shared body of the dpo_understanding launchers (sourced by them; not run directly): torchrun over nodes and GPUs
# with DeepSpeed ZeRO-3 + CPU offload by default, exactly as train.sh launches SFT.
#
# Inputs from the calling launcher: RECIPE_CONFIG (the GPU YAML), RECIPE_GLOBAL_BATCH (upstream's global batch).
# Environment (all optional):
#   NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), MASTER_PORT (29500),
#   NPROC_PER_NODE / GPUS_PER_NODE (number of visible GPUs; 1 on CPU),
#   CONFIG (RECIPE_CONFIG; on CPU dpo_understanding/configs/tiny_cpu.yaml),
#   DEEPSPEED (scripts/zero3_offload.json as upstream; scripts/zero2.json, scripts/zero3.json, or "none" for DDP;
#   never used on CPU), USE_CPU (1 forces the CPU path), PYTHON (python),
#   GLOBAL_BATCH_SIZE (RECIPE_GLOBAL_BATCH on GPU): per-device batch 1, gradient accumulation =
#   GLOBAL_BATCH_SIZE / (NNODES x NPROC_PER_NODE) (it must divide); "none" keeps the config's accumulation.
# On a machine without CUDA (or with USE_CPU=1): torchrun + DDP over gloo with --use_cpu, no DeepSpeed (the Hugging
# Face Trainer cannot drive DeepSpeed on CPU), and GLOBAL_BATCH_SIZE defaults to "none". Flags after the script
# name go to train_dpo.py and override everything above (the last occurrence of a flag wins).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
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
    CONFIG="${CONFIG:-${ROOT}/dpo_understanding/configs/tiny_cpu.yaml}"
    GLOBAL_BATCH_SIZE="${GLOBAL_BATCH_SIZE:-none}"
    EXTRA+=(--use_cpu true --ddp_backend gloo)
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    echo "dpo launcher: no CUDA device (or USE_CPU=1): ${NPROC_PER_NODE} CPU process(es) per node, gloo, no DeepSpeed" >&2
else
    NPROC_PER_NODE="${NPROC_PER_NODE:-${GPUS_PER_NODE:-${NUM_GPUS}}}"
    CONFIG="${CONFIG:-${RECIPE_CONFIG}}"
    GLOBAL_BATCH_SIZE="${GLOBAL_BATCH_SIZE:-${RECIPE_GLOBAL_BATCH}}"
    DEEPSPEED="${DEEPSPEED:-${ROOT}/scripts/zero3_offload.json}"
    if [[ "${DEEPSPEED}" != "none" ]]; then
        EXTRA+=(--deepspeed "${DEEPSPEED}")
    fi
fi

if [[ "${GLOBAL_BATCH_SIZE}" != "none" ]]; then
    WORLD=$((NNODES * NPROC_PER_NODE))
    if (( GLOBAL_BATCH_SIZE % WORLD != 0 )); then
        echo "dpo launcher: GLOBAL_BATCH_SIZE=${GLOBAL_BATCH_SIZE} is not a multiple of ${WORLD} processes" >&2
        exit 2
    fi
    EXTRA+=(--per_device_train_batch_size 1 --gradient_accumulation_steps $((GLOBAL_BATCH_SIZE / WORLD)))
fi

set -x
exec "${PYTHON}" -m torch.distributed.run \
    --nnodes "${NNODES}" \
    --node_rank "${NODE_RANK}" \
    --master_addr "${MASTER_ADDR}" \
    --master_port "${MASTER_PORT}" \
    --nproc_per_node "${NPROC_PER_NODE}" \
    "${ROOT}/dpo_understanding/train_dpo.py" \
    --config "${CONFIG}" \
    ${EXTRA[@]+"${EXTRA[@]}"} \
    "$@"
