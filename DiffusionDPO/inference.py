"""Sample images from a Diffusion-DPO / Flow-DPO result (full weights or LoRA on the recorded base pipeline).

Usage:
    python DiffusionDPO/inference.py --trained outputs/turbo-dpo --output_dir outputs/turbo-dpo/samples \\
        --prompts "a red cube on a table" "two cats" --num_inference_steps 4 --guidance_scale 0 --dtype float16

Flags: `--help`; guide: docs/dpo.md (Diffusion DPO).
"""

from __future__ import annotations

import sys

from unifiedreward.dpo.diffusion_inference import main

if __name__ == "__main__":
    sys.exit(main())
