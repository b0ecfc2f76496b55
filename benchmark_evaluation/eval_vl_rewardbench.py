"""VL-RewardBench: judge every pair, then write predictions, results.json, results.md and results.png.

Data: the hub dataset MMInstruction/VL-RewardBench (parquet), or the GitHub data.jsonl / UR's data.json with
their images.

Usage:
    python benchmark_evaluation/eval_vl_rewardbench.py --data data/VL-RewardBench --output_dir results/vl_rewardbench \
        --model CodeGoat24/UnifiedReward-qwen-7b --dtype bfloat16 --device_map auto --batch_size 16
    python benchmark_evaluation/eval_vl_rewardbench.py --config benchmark_evaluation/configs/vl_rewardbench.yaml
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
    return cli_main("vl_rewardbench", argv, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
