"""Diffusion-DPO (SD 1.5 / SDXL / SDXL-Turbo UNets) and Flow-DPO (SD3 / SD3.5) on dpo_data.json pairs.

Usage:
    bash DiffusionDPO/launchers/turbo_dpo.sh            # upstream's SDXL-Turbo recipe, accelerate over all GPUs
    bash DiffusionDPO/launchers/sd35_flow_dpo.sh        # Flow-DPO with LoRA on SD3.5 Medium
    accelerate launch DiffusionDPO/train.py --config DiffusionDPO/configs/turbo_dpo.yaml --max_train_steps 40
    python DiffusionDPO/train.py --config DiffusionDPO/configs/tiny_cpu.yaml   # one process

Flags: `--help`; guide: docs/dpo.md (Diffusion DPO).
"""

from __future__ import annotations

import sys

from unifiedreward.dpo.diffusion_train import main

if __name__ == "__main__":
    sys.exit(main())
