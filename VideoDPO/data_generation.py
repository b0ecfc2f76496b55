"""VideoDPO step 1: generate N videos per prompt with a diffusers video pipeline (Wan 2.1 / AnimateDiff), as mp4.

Prompts: a JSON list of {"prompt": "..."} (upstream's format), {"caption": ...} or strings.

Usage:
    python VideoDPO/data_generation.py --model Wan-AI/Wan2.1-T2V-1.3B-Diffusers --prompts_file prompts.json \
        --output_dir turbo_dpo_dataset --num_videos 10 --num_frames 33 --height 480 --width 832 --fps 16 \
        --num_inference_steps 30 --guidance_scale 5.0
    python VideoDPO/data_generation.py --config VideoDPO/configs/wan_generate.yaml
    # 4 GPUs: CUDA_VISIBLE_DEVICES=i ... --shard i/4 (i = 0..3, same --output_dir), then the same command with --merge

Writes <output_dir>/videos/<id>-<k>.mp4, data.jsonl (resume log) and data.json (every video's seed recorded).
Flags: `--help`; guide: docs/dpo.md (Video DPO).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from unifiedreward.dpo.video_generate import main as run


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the videos; returns the exit status."""
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
