"""Video-understanding DPO data: sample answers from a policy VLM, sift them with the reward model, write pairs.

Data: a JSON list (or JSONL) of {"prompt": "question", "video": "clip.mp4" | "frame_folder" | ["f0.jpg", ...]};
upstream's {"prompt", "image": [frame files]} works too (extra keys are kept).

Usage:
    python "preference_data_construction/video_understanding/infer+sift.py" --data_path data.json \
        --video_folder videos --policy Qwen/Qwen2.5-VL-7B-Instruct --reward_model CodeGoat24/UnifiedReward-qwen-7b \
        --output_path out/preference_data_pair.json --num_frames 8 --dtype bfloat16 --device_map auto
    python "preference_data_construction/video_understanding/infer+sift.py" \
        --config preference_data_construction/configs/video_understanding.yaml
    # servers instead: --policy_base_url http://localhost:8000/v1 --judge_base_url http://localhost:8080/v1
    # 4 GPUs: --shard 0/4 ... --shard 3/4 (same --output_path), then the same command with --merge

Flags: `--help`; guide: docs/preference.md.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from unifiedreward.preference.pipeline import main as run


def main(argv: Sequence[str] | None = None) -> int:
    """Build the pairs; returns the exit status."""
    return run(argv, task="video_understanding")


if __name__ == "__main__":
    sys.exit(main())
