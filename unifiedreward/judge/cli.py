"""The ``unifiedreward judge`` command: judge a JSONL file of requests into a JSONL file of results.

Input: one JSON object per line (blank lines are skipped)::

    {"id": "a1", "task": "image_generation", "mode": "pair_rank", "images": ["a.png", "b.png"], "prompt": "a cat"}
    {"id": 7, "task": "video_understanding", "mode": "point_score", "videos": ["clip.mp4"], "num_frames": 16,
     "question": "What happens?", "response": "A dog runs."}

Reserved keys are ``id`` (string or integer, required, unique), ``task`` and ``mode`` (required), ``template`` (an
explicit template id), ``images`` / ``videos`` (lists of paths, relative to ``--media_root``, by default the input
file's folder), ``num_frames`` (per-request override of ``--num_frames``) and ``meta`` (anything, copied to the
output record unchanged). Every other key is a text field of the template (``prompt``; ``question``, ``answer1``,
``answer2``; ``question``, ``response``; upstream spellings ``Query``, ``R1``, ``R2``, ``Response``).

The whole file is validated before any model is loaded (:mod:`unifiedreward.judge.requests`): bad JSON, a missing
or duplicate id, an unknown task or mode, a template that does not exist for the family, wrong text fields or a
wrong number of images/videos fail the run with every offending line number listed. Media files are *not* opened
at startup: one that fails to load gives that request an ``invalid`` record (``reason`` starts with
``media error:`` and names the file), never a crash and never a default verdict.

Output: one JSON object per request (:func:`unifiedreward.judge.results.result_record`), appended and fsynced every
``--chunk_size`` requests by the resumable-job engine (:func:`unifiedreward.io.run_resumable`). A run that is killed
loses at most the chunk in flight; running the same command again resumes: ids already in the output are skipped,
and a truncated last line (a kill in the middle of a write) is dropped, with a warning, and judged again. Records
hold no timing, so a resumed run's output equals an uninterrupted run's, byte for byte. Timing is in
``<output>.summary.json``. The settings that define the results (``--input``, ``--shard``, ``--model``,
``--family``, ``--version``, ``--order``, ``--seed``, ``--scoring``, ``--max_new_tokens``, ``--num_frames``,
``--video_fps``, ``--max_pixels``) are stored in ``<output>.settings.json``; resuming with any of them changed is
refused with a ``SettingsError`` listing the changes (``--overwrite`` starts over).

Sharding: ``--shard i/n`` keeps the requests whose 0-based position among the input's records is ``i`` modulo
``n``; ``n`` processes with ``--shard 0/n`` ... ``--shard n-1/n`` and separate ``--output`` files cover every request
exactly once. ``--merge a.jsonl b.jsonl ... --output merged.jsonl --input requests.jsonl`` (:func:`merge_outputs`)
joins them in input order and fails on duplicate, unknown or missing ids, or on shards judged with different
settings.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unifiedreward.errors import SettingsError, UnifiedRewardError
from unifiedreward.io.files import read_json, read_jsonl, write_json_atomic
from unifiedreward.io.job import run_resumable
from unifiedreward.io.settings import settings_path
from unifiedreward.io.shards import merge_jsonl, parse_shard, select_shard
from unifiedreward.judge.arguments import (
    SETTINGS_KEYS,
    JudgeArguments,
    build_backend,
    check_judge_arguments,
    judge_options,
    judge_settings,
    resolve_family,
)
from unifiedreward.judge.requests import InputRecord, check_templates, read_requests
from unifiedreward.judge.results import MediaLoader, judge_chunk
from unifiedreward.judge.summary import format_summary, summarize_records, summary_path

logger = logging.getLogger(__name__)

#: The command's API.
__all__ = ["main", "merge_outputs", "run_judge"]


# ------------------------------------------------------------------------------------------------------ judging
class _JudgeSession:
    """The model side of one run: built by the engine's ``setup`` (only when something is left to judge), then
    called by its ``process`` for each chunk."""

    def __init__(self, args: JudgeArguments, backend: Any, family: str, records: Sequence[InputRecord]):
        self.args = args
        self.backend = backend
        self.family = family
        self.records = records
        self.judge: Any = None

    def setup(self, pending: Sequence[InputRecord]) -> None:
        from unifiedreward.judge.base import GenerationConfig
        from unifiedreward.judge.judge import RewardJudge

        if self.backend is None:
            self.backend = build_backend(self.args)
        if not self.family:
            from unifiedreward.modeling import model_family

            self.family = model_family(self.backend.model)
            logger.info("prompt family %s (from the loaded model)", self.family)
            check_templates(self.records, self.family, self.args.version, self.args.input)
        self.judge = RewardJudge(
            self.backend,
            family=self.family,
            version=self.args.version,
            generation=GenerationConfig(max_new_tokens=self.args.max_new_tokens),
            **judge_options(self.args),
        )

    def process(self, chunk: Sequence[InputRecord], loaded: Sequence[tuple]) -> list[dict[str, Any]]:
        return judge_chunk(self.judge, chunk, loaded)


def run_judge(args: JudgeArguments, *, backend: Any = None) -> dict[str, Any]:
    """Judge ``args.input`` into ``args.output`` (resuming it), write ``<output>.summary.json`` and return it.

    Order of work: validate the flags, the whole input file and the templates (no model loaded yet); check the
    settings against ``<output>.settings.json`` and read the existing output (resume); then load the model or check
    the server only if something is left to judge (while the first chunk's media are decoded).

    Args:
        args: the command's flags.
        backend: a ready :class:`~unifiedreward.judge.base.Backend` to use instead of building one from the flags
            (tests, or callers holding a loaded model). Its family is ``--family``, else the family of its ``model``
            attribute, else ``"qwen"``.

    Returns:
        The summary: ``input``, ``output``, ``shard``, ``backend``, ``model``, ``family``, ``version``, ``order``,
        ``scoring``, ``requests_in_input``, ``requests_in_shard``, ``skipped_done`` (already in the output),
        ``judged`` (this run), ``wall_s`` (this run, model loading included), ``judge_s`` (the judging loop),
        ``requests_per_s`` (``judged / judge_s``), and ``results`` (:func:`summarize_records` over the whole output).

    Raises:
        DataError: a malformed input file (nothing judged, no model loaded), or an existing output that is corrupt
            or belongs to another input/shard.
        SettingsError: the existing output was made with other settings (see
            :data:`~unifiedreward.judge.arguments.SETTINGS_KEYS`); ``--overwrite`` starts over.
        ValueError: invalid flags.
        UnifiedRewardError: the model cannot be loaded or the server is not usable.
    """
    start = time.perf_counter()
    check_judge_arguments(args, injected=backend is not None)
    backend_name = args.backend if backend is None else type(backend).__name__
    input_path, output = Path(args.input), Path(args.output)
    shard = parse_shard(args.shard)
    records = read_requests(input_path)
    mine = select_shard(records, *shard) if shard else records
    family = resolve_family(args, backend)
    if family:
        check_templates(records, family, args.version, input_path)
    judge_options(args)  # unsupported options fail before anything is written
    if args.overwrite:
        summary_path(output).unlink(missing_ok=True)
    session = _JudgeSession(args, backend, family, records)
    root = Path(args.media_root) if args.media_root else input_path.resolve().parent
    loader = MediaLoader(root, args.num_frames, args.video_fps, args.max_pixels)
    stats = run_resumable(
        mine,
        key=lambda record: record.key,
        output=output,
        process=session.process,
        load=loader.load,
        setup=session.setup,
        chunk_size=args.chunk_size,
        num_workers=args.num_workers,
        settings=judge_settings(args, family),
        settings_keys=SETTINGS_KEYS,
        overwrite=args.overwrite,
        desc="judging",
        progress=args.progress,
    )
    summary = {
        "input": str(input_path),
        "output": str(output),
        "shard": args.shard,
        "backend": backend_name,
        "model": args.model,
        "family": session.family or None,
        "version": args.version,
        "order": args.order,
        "scoring": args.scoring,
        "requests_in_input": len(records),
        "requests_in_shard": len(mine),
        "skipped_done": stats.done_before,
        "judged": stats.processed,
        "wall_s": round(time.perf_counter() - start, 3),
        "judge_s": round(stats.seconds, 3),
        "requests_per_s": round(stats.processed / stats.seconds, 3) if stats.seconds > 0 else None,
        "results": summarize_records(read_jsonl(output)),
    }
    write_json_atomic(summary_path(output), summary)
    return summary


# --------------------------------------------------------------------------------------------------------- merge
def _shard_settings(sources: Sequence[Path]) -> dict[str, Any] | None:
    """The settings the shard outputs share (``None`` if none has a settings file).

    Raises:
        SettingsError: two shards were judged with different settings (``input`` and ``shard`` may differ).
    """
    stored = [(p, read_json(settings_path(p), what="settings file")) for p in sources if settings_path(p).exists()]
    if not stored:
        return None
    (first_path, first), compared = stored[0], [k for k in SETTINGS_KEYS if k not in ("input", "shard")]
    problems = [
        f"{key}: {first.get(key)!r} in {first_path}, {other.get(key)!r} in {path}"
        for path, other in stored[1:]
        for key in compared
        if other.get(key) != first.get(key)
    ]
    if problems:
        raise SettingsError("the shard outputs were judged with different settings:\n  " + "\n  ".join(problems))
    return first


def merge_outputs(
    paths: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    input: str | os.PathLike,
    *,
    allow_missing: bool = False,
) -> dict[str, Any]:
    """Join shard outputs into one file in input order; write ``<output>.summary.json`` (and, when the shards have
    settings files, ``<output>.settings.json`` with ``shard`` unset, so the merged file can be resumed unsharded).

    Args:
        paths: the shard outputs.
        output: the merged file (written atomically; must not be one of ``paths``).
        input: the request file the shards were judged from.
        allow_missing: write the merged file even if input ids are missing (logged); otherwise that is an error.

    Returns:
        The summary: ``merged_files``, ``input``, ``output``, ``requests_in_input``, ``records``, ``missing``
        (count), ``missing_ids`` (first 20, as in the input) and ``results`` (:func:`summarize_records`).

    Raises:
        DataError: a missing or unreadable file, an id twice (across or within files), an id not in the input, or
            missing ids without ``allow_missing``. Nothing is written then.
        SettingsError: the shards were judged with different settings. Nothing is written then.
        ValueError: no files, or ``output`` is one of them.
    """
    if not paths:
        raise ValueError("nothing to merge")
    output = Path(output)
    requests = read_requests(input)
    by_key = {record.key: record for record in requests}
    settings = _shard_settings([Path(p) for p in paths])
    merged = merge_jsonl(paths, output, order=list(by_key), allow_missing=allow_missing)
    if settings is not None:
        write_json_atomic(settings_path(output), {**settings, "input": str(Path(input).resolve()), "shard": None})
    summary = {
        "merged_files": merged["merged_files"],
        "input": str(input),
        "output": str(output),
        "requests_in_input": len(requests),
        "records": merged["records"],
        "missing": merged["missing"],
        "missing_ids": [by_key[key].id for key in merged["missing_ids"]],
        "results": summarize_records(read_jsonl(output)),
    }
    write_json_atomic(summary_path(output), summary)
    return summary


# ----------------------------------------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    """``unifiedreward judge``: parse flags, run, print the summary. Returns the exit status (1 on errors)."""
    from unifiedreward.args import parse_args

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    (args,) = parse_args([JudgeArguments], argv, prog="unifiedreward judge", description=__doc__.split("\n\n")[0])
    try:
        if args.merge:
            summary = merge_outputs(args.merge, args.output, args.input, allow_missing=args.allow_missing)
        else:
            summary = run_judge(args)
    except (UnifiedRewardError, ValueError) as exc:
        print(f"unifiedreward judge: error: {exc}", file=sys.stderr)
        return 1
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
