#!/usr/bin/env bash
# Shared body of the DiffusionDPO launchers (sourced; not run directly): `accelerate launch` of train.py on one YAML.
#
# Input from the calling launcher: RECIPE_CONFIG (the YAML). Environment (all optional):
#   CONFIG (RECIPE_CONFIG), NUM_PROCESSES (visible GPUs; 1 without CUDA), ACCELERATE_CONFIG (an accelerate config
#   file for DeepSpeed / FSDP / several nodes; without it: DDP over NUM_PROCESSES on this machine),
#   MAIN_PROCESS_PORT (29501), PYTHON (python).
# Flags after the launcher's name go to train.py and override the YAML.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-python}"
CONFIG="${CONFIG:-${RECIPE_CONFIG}}"
NUM_GPUS="$("${PYTHON}" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)"
NUM_PROCESSES="${NUM_PROCESSES:-$(( NUM_GPUS > 0 ? NUM_GPUS : 1 ))}"

LAUNCH=("${PYTHON}" -m accelerate.commands.launch --main_process_port "${MAIN_PROCESS_PORT:-29501}")
if [[ -n "${ACCELERATE_CONFIG:-}" ]]; then
    LAUNCH+=(--config_file "${ACCELERATE_CONFIG}")
else
    LAUNCH+=(--num_processes "${NUM_PROCESSES}" --num_machines 1 --dynamo_backend no)
    if [[ "${NUM_GPUS}" == "0" ]]; then
        LAUNCH+=(--cpu)                    # several CPU processes: DDP over gloo
    elif (( NUM_PROCESSES > 1 )); then
        LAUNCH+=(--multi_gpu)
    fi
fi

set -x
exec "${LAUNCH[@]}" "${ROOT}/DiffusionDPO/train.py" --config "${CONFIG}" "$@"
