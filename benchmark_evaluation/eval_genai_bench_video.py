"""GenAI-Bench, video generation: judge every pair, then write predictions, results.json, results.md and results.png.

Data: the hub dataset TIGER-Lab/GenAI-Bench (its video_generation/ folder) with the videos in --media_root, or
UnifiedReward-Think's GenAI-Bench-Video/data.json with its videos/ folder.

Usage:
    python benchmark_evaluation/eval_genai_bench_video.py --data data/GenAI-Bench --output_dir results/genai_bench_video \
        --model CodeGoat24/UnifiedReward-qwen-7b --dtype bfloat16 --device_map auto --batch_size 16
    python benchmark_evaluation/eval_genai_bench_video.py --config benchmark_evaluation/configs/genai_bench_video.yaml
    # a vLLM server instead: --backend openai --base_url http://localhost:8080/v1 --model UnifiedReward
    # 4 processes: --shard 0/4 ... --shard 3/4 (same --output_dir), then the same command with --merge

Flags: `--help`; guide: docs/evaluation.md.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from unifiedreward.eval.runner import cli_main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation; returns the exit status."""
    return cli_main("genai_bench_video", argv, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
