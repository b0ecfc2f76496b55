"""VideoDPO step 2: sift the generated videos into DPO pairs with the video reward model -> dpo_data.json.

Usage:
    python VideoDPO/sift_dpo_data.py --data_path turbo_dpo_dataset/data.json \
        --reward_model CodeGoat24/UnifiedReward-qwen-7b --dtype bfloat16 --device_map auto --strategy upstream
    python VideoDPO/sift_dpo_data.py --config VideoDPO/configs/sift.yaml
    # a served reward model: --judge_base_url http://localhost:8080/v1 ; several GPUs: --shard i/n, then --merge

Writes <data dir>/dpo_data.json ({"caption", "chosen", "rejected", "chosen_score", "rejected_score", "evidence"}),
dpo_data.decisions.jsonl (resume log) and dpo_data.summary.json. Flags: `--help`; guide: docs/dpo.md (Video DPO).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from unifiedreward.dpo.video_sift import main as run


def main(argv: Sequence[str] | None = None) -> int:
    """Sift the videos; returns the exit status."""
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
