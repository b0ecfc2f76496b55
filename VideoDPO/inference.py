"""VideoDPO step 4: sample prompts with the trained model (LoRA or full weights from VideoDPO/train.py), as mp4.

Usage:
    python VideoDPO/inference.py --trained out/wan_flow_dpo --model recorded --prompts_file prompts.json \
        --output_dir out/wan_flow_dpo/videos --num_videos 1 --num_frames 33 --height 480 --width 832 --fps 16 \
        --num_inference_steps 30 --guidance_scale 5.0

`--model recorded` uses the base pipeline written in <trained>/dpo_training.json; any other value replaces it.
Per-video seeds are the same as data_generation.py's for the same --seed (before/after comparisons line up).
Flags: `--help` (those of data_generation.py plus --trained); guide: docs/dpo.md (Video DPO).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from unifiedreward.dpo.video_inference import main as run


def main(argv: Sequence[str] | None = None) -> int:
    """Sample; returns the exit status."""
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
