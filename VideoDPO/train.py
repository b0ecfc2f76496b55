"""VideoDPO step 3: Flow-DPO (Wan 2.1) / Diffusion-DPO (AnimateDiff) on dpo_data.json.

Usage:
    accelerate launch VideoDPO/train.py --config VideoDPO/configs/wan_flow_dpo.yaml
    accelerate launch --num_processes 4 VideoDPO/train.py --config VideoDPO/configs/animatediff_dpo.yaml
    python VideoDPO/train.py --model <pipeline> --data_path turbo_dpo_dataset/dpo_data.json --output_dir out ...

Resumes from the newest <output_dir>/checkpoint-<step> by default. Flags: `--help`; guide: docs/dpo.md (Video DPO).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from unifiedreward.dpo.video_train import main as run


def main(argv: Sequence[str] | None = None) -> int:
    """Train; returns the exit status."""
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
