"""``VideoDPO/sift_dpo_data.py``: sift generated videos into DPO pairs with the video reward model.

Input: the ``data.json`` of ``VideoDPO/data_generation.py`` (``[{"id", "caption", "videos": [paths], "seeds"}]``;
upstream's records without ``seeds`` work too), video paths relative to its folder (``--video_folder`` overrides).
Each record becomes a ``video_generation`` :class:`~unifiedreward.preference.CandidateSet` whose candidates are the
generated videos (``output`` = the path as written, ``media`` = the clip decoded by
:func:`unifiedreward.media.resolve_media`, ``seed`` = its recorded seed), sifted by
:func:`unifiedreward.preference.sift` with a :class:`~unifiedreward.judge.RewardJudge` (in-process
``--reward_model`` over :class:`~unifiedreward.judge.hf_backend.TransformersBackend`, or ``--judge_base_url``).
``--strategy upstream`` is upstream's protocol (rounds ``(0,1), (2,3), …`` pair-ranked, winners/losers point-scored,
LLaVA judges get ``T-VG-PAIR-VDPO`` + ``T-VG-POINT-VDPO``), with its defects fixed (docs/preference.md).

Output (``--output_path``, default ``<data dir>/dpo_data.json``), upstream's format plus evidence::

    {"id", "caption", "chosen": "videos/17-4.mp4", "rejected": "videos/17-1.mp4", "chosen_score": 7.0,
     "rejected_score": 4.0, "chosen_seed", "rejected_seed", "evidence": {...}}

Scores are numbers (upstream wrote strings, compared lexicographically). ``--pairs all`` (with ``--strategy
pointwise``) writes every pair of a caption's clips whose scores differ by more than ``--min_margin`` instead of
the best vs the worst: the same judge calls, up to ``K (K - 1) / 2`` records per caption (sharing its ``id``); it
is applied when the pairs file is written, so a finished log can be re-written either way. Beside it
``dpo_data.decisions.jsonl`` (one line per prompt, the resume log of :func:`unifiedreward.io.run_resumable`) and
``dpo_data.summary.json``; ``--shard i/n`` / ``--merge`` as in ``infer+sift.py``.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Sequence
from dataclasses import field
from pathlib import Path
from typing import Any

from unifiedreward.errors import DataError, UnifiedRewardError
from unifiedreward.io import (
    id_key,
    merge_jsonl,
    parse_shard,
    read_json,
    read_jsonl,
    run_resumable,
    select_shard,
    shard_path,
    write_json_atomic,
)
from unifiedreward.preference import (
    Candidate,
    CandidateSet,
    decision_record,
    expand_pairs,
    failed_record,
    sift,
    summarize,
)
from unifiedreward.preference.arguments import PreferenceArguments, strategy_config

logger = logging.getLogger(__name__)

__all__ = ["VideoSiftArguments", "dpo_record", "dpo_records", "main", "read_generations", "run_sift"]

_SHARED = ("reward_model", "judge_base_url", "judge_model", "judge_family", "judge_version", "judge_batch_size",
           "judge_max_new_tokens", "strategy", "order", "scoring", "fit", "prior", "min_probability", "min_margin",
           "video_fps", "max_pixels", "device_map", "dtype", "attn_implementation", "max_concurrency", "timeout",
           "max_retries", "num_workers", "seed", "progress")  # fmt: skip


def _from_preference(name: str, **override: Any) -> Any:
    """The field ``name`` of :class:`PreferenceArguments` (same default and help), optionally overridden."""
    source = PreferenceArguments.__dataclass_fields__[name]
    metadata = dict(source.metadata)
    metadata.update(override.pop("metadata", {}))
    return field(default=override.get("default", source.default), metadata=metadata)


_OWN: list[tuple[str, Any, Any]] = [
    ("data_path", str, field(metadata={"help": "data.json of data_generation.py: [{'id', 'caption', 'videos'}]."})),
    ("output_path", "str | None", field(default=None, metadata={"help": "DPO pairs (default <data "
                                                                        "dir>/dpo_data.json)."})),
    ("video_folder", "str | None", field(default=None, metadata={"help": "Folder the video paths are relative to "
                                                                         "(default: the data file's folder)."})),
    ("min_side", "int | None", field(default=None, metadata={"help": "Upscale (bicubic) frames whose shorter side "
                                                                      "is below this many pixels before judging, e.g. "
                                                                      "to the resolution the reward model was trained "
                                                                      "at."})),
    ("chunk_size", int, _from_preference("chunk_size", default=4)),
    ("pairs", str, field(default="best_worst", metadata={"help": "Pairs per kept caption: best_worst (upstream: the "
                                                                  "best vs the worst clip) or all (pointwise only: "
                                                                  "every pair of clips whose scores differ by more "
                                                                  "than --min_margin, largest difference first; "
                                                                  "the same judge calls, more pairs).",
                                                          "choices": ["best_worst", "all"]})),
]  # fmt: skip
_REUSED = ("num_frames", "shard", "merge", "overwrite", "judge_per_input", *_SHARED)

#: The flags: our own, then the judge / strategy / media / running flags of ``infer+sift.py``
#: (:class:`~unifiedreward.preference.arguments.PreferenceArguments`, same names, defaults and help).
VideoSiftArguments = dataclasses.make_dataclass(
    "VideoSiftArguments",
    [*_OWN, *[(name, PreferenceArguments.__annotations__[name], _from_preference(name)) for name in _REUSED]],
    namespace={"__doc__": "Sift generated videos into DPO pairs with the reward model (module docstring)."},
)
VideoSiftArguments.__module__ = __name__


SETTINGS_KEYS = ("reward_model", "judge_base_url", "judge_model", "judge_version", "judge_max_new_tokens", "strategy",
                 "num_frames", "video_fps", "max_pixels", "min_side", "shard", "judge_per_input", "seed")  # fmt: skip


def read_generations(path: str | Path) -> list[dict[str, Any]]:
    """The generation records (``id``, ``caption``/``prompt``, ``videos``), checked before any model loads."""
    path = Path(path)
    records = read_jsonl(path, require_id=False) if path.suffix == ".jsonl" else read_json(path, what="data file")
    if not isinstance(records, list):
        raise DataError("expected a JSON list", path=path)
    out, seen = [], set()
    for position, record in enumerate(records):
        caption = record.get("caption", record.get("prompt")) if isinstance(record, dict) else None
        key = id_key(record.get("idx", record.get("id", position))) if isinstance(record, dict) else str(position)
        if not isinstance(caption, str) or not isinstance(record.get("videos"), list):
            raise DataError("needs 'caption' and a list 'videos'", path=path, record_id=key)
        if key in seen:
            raise DataError("id used twice", path=path, record_id=key)
        seen.add(key)
        out.append({**record, "id": key, "caption": caption})
    return out


def dpo_records(line: dict[str, Any], pairs: str = "best_worst") -> list[dict[str, Any]]:
    """A kept decision-log line → its ``dpo_data.json`` records: one (best vs worst) or, with ``pairs="all"``, one
    per pair of :func:`~unifiedreward.preference.expand_pairs`; a dropped line → ``[]``."""
    if not line.get("kept"):
        return []
    if pairs == "best_worst":
        return [dpo_record(line)]
    return [dpo_record({**line, "record": record}) for record in expand_pairs(line)]


def dpo_record(line: dict[str, Any]) -> dict[str, Any]:
    """A kept decision-log line → upstream's ``dpo_data.json`` record (module docstring)."""
    record = line["record"]
    seeds = {c["output"]: c.get("seed") for c in line["candidates"]}
    extra = {k: v for k, v in record.items() if k not in ("id", "prompt", "videos", "seeds", "caption")}
    return {"id": record["id"], "caption": record["prompt"], **extra, "chosen_seed": seeds.get(record["chosen"]),
            "rejected_seed": seeds.get(record["rejected"]), "evidence": line["evidence"]}  # fmt: skip


class _Sifter:
    def __init__(self, args: Any, judge: Any, root: Path):
        self.args, self.judge, self.root = args, judge, root

    def setup(self, _pending: Sequence[Any] = ()) -> None:
        if self.judge is None:
            from unifiedreward.preference.pipeline import build_judge

            self.judge = build_judge(self.args)

    def load(self, record: dict[str, Any]) -> list[Any] | str:
        from unifiedreward.media import resolve_media

        try:
            videos = [resolve_media(v, "video", root=self.root, num_frames=self.args.num_frames,
                                    fps=self.args.video_fps, max_pixels=self.args.max_pixels)
                      for v in record["videos"]]  # fmt: skip
        except UnifiedRewardError as err:
            return str(err)
        return [_upscale_video(video, self.args.min_side) for video in videos]

    def process(self, chunk: Sequence[dict[str, Any]], loaded: Sequence[Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any] | None] = [None] * len(chunk)
        sets, where = [], []
        for position, (record, media) in enumerate(zip(chunk, loaded, strict=True)):
            if isinstance(media, str):
                logger.warning("record %s: %s", record["id"], media)
                out[position] = failed_record(record["id"], "unreadable_media", media)
                continue
            seeds = record.get("seeds") or [None] * len(media)
            candidates = [Candidate(path, media=clip, seed=seed)
                          for path, clip, seed in zip(record["videos"], media, seeds, strict=True)]  # fmt: skip
            source = {k: v for k, v in record.items() if k not in ("caption",)}
            sets.append(CandidateSet(record["id"], "video_generation", record["caption"], candidates, source=source))
            where.append(position)
        config = strategy_config(self.args)
        if self.args.judge_per_input:
            decisions = [sift([cset], self.judge, self.args.strategy, config)[0] for cset in sets]
        else:
            decisions = sift(sets, self.judge, self.args.strategy, config) if sets else []
        for position, cset, decision in zip(where, sets, decisions, strict=True):
            out[position] = decision_record(cset, decision)
        return out  # type: ignore[return-value]


def _upscale_video(video: Any, min_side: int | None) -> Any:
    """``video`` with every frame upscaled by :func:`unifiedreward.media.upscale_to_min_side` (a copy; or itself)."""
    if not min_side or min(video.frames.shape[1:3]) >= min_side:
        return video
    import numpy as np
    from PIL import Image

    from unifiedreward.media import upscale_to_min_side

    frames = np.stack([np.asarray(upscale_to_min_side(Image.fromarray(f), min_side)) for f in video.frames])
    return dataclasses.replace(video, frames=frames)


def _outputs(args: Any, shard: tuple[int, int] | None = None) -> dict[str, Path]:
    pairs = Path(args.output_path) if args.output_path else Path(args.data_path).parent / "dpo_data.json"
    pairs = shard_path(pairs, shard)
    return {"pairs": pairs, "decisions": pairs.with_name(f"{pairs.stem}.decisions.jsonl"),
            "summary": pairs.with_name(f"{pairs.stem}.summary.json")}  # fmt: skip


def _write(files: dict[str, Path], order: Sequence[str], seconds: float | None, pairs: str) -> dict[str, Any]:
    position = {key: i for i, key in enumerate(order)}
    log = sorted(read_jsonl(files["decisions"]), key=lambda line: position[id_key(line["id"])])
    records = [record for line in log for record in dpo_records(line, pairs)]
    write_json_atomic(files["pairs"], records)
    summary = {**summarize(log, seconds=seconds), "pairs": len(records), "pairs_file": str(files["pairs"])}
    write_json_atomic(files["summary"], summary)
    return summary


def run_sift(args: Any, *, judge: Any = None) -> dict[str, Any]:
    """Sift (or resume, or merge); returns the summary.

    Args:
        args: a :data:`VideoSiftArguments`.
        judge: a ready :class:`~unifiedreward.judge.RewardJudge` (else built from the flags).
    """
    if args.merge and args.shard:
        raise ValueError("--merge joins all shards: do not pass --shard with it")
    if not args.merge and judge is None and bool(args.reward_model) == bool(args.judge_base_url):
        raise ValueError("give exactly one of --reward_model and --judge_base_url")
    if args.num_frames < 1 or args.chunk_size < 1:
        raise ValueError("--num_frames and --chunk_size must be >= 1")
    if args.pairs not in ("best_worst", "all"):
        raise ValueError(f"--pairs must be best_worst or all, got {args.pairs!r}")
    if args.pairs == "all" and args.strategy != "pointwise":
        raise ValueError("--pairs all needs --strategy pointwise (the per-clip scores it pairs)")
    records = read_generations(args.data_path)
    order = [r["id"] for r in records]
    root = Path(args.video_folder) if args.video_folder else Path(args.data_path).parent
    files = _outputs(args)
    if args.merge:
        shards = sorted(files["pairs"].parent.glob(f"{files['pairs'].stem}.shard-*-of-*.decisions.jsonl"))
        merge_jsonl(shards, files["decisions"], order=order)
        return _write(files, order, None, args.pairs)
    shard = parse_shard(args.shard)
    items = select_shard(records, *shard) if shard else records
    files = _outputs(args, shard)
    sifter = _Sifter(args, judge, root)
    settings = {key: getattr(args, key) for key in SETTINGS_KEYS}
    settings["strategy_config"] = dataclasses.asdict(strategy_config(args))
    stats = run_resumable(items, key=lambda r: r["id"], output=files["decisions"], process=sifter.process,
                          load=sifter.load, setup=sifter.setup, chunk_size=args.chunk_size,
                          num_workers=args.num_workers, settings=settings, overwrite=args.overwrite,
                          desc="sift videos", progress=args.progress)  # fmt: skip
    return _write(files, [r["id"] for r in items], stats.seconds or None, args.pairs)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry (``VideoDPO/sift_dpo_data.py``)."""
    from unifiedreward.args import parse_args

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    (args,) = parse_args([VideoSiftArguments], argv, description=__doc__.split("\n\n")[0])
    try:
        summary = run_sift(args)
    except (UnifiedRewardError, ValueError) as err:
        logger.error("%s", err)
        return 2
    print(f"kept {summary['kept']} of {summary['inputs']} prompt(s) -> {summary['pairs_file']}")
    print(f"dropped: {summary['dropped']}; judge calls: {summary['judge_calls']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
