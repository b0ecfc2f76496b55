"""Flags of the benchmark runner (:class:`EvalArguments`; the backend flags are the judge CLI's) and their checks."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from unifiedreward.judge.arguments import BACKENDS, FAMILIES, ORDERS, SCORINGS, BackendArguments, JudgeArguments
from unifiedreward.protocol import VERSIONS

__all__ = ["BackendArguments", "EvalArguments", "check_args", "judge_arguments"]


@dataclass
class EvalArguments:
    """What to evaluate and where to write it (every field is a ``--flag``; ``--config file.yaml`` sets defaults)."""

    data: str = field(
        metadata={
            "help": "The benchmark as downloaded from the hub: a folder (a hub snapshot; the file of --split is "
            "found in it) or one data file (.parquet, .jsonl, .json or .csv). See docs/evaluation.md."
        }
    )
    output_dir: str = field(
        metadata={"help": "Folder for predictions (resumed if present), results.json, results.md and results.png."}
    )
    media_root: str | None = field(
        default=None,
        metadata={
            "help": "Folder that relative (or URL) media paths in the data are looked up in. Default: --data if it "
            "is a folder, else the data file's folder."
        },
    )
    split: str | None = field(
        default=None,
        metadata={"help": "Split to evaluate (the hub file name prefix, e.g. test_v1). Default: the benchmark's."},
    )
    limit: int | None = field(
        default=None, metadata={"help": "Evaluate only the first N items of the split (in file order)."}
    )
    order: str = field(
        default="random",
        metadata={
            "help": "Order the two candidates are shown in: random (a seeded coin flip per item id, recorded per "
            "prediction), both (judge both orders; disagreements are 'inconsistent') or as_given.",
            "choices": list(ORDERS),
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of --order random."})
    scoring: str = field(
        default="generate",
        metadata={
            "help": "generate (parse the answer text, as upstream) or probabilities (score the template's answer "
            "sentences from the logits; enables margin-based tie calibration; transformers backend only).",
            "choices": list(SCORINGS),
        },
    )
    shard: str | None = field(
        default=None,
        metadata={"help": "'i/n': judge only the items whose position is i modulo n (then run --merge)."},
    )
    merge: bool = field(
        default=False,
        metadata={
            "help": "Join the shard prediction files in --output_dir (predictions.shard-*-of-N.jsonl) into "
            "predictions.jsonl and write the results; no judging."
        },
    )
    chunk_size: int = field(
        default=32, metadata={"help": "Items judged and written together; a killed run loses at most one chunk."}
    )
    overwrite: bool = field(
        default=False,
        metadata={"help": "Delete existing predictions (of this shard) and settings and start over."},
    )
    num_frames: int = field(default=8, metadata={"help": "Frames sampled uniformly per video."})
    video_fps: float | None = field(
        default=None, metadata={"help": "Sample videos at this frame rate, capped at --num_frames."}
    )
    max_pixels: int | None = field(
        default=None, metadata={"help": "Downsize images and video frames to at most this many pixels."}
    )
    num_workers: int = field(
        default=4, metadata={"help": "Threads decoding media (the next chunk is decoded while one is judged)."}
    )
    cache_dir: str | None = field(
        default=None,
        metadata={"help": "Cache folder of the `datasets` library for parquet data. Default: its usual cache."},
    )
    plot: bool = field(default=True, metadata={"help": "Write results.png (matplotlib)."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar over items (stderr)."})


def judge_arguments(args: EvalArguments, backend_args: BackendArguments) -> JudgeArguments:
    """The ``unifiedreward judge`` arguments equivalent to these flags, for the judge CLI's backend helpers."""
    values = {f.name: getattr(backend_args, f.name) for f in dataclasses.fields(BackendArguments)}
    return JudgeArguments(
        input="<benchmark>",
        output="<predictions>",
        order=args.order,
        seed=args.seed,
        scoring=args.scoring,
        num_frames=args.num_frames,
        video_fps=args.video_fps,
        max_pixels=args.max_pixels,
        num_workers=args.num_workers,
        progress=args.progress,
        **values,
    )


def check_args(args: EvalArguments, backend_args: BackendArguments, *, injected: bool) -> None:
    """Raise ``ValueError`` with the flag's rule for the first invalid flag (``injected``: a ready backend)."""
    checks = [
        (args.order in ORDERS, f"--order must be one of {ORDERS}"),
        (args.scoring in SCORINGS, f"--scoring must be one of {SCORINGS}"),
        (args.chunk_size >= 1, "--chunk_size must be >= 1"),
        (args.num_frames >= 1, "--num_frames must be >= 1"),
        (args.num_workers >= 0, "--num_workers must be >= 0"),
        (args.limit is None or args.limit >= 1, "--limit must be >= 1"),
        (backend_args.backend in BACKENDS, f"--backend must be one of {BACKENDS}"),
        (backend_args.batch_size >= 1, "--batch_size must be >= 1"),
        (backend_args.max_new_tokens >= 1, "--max_new_tokens must be >= 1"),
        (backend_args.family in (None, *FAMILIES), f"--family must be one of {FAMILIES}"),
        (backend_args.version in VERSIONS, f"--version must be one of {VERSIONS}"),
        (injected or args.merge or backend_args.backend != "transformers" or bool(backend_args.model),
         "--model is required with --backend transformers"),
        (not (args.merge and args.shard), "--merge joins all shards: do not pass --shard with it"),
        (not (args.scoring == "probabilities" and backend_args.backend == "openai" and not injected),
         "--scoring probabilities needs the transformers backend (a server only returns text)"),
    ]  # fmt: skip
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
