"""Video QA (MSRVTT-QA, MSVD-QA, TGIF-QA): answer with a policy VLM, grade with an LLM judge, report accuracy/score.

Data: the question files as UnifiedReward's DPO_eval ships them, with the videos in <data_dir>/videos (layouts in
docs/evaluation.md). The judge is any OpenAI-compatible endpoint: --judge_base_url / --judge_model / --judge_api_key,
or $OPENAI_BASE_URL / $OPENAI_MODEL / $OPENAI_API_KEY (upstream: gpt-3.5-turbo-1106).

Usage:
    python benchmark_evaluation/eval_video_qa.py --dataset msvd --data_dir data/MSVD-QA --output_dir results/msvd \
        --model path/to/LLaVA-Video-7B-Qwen2-UnifiedReward-DPO --dtype bfloat16 --device_map auto --num_frames 32
    python benchmark_evaluation/eval_video_qa.py --config benchmark_evaluation/configs/video_qa.yaml
    # answer now, grade later: --stage answer, then --stage grade (both resume by question id)

Flags: `--help`; guide: docs/evaluation.md.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from unifiedreward.eval.videoqa import main as videoqa_main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation; returns the exit status."""
    return videoqa_main(argv, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
