#!/usr/bin/env bash
# Flow-DPO with LoRA on SD3.5 Medium on every visible GPU:
#   bash DiffusionDPO/launchers/sd35_flow_dpo.sh [train.py flags]
# Settings: DiffusionDPO/configs/sd35_flow_dpo.yaml; DeepSpeed / FSDP / multi-node: ACCELERATE_CONFIG=<file>.
RECIPE_CONFIG="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/configs/sd35_flow_dpo.yaml"
source "$(dirname "${BASH_SOURCE[0]}")/_launch.sh"
