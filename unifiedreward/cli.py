"""The ``unifiedreward`` console script: one entry point, one subcommand per job.

    unifiedreward judge --input requests.jsonl --output results.jsonl --model CodeGoat24/UnifiedReward-qwen-7b
    unifiedreward eval vl_rewardbench --data data/VL-RewardBench --output_dir results/vlrb --model ...
    unifiedreward train --config scripts/configs/reward_qwen25vl_7b.yaml
    unifiedreward demo
    python -m unifiedreward judge --help

Each subcommand is a module with a ``main(argv) -> int``; it is imported only when run, so ``unifiedreward --help``
stays fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

#: subcommand -> (module with ``main(argv)``, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "judge": ("unifiedreward.judge.cli", "judge a JSONL file of requests with a reward model (resumable, shardable)"),
    "eval": ("unifiedreward.eval.runner", "evaluate on a reward benchmark: eval {genai_bench_image,...} [flags]"),
    "train": ("unifiedreward.train", "supervised fine-tuning of a reward model (see also train.sh)"),
    "demo": ("unifiedreward.demo", "train a tiny reward model from scratch on a synthetic world, evaluate it (CPU)"),
}


def usage() -> str:
    """The top-level help text."""
    width = max(len(name) for name in COMMANDS)
    listed = "\n".join(f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items())
    return (
        "usage: unifiedreward <command> [flags]\n\n"
        f"commands:\n{listed}\n\n"
        "`unifiedreward <command> --help` lists a command's flags; every command also takes --config file.yaml."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a subcommand. Returns its exit status (2 for a missing or unknown command)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(usage(), file=sys.stderr)
        return 2
    command, rest = args[0], args[1:]
    if command in ("-h", "--help", "help"):
        print(usage())
        return 0
    if command in ("-V", "--version"):
        from unifiedreward import __version__

        print(f"unifiedreward {__version__}")
        return 0
    if command not in COMMANDS:
        print(f"unifiedreward: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
