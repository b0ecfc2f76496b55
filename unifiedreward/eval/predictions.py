"""Prediction records and the settings they were made with: what one judged item looks like on disk.

A prediction line's fields are listed in ``docs/evaluation.md`` (section 4). Files are written and resumed by
:func:`unifiedreward.io.run_resumable`; records with ``status`` :data:`~unifiedreward.eval.types.MEDIA_ERROR` count as
failed (:func:`is_media_error`) and are judged again on the next run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from unifiedreward.eval.arguments import BackendArguments, EvalArguments
from unifiedreward.eval.data import media_root
from unifiedreward.eval.types import MEDIA_ERROR, Benchmark, Item
from unifiedreward.io import shard_path, to_jsonable
from unifiedreward.protocol import PairwiseResult, Verdict

__all__ = [
    "CHECKED_SETTINGS",
    "PREDICTIONS",
    "SETTINGS",
    "is_media_error",
    "prediction_record",
    "predictions_path",
    "result_margin",
    "run_settings",
]

PREDICTIONS = "predictions.jsonl"
#: One settings file per output folder, shared by the shards of a run (checked with ``unifiedreward.io``).
SETTINGS = "settings.json"

#: Settings that must be equal for predictions to be appended to (or merged with) an existing run; the others in
#: ``settings.json`` are informational (updated when they change, e.g. ``limit``).
CHECKED_SETTINGS: tuple[str, ...] = (
    "benchmark", "data_files", "split", "backend", "model", "family", "version", "template", "order", "seed",
    "scoring", "max_new_tokens", "num_frames", "video_fps", "max_pixels",
)  # fmt: skip


def predictions_path(output_dir: str | os.PathLike, shard: tuple[int, int] | None = None) -> Path:
    """``predictions.jsonl``, or ``predictions.shard-<i>-of-<n>.jsonl`` for a shard
    (:func:`~unifiedreward.io.shard_path`)."""
    return shard_path(Path(output_dir) / PREDICTIONS, shard)


def is_media_error(record: Mapping[str, Any]) -> bool:
    """Whether a prediction failed because its media could not be read (it is judged again on the next run)."""
    return record.get("status") == MEDIA_ERROR


def result_margin(result: PairwiseResult) -> float | None:
    """P(first) - P(second) when the judge scored probabilities, else +1 / 0 / -1 from the verdict (or ``None``)."""
    if result.probabilities:
        probs = {getattr(k, "value", k): v for k, v in result.probabilities.items()}
        return float(probs.get("first", 0.0)) - float(probs.get("second", 0.0))
    if result.verdict is None:
        return None
    return {Verdict.FIRST: 1.0, Verdict.SECOND: -1.0, Verdict.TIE: 0.0}[result.verdict]


def prediction_record(
    bench: Benchmark, item: Item, template: str | None, result: PairwiseResult | None, order: str, error: str | None
) -> dict[str, Any]:
    """The prediction line of one item (see the module docstring for the fields)."""
    record: dict[str, Any] = {
        "id": item.id,
        "gold": item.gold,
        "gold_pref": item.gold_pref,
        "category": item.category,
        "labels": to_jsonable(item.labels) if item.labels else None,
    }
    if result is None:
        record.update(status=MEDIA_ERROR, verdict=None, margin=None, swapped=None, shown_order=None, consistent=None,
                      reason=error, raw="", template=template)  # fmt: skip
        return record
    data = to_jsonable(result)
    swapped = bool(data.pop("swapped", False))
    if order == "both":
        shown: Any = "both"
    else:
        shown = list(bench.candidates[::-1] if swapped else bench.candidates)
    record.update(
        status=result.status,
        verdict=data.pop("verdict", None),
        margin=result_margin(result),
        swapped=swapped,
        shown_order=shown,
        consistent=data.pop("consistent", None),
        reason=data.pop("reason", None),
        raw=data.pop("raw", ""),
        template=template,
    )
    for key, value in data.items():
        record.setdefault(key, value)
    return record


def run_settings(
    bench: Benchmark, args: EvalArguments, backend_args: BackendArguments, family: str, template: str | None,
    backend_name: str, files: Sequence[Path], split: str | None,
) -> dict[str, Any]:  # fmt: skip
    """The settings that define a run's predictions (``settings.json``; checked when resuming or merging)."""
    model = backend_args.model
    if backend_args.backend == "openai" and not model:
        model = "UnifiedReward"
    return {
        "benchmark": bench.name,
        "data_files": [str(p.resolve()) for p in files],
        "split": split,
        "media_root": str(media_root(args).resolve()),
        "backend": backend_name,
        "model": model,
        "base_url": backend_args.base_url if backend_args.backend == "openai" else None,
        "family": family,
        "version": backend_args.version,
        "template": template,
        "order": args.order,
        "seed": args.seed,
        "scoring": args.scoring,
        "max_new_tokens": backend_args.max_new_tokens,
        "temperature": 0.0,
        "num_frames": args.num_frames if bench.media_kind == "video" else None,
        "video_fps": args.video_fps if bench.media_kind == "video" else None,
        "max_pixels": args.max_pixels,
        "limit": args.limit,
    }
