"""Generate K candidate images per prompt with a diffusers text-to-image pipeline (every seed recorded).

Data: a JSON list (or JSONL) of {"prompt": "..."} ("id" optional; extra keys are kept).

Usage:
    python DiffusionDPO/data_generation.py --config DiffusionDPO/configs/turbo_generate.yaml
    python DiffusionDPO/data_generation.py --data_path prompts.json --output_dir turbo_dpo_dataset \\
        --pretrained_model stabilityai/sdxl-turbo --variant fp16 --dtype float16 --num_images 10 \\
        --num_inference_steps 1 --guidance_scale 0
    # 8 GPUs: CUDA_VISIBLE_DEVICES=i ... --shard i/8 for i in 0..7, then the same command with --merge

Flags: `--help`; guide: docs/dpo.md (Diffusion DPO).
"""

from __future__ import annotations

import sys

from unifiedreward.dpo.diffusion_generate import main

if __name__ == "__main__":
    sys.exit(main())
