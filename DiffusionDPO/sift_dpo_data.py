"""Sift generated image sets into Diffusion-DPO pairs with the reward model (dpo_data.json + images_dpo/).

Usage:
    python DiffusionDPO/sift_dpo_data.py --config DiffusionDPO/configs/turbo_sift.yaml
    python DiffusionDPO/sift_dpo_data.py --data_dir turbo_dpo_dataset --reward_model CodeGoat24/UnifiedReward-qwen-7b \\
        --dtype bfloat16 --device_map auto            # --strategy tournament | pointwise
    # a vLLM server instead: --judge_base_url http://localhost:8080/v1 --judge_model UnifiedReward

Flags: `--help`; guide: docs/dpo.md (Diffusion DPO).
"""

from __future__ import annotations

import sys

from unifiedreward.dpo.diffusion_sift import main

if __name__ == "__main__":
    sys.exit(main())
