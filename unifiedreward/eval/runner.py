"""The shared benchmark runner: load a reward benchmark from local files, judge it, score it, report it.

One runner serves every pairwise reward benchmark (GenAI-Bench image and video, VideoGen-RewardBench,
VL-RewardBench); a benchmark is a small module in :mod:`unifiedreward.eval.benchmarks` that only knows its data
format. This module holds the run / resume / shard / merge orchestration and the CLI; the pieces live beside it:

* :mod:`~unifiedreward.eval.types`: :class:`Benchmark`, :class:`Item`, :class:`Table`, ...
* :mod:`~unifiedreward.eval.arguments`: :class:`EvalArguments` (``--flags``) and their checks.
* :mod:`~unifiedreward.eval.data`: finding and reading the benchmark's files, decoding media.
* :mod:`~unifiedreward.eval.predictions`: prediction records, ``settings.json``.
* :mod:`~unifiedreward.eval.scoring`: the metric set of each benchmark (over :mod:`unifiedreward.eval.metrics`).
* :mod:`~unifiedreward.eval.report`: ``results.json``, ``results.md``, ``results.png``.

What a run does, the output folder, the prediction fields and what every metric means: ``docs/evaluation.md``.
Entry points: ``benchmark_evaluation/eval_<benchmark>.py``, ``python -m unifiedreward.eval.runner <benchmark>
[flags]``, or :func:`run_benchmark` from Python.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from unifiedreward.errors import DataError, UnifiedRewardError
from unifiedreward.eval.arguments import BackendArguments, EvalArguments, check_args, judge_arguments
from unifiedreward.eval.data import (
    find_data_files,
    load_item_media,
    load_items,
    load_media,
    media_root,
    read_table,
    resolve_data,
)
from unifiedreward.eval.predictions import (
    CHECKED_SETTINGS,
    SETTINGS,
    is_media_error,
    prediction_record,
    predictions_path,
    run_settings,
)
from unifiedreward.eval.report import format_results, write_reports
from unifiedreward.eval.scoring import METRIC_DEFINITIONS, compute_metrics
from unifiedreward.eval.types import Benchmark, Cell, Item, MetricGroup, PublishedRow, Table
from unifiedreward.io import (
    check_settings,
    id_key,
    merge_jsonl,
    parse_shard,
    read_json,
    read_jsonl,
    run_resumable,
    select_shard,
)

logger = logging.getLogger(__name__)

__all__ = [
    "BackendArguments",
    "Benchmark",
    "Cell",
    "EvalArguments",
    "Item",
    "MetricGroup",
    "PublishedRow",
    "Table",
    "cli_main",
    "compute_metrics",
    "find_data_files",
    "load_items",
    "load_media",
    "main",
    "media_root",
    "merge_predictions",
    "predictions_path",
    "read_table",
    "run_benchmark",
    "write_reports",
]


# ---------------------------------------------------------------------------------------------------------- judging
def _build_judge(args: EvalArguments, backend_args: BackendArguments, backend: Any, family: str) -> Any:
    """The :class:`~unifiedreward.judge.judge.RewardJudge` of these flags over ``backend`` (greedy, seeded order)."""
    from unifiedreward.judge.base import GenerationConfig
    from unifiedreward.judge.judge import RewardJudge

    return RewardJudge(
        backend,
        family=family,
        version=backend_args.version,
        generation=GenerationConfig(max_new_tokens=backend_args.max_new_tokens),
        order=args.order,
        seed=args.seed,
        scoring=args.scoring,
    )


def _judge_chunk(
    judge: Any, bench: Benchmark, chunk: Sequence[Item], loaded: Sequence[tuple[list[Any], str | None]], order: str
) -> list[dict[str, Any]]:
    """The prediction records of one chunk (``process`` of :func:`unifiedreward.io.run_resumable`).

    ``loaded[j]`` is ``(media, error)`` of ``chunk[j]`` (:func:`~unifiedreward.eval.data.load_item_media`); items
    whose media failed are recorded as media errors without being judged.
    """
    from unifiedreward.judge.judge import JudgeRequest

    requests, live = [], []
    for position, (item, (media, error)) in enumerate(zip(chunk, loaded, strict=True)):
        if error is None:
            live.append(position)
            images, videos = (media, []) if bench.media_kind == "image" else ([], media)
            requests.append(JudgeRequest(bench.task, bench.mode, images=images, videos=videos,
                                         fields=dict(item.fields), id=item.id))  # fmt: skip
    results = judge.judge(requests) if requests else []
    if len(results) != len(requests):
        raise UnifiedRewardError(f"the judge returned {len(results)} results for {len(requests)} requests")
    template = judge.template_for(requests[0]).id if requests else None
    by_position = dict(zip(live, results, strict=True))
    lines = []
    for position, item in enumerate(chunk):
        result = by_position.get(position)
        lines.append(prediction_record(bench, item, template, result, order, loaded[position][1]))
        if result is None:
            logger.warning("item %s: %s", item.id, loaded[position][1])
    return lines


def run_benchmark(
    benchmark: Benchmark | str,
    args: EvalArguments,
    backend_args: BackendArguments | None = None,
    *,
    backend: Any = None,
) -> dict[str, Any] | None:
    """Evaluate a benchmark: judge the pending items, then (unless sharded) score and report.

    Predictions are written and resumed by :func:`unifiedreward.io.run_resumable` (``--chunk_size`` items per append;
    the media of the next chunk decoded while one is judged); predictions whose media could not be read are judged
    again. ``settings.json`` (shared by the shards) is checked on
    :data:`~unifiedreward.eval.predictions.CHECKED_SETTINGS`.

    Args:
        benchmark: a :class:`Benchmark` or its registry name.
        args: what to evaluate and where.
        backend_args: the backend flags (default: :class:`BackendArguments` defaults).
        backend: a ready :class:`~unifiedreward.judge.base.Backend` to use instead of building one (tests, or a
            caller holding a loaded model); its family is ``--family``, else its model's, else ``"qwen"``.

    Returns:
        The results (as written to ``results.json``), or ``None`` for a ``--shard`` run (run ``--merge`` after the
        last shard).

    Raises:
        DataError: the benchmark files are missing or malformed, or existing predictions are corrupt or belong to
            another run.
        SettingsError: existing predictions were made with other settings (a :class:`DataError`).
        ValueError: invalid flags.
        UnifiedRewardError: the model cannot be loaded or the server is not usable.
    """
    from unifiedreward.eval.benchmarks import get_benchmark
    from unifiedreward.judge.arguments import build_backend, resolve_family

    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    backend_args = backend_args or BackendArguments()
    check_args(args, backend_args, injected=backend is not None)
    if args.merge:
        return merge_predictions(bench, args)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    shard = parse_shard(args.shard)
    files, split = resolve_data(bench, args)
    items = load_items(bench, args)
    mine = items if shard is None else select_shard(items, *shard)
    path = predictions_path(output_dir, shard)
    if args.overwrite:
        others = [p for p in output_dir.glob("predictions*.jsonl") if p != path]
        # settings.json is shared by the shards: it goes only with the last predictions file
        for stale in (path,) if others else (path, output_dir / SETTINGS):
            if stale.exists():
                logger.info("--overwrite: deleting %s", stale)
                stale.unlink()

    judge_args = judge_arguments(args, backend_args)
    family = resolve_family(judge_args, backend)
    backend_name = backend_args.backend if backend is None else type(backend).__name__
    if not family:  # the checkpoint's config could not be read: load the model to find out
        backend = build_backend(judge_args)
        from unifiedreward.modeling import model_family

        family = model_family(backend.model)
    from unifiedreward.protocol import select_template

    template = select_template(bench.task, bench.mode, family, backend_args.version).id
    settings = run_settings(bench, args, backend_args, family, template, backend_name, files, split)
    check_settings(output_dir / SETTINGS, settings, fresh=False, keys=CHECKED_SETTINGS)
    logger.info(
        "%s: %d item(s)%s into %s; template %s, order=%s%s, scoring=%s",
        bench.name, len(mine), f" in shard {args.shard}" if shard else "", path, template, args.order,
        f" (seed {args.seed}: a coin flip per item id, recorded as 'swapped')" if args.order == "random" else "",
        args.scoring,
    )  # fmt: skip

    judge: Any = None
    root = media_root(args)

    def setup(pending: Sequence[Item]) -> None:  # only when something is left to judge
        nonlocal backend, judge
        if backend is None:
            backend = build_backend(judge_args)
        judge = _build_judge(args, backend_args, backend, family)

    run_resumable(
        mine,
        key=lambda item: id_key(item.id),
        output=path,
        process=lambda chunk, loaded: _judge_chunk(judge, bench, chunk, loaded, args.order),
        load=lambda item: load_item_media(item, bench.media_kind, root, args),
        setup=setup,
        chunk_size=args.chunk_size,
        num_workers=args.num_workers,
        retry_failed=True,
        is_failed=is_media_error,
        desc=bench.name,
        progress=args.progress,
    )
    records = read_jsonl(path)
    swapped = sum(1 for r in records if r.get("swapped"))
    logger.info("%s: %d of %d prediction(s) were shown swapped", path, swapped, len(records))
    if shard is not None:
        logger.info("shard %s done: %s; after every shard, run again with --merge", args.shard, path)
        return None
    return _finish(bench, args, items, records, settings, [path])


def merge_predictions(bench: Benchmark, args: EvalArguments) -> dict[str, Any]:
    """Join ``predictions.shard-*-of-N.jsonl`` in ``--output_dir`` into ``predictions.jsonl`` (benchmark order,
    :func:`unifiedreward.io.merge_jsonl`) and report.

    Raises:
        DataError: no shard files, shards of different N or a shard missing, no ``settings.json`` or one naming
            other data, an id twice or unknown, or items no shard holds.
    """
    output_dir = Path(args.output_dir)
    pattern = re.compile(r"predictions\.shard-(\d+)-of-(\d+)\.jsonl")
    found = sorted(
        (int(m.group(1)), int(m.group(2)), p)
        for p in output_dir.glob("predictions.shard-*-of-*.jsonl")
        if (m := pattern.fullmatch(p.name))
    )
    if not found:
        raise DataError(f"no shard predictions (predictions.shard-<i>-of-<n>.jsonl) in {output_dir}")
    counts = {n for _, n, _ in found}
    if len(counts) != 1:
        raise DataError(f"{output_dir} holds shard files of different shard counts {sorted(counts)}")
    (count,) = counts
    missing_shards = sorted(set(range(count)) - {i for i, _, _ in found})
    if missing_shards:
        raise DataError(f"{output_dir}: shard(s) {missing_shards} of {count} have no predictions file")
    settings_file = output_dir / SETTINGS
    if not settings_file.exists():
        raise DataError(f"{settings_file} is missing: these shards were not written by this runner")
    settings = read_json(settings_file, what="settings file")
    files, split = resolve_data(bench, args)
    now = {"data_files": [str(p.resolve()) for p in files], "split": split}
    changed = [
        f"{k}: {settings.get(k)!r} in {settings_file}, now {v!r}" for k, v in now.items() if settings.get(k) != v
    ]
    if changed:
        raise DataError("--merge must name the data the shards were judged on:\n  " + "\n  ".join(changed))
    items = load_items(bench, args)
    target = predictions_path(output_dir)
    merge_jsonl([p for _, _, p in found], target, order=[id_key(item.id) for item in items])
    ordered = read_jsonl(target)
    logger.info("merged %d shard file(s) into %s (%d predictions)", len(found), target, len(ordered))
    return _finish(bench, args, items, ordered, settings, [p for _, _, p in found])


def _finish(
    bench: Benchmark, args: EvalArguments, items: Sequence[Item], records: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any], prediction_files: Sequence[Path],
) -> dict[str, Any]:  # fmt: skip
    """Score the predictions of every item (in benchmark order) and write the reports; returns the results."""
    by_id = {id_key(r["id"]): r for r in records}
    missing = [item.id for item in items if item.id not in by_id]
    if missing:
        raise DataError(f"{len(missing)} item(s) have no prediction, e.g. {missing[:10]}")
    ordered = [by_id[item.id] for item in items]
    scored = compute_metrics(bench, ordered)
    results = {
        "benchmark": bench.name,
        "title": bench.title,
        "source": bench.source,
        "settings": dict(settings, limit=args.limit),
        "counts": scored["counts"],
        "metrics": scored["metrics"],
        "headline": scored["headline"],
        "metric_definitions": METRIC_DEFINITIONS[bench.metric_set],
        "published": [dataclasses.asdict(row) for row in bench.published],
        "notes": list(bench.notes),
        "predictions": [str(p) for p in prediction_files],
    }
    write_reports(bench, results, Path(args.output_dir), plot=args.plot)
    return results


# -------------------------------------------------------------------------------------------------------------- CLI
def cli_main(benchmark: str, argv: Sequence[str] | None = None, *, description: str | None = None) -> int:
    """Parse flags and evaluate ``benchmark``; the body of every ``benchmark_evaluation/eval_*.py`` script.

    Returns:
        The exit status (1 on a data, output, flag or model error, with the message on stderr).
    """
    from unifiedreward.args import parse_args
    from unifiedreward.eval.benchmarks import get_benchmark

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    bench = get_benchmark(benchmark)
    args, backend_args = parse_args(
        [EvalArguments, BackendArguments], argv, prog=f"eval {benchmark}", description=description or bench.title
    )
    try:
        results = run_benchmark(bench, args, backend_args)
    except (UnifiedRewardError, ValueError) as exc:
        print(f"eval {benchmark}: error: {exc}", file=sys.stderr)
        return 1
    if results is not None:
        print(format_results(results))
        print(f"results: {Path(args.output_dir) / 'results.md'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m unifiedreward.eval.runner <benchmark> [flags]``."""
    from unifiedreward.eval.benchmarks import BENCHMARKS

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in BENCHMARKS:
        print(f"usage: python -m unifiedreward.eval.runner {{{','.join(BENCHMARKS)}}} [flags]", file=sys.stderr)
        return 2
    return cli_main(args[0], args[1:])


if __name__ == "__main__":
    sys.exit(main())
