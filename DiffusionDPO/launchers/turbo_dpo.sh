#!/usr/bin/env bash
# Upstream's SDXL-Turbo Diffusion-DPO recipe (protocol reference §5.2) on every visible GPU:
#   bash DiffusionDPO/launchers/turbo_dpo.sh [train.py flags]
# Settings: DiffusionDPO/configs/turbo_dpo.yaml; DeepSpeed / FSDP / multi-node: ACCELERATE_CONFIG=<file>.
RECIPE_CONFIG="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/configs/turbo_dpo.yaml"
source "$(dirname "${BASH_SOURCE[0]}")/_launch.sh"
