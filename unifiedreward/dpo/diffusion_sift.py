"""Sift generated image sets into Diffusion-DPO pairs with the reward model (``DiffusionDPO/sift_dpo_data.py``).

Reads ``<data_dir>/data.json`` + ``<data_dir>/images/`` (:mod:`unifiedreward.dpo.diffusion_generate`), makes one
:class:`~unifiedreward.preference.CandidateSet` (task ``image_generation``) per caption and sifts it with the
preference library (``--strategy upstream`` by default — protocol reference §4.2 with its defects fixed: scores
compared as numbers, ties and unparsed verdicts never make a winner — or ``tournament`` / ``pointwise``). Judge:
an in-process reward model (``--reward_model``) or an OpenAI-compatible server (``--judge_base_url``).

Output (``--output_dir``, default ``--data_dir``):

* ``dpo_data.json`` — one record per kept caption, in input order, loadable with
  ``datasets.load_dataset("json", data_files=...)`` and read by ``train.py``::

      {"id", "caption", "jpg_0": "image_<id>_chosen.png", "jpg_1": "image_<id>_rejected.png", "label_0": 1,
       "chosen_score": 8.0, "rejected_score": 3.0, "chosen_seed", "rejected_seed", "evidence": "<JSON text>"}

  Scores are numbers; ``evidence`` (the strategy's verdicts, scores, seeds and templates) is JSON *text* so that
  every record has the same columns whatever the strategy. No leftover ``prompt`` / ``images`` columns (upstream's
  loader failed on them);
* ``images_dpo/`` — the chosen and rejected images;
* ``sift.decisions.jsonl`` (one line per caption, kept or not; the resume log) and ``sift.summary.json``.

Resume, ``--shard i/n`` and ``--merge`` work as in :mod:`unifiedreward.dpo.diffusion_generate`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unifiedreward.dpo.diffusion_data import DPO_DATA_FILE, DPO_IMAGE_DIR
from unifiedreward.dpo.diffusion_generate import DATA_FILE, IMAGE_DIR, finish_job, merge_logs, safe_name
from unifiedreward.errors import DataError, UnifiedRewardError
from unifiedreward.io import (
    id_key,
    parse_shard,
    read_json,
    read_jsonl,
    run_resumable,
    select_shard,
    shard_path,
    write_json_atomic,
)
from unifiedreward.judge.judge import ORDERS
from unifiedreward.preference import Candidate, CandidateSet, decision_record, sift, summarize
from unifiedreward.preference.arguments import SCORINGS, strategy_config
from unifiedreward.preference.strategies import STRATEGIES

logger = logging.getLogger(__name__)

__all__ = ["SiftArguments", "dpo_record", "run_sift"]

LOG_FILE = "sift.decisions.jsonl"
SUMMARY_FILE = "sift.summary.json"


def _f(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class SiftArguments:
    """Reward-model sifting of generated image sets into Diffusion-DPO pairs (judge flags as ``infer+sift.py``)."""

    data_dir: str = field(metadata={"help": "data_generation.py output folder (data.json + images/)."})
    output_dir: str | None = _f(None, "Where dpo_data.json and images_dpo/ go (default: --data_dir).")
    reward_model: str | None = _f(None, "Reward model (local path or hub id) loaded in-process.")
    judge_base_url: str | None = _f(None, "OpenAI-compatible server of the reward model; instead of --reward_model.")
    judge_model: str | None = _f(None, "Served model name of the judge server (default: UnifiedReward).")
    judge_family: str | None = _f(None, "Prompt family of the judge: qwen or llava (in-process default: from the "
                                        "checkpoint; server default: qwen).", choices=["qwen", "llava"])  # fmt: skip
    judge_version: str = _f("1.0", "Template version of the judge (1.0, 2.0, ...).")
    judge_batch_size: int = _f(8, "Prompts per reward-model forward (in-process).")
    judge_max_new_tokens: int = _f(1024, "Longest judge answer in tokens.")
    strategy: str = _f("upstream", "Sifting strategy (docs/preference.md).", choices=sorted(STRATEGIES))
    order: str | None = _f(None, "Pair order of the judge (default: the strategy's).", choices=list(ORDERS))
    scoring: str | None = _f(None, "generate, probabilities or auto (default: the strategy's).",
                             choices=list(SCORINGS))  # fmt: skip
    fit: str = _f("bradley_terry", "Tournament strengths.", choices=["bradley_terry", "win_rate"])
    prior: float = _f(0.1, "Tournament Bradley-Terry virtual wins per side of every pair.")
    min_probability: float = _f(0.6, "Tournament: keep when P(chosen beats rejected) is above this.")
    min_margin: float = _f(0.0, "Pointwise: keep when (chosen - rejected) / score range is above this.")
    max_pixels: int | None = _f(None, "Downsize images to at most this many pixels before judging.")
    min_side: int | None = _f(None, "Upscale (bicubic) images whose shorter side is below this many pixels before "
                                    "judging, e.g. to the resolution the reward model was trained at.")  # fmt: skip
    seed: int = _f(0, "Judge seed (order coins, sampling).")
    device_map: str | None = _f(None, "device_map of the in-process reward model (auto, cuda:0, cpu).")
    dtype: str = _f("auto", "dtype of the in-process reward model.")
    attn_implementation: str | None = _f(None, "Attention kernel of the in-process reward model.")
    max_concurrency: int = _f(16, "Requests in flight to the judge server.")
    timeout: float = _f(300.0, "Seconds per socket operation of a server request.")
    max_retries: int = _f(3, "Retries of a failed server request.")
    chunk_size: int = _f(8, "Captions sifted and written together.")
    num_workers: int = _f(2, "Threads decoding images one chunk ahead.")
    shard: str | None = _f(None, "'i/n': only the captions whose position is i modulo n (then --merge).")
    merge: bool = _f(False, "Join the shards' logs and write dpo_data.json; no judging.")
    overwrite: bool = _f(False, "Delete this run's log and start over.")
    progress: bool = _f(True, "Show a progress bar (stderr).")


SETTINGS_KEYS = ("reward_model", "judge_base_url", "judge_model", "judge_family", "judge_version",
                 "judge_max_new_tokens", "strategy", "order", "scoring", "fit", "prior", "min_probability",
                 "min_margin", "max_pixels", "min_side", "seed", "shard")  # fmt: skip


def dpo_record(line: dict[str, Any]) -> dict[str, Any] | None:
    """The ``dpo_data.json`` record of a decision-log line (``None`` when the caption was dropped)."""
    return line.get("dpo") if line.get("kept") else None


class _Sifter:
    def __init__(self, args: SiftArguments, judge: Any):
        self.args = args
        self.judge = judge
        self.images_dir = Path(args.data_dir) / IMAGE_DIR
        self.out_images = Path(args.output_dir or args.data_dir) / DPO_IMAGE_DIR

    def setup(self, _pending: Sequence[Any] = ()) -> None:
        if self.judge is None:
            from unifiedreward.preference.pipeline import build_judge

            self.judge = build_judge(self.args)  # the flags it reads are SiftArguments fields of the same name
        self.out_images.mkdir(parents=True, exist_ok=True)

    def load(self, record: dict[str, Any]) -> Any:
        from unifiedreward.media import resolve_media, upscale_to_min_side

        try:
            images = [resolve_media(name, "image", root=self.images_dir, max_pixels=self.args.max_pixels)
                      for name in record["images"]]  # fmt: skip
        except UnifiedRewardError as err:
            return err
        return [upscale_to_min_side(image, self.args.min_side) for image in images]

    def process(self, chunk: Sequence[dict[str, Any]], loaded: Sequence[Any]) -> list[dict[str, Any]]:
        args = self.args
        config = strategy_config(args)
        lines = []
        for record, images in zip(chunk, loaded, strict=True):
            if isinstance(images, Exception):
                logger.warning("record %s: %s", record["id"], images)
                lines.append({"id": record["id"], "kept": False, "reason": "unreadable_media", "judge_calls": 0,
                              "candidates": [], "record": None, "evidence": {}, "error": str(images)})  # fmt: skip
                continue
            seeds = record.get("seeds") or [None] * len(images)
            candidates = [Candidate(name, media=image, seed=seed)
                          for name, image, seed in zip(record["images"], images, seeds, strict=True)]  # fmt: skip
            source = {k: v for k, v in record.items() if k not in ("images", "seeds")}
            cset = CandidateSet(record["id"], "image_generation", record["caption"], candidates, source=source)
            decision = sift([cset], self.judge, args.strategy, config)[0]
            line = decision_record(cset, decision)
            if decision.kept:
                line["dpo"] = self._pair(record, decision)
            lines.append(line)
        return lines

    def _pair(self, record: dict[str, Any], decision: Any) -> dict[str, Any]:
        files = {}
        for role, index in (("chosen", decision.chosen), ("rejected", decision.rejected)):
            source = self.images_dir / record["images"][index]
            name = f"image_{safe_name(record['id'])}_{role}{source.suffix}"
            shutil.copyfile(source, self.out_images / name)
            files[role] = name
        seeds = record.get("seeds") or {}
        return {
            "id": record["id"],
            "caption": record["caption"],
            "jpg_0": files["chosen"],
            "jpg_1": files["rejected"],
            "label_0": 1,
            "chosen_score": decision.chosen_score,
            "rejected_score": decision.rejected_score,
            "chosen_seed": seeds[decision.chosen] if seeds else None,
            "rejected_seed": seeds[decision.rejected] if seeds else None,
            "evidence": json.dumps(decision.evidence, sort_keys=True),
        }


def _read_sets(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / DATA_FILE
    records = read_json(path, what="generation data")
    if not isinstance(records, list):
        raise DataError("expected a JSON list of records", path=path)
    for record in records:
        if not isinstance(record, dict) or not {"id", "caption", "images"} <= set(record):
            raise DataError("each record needs 'id', 'caption' and 'images' (data_generation.py output)", path=path)
        record["id"] = id_key(record["id"])
    return records


def run_sift(args: SiftArguments, *, judge: Any = None) -> dict[str, Any]:
    """Sift (or resume, or merge); returns the summary (:func:`unifiedreward.preference.summarize` plus
    ``dpo_file``).

    Args:
        args: the flags.
        judge: a ready :class:`~unifiedreward.judge.RewardJudge` (else built from the flags when first needed).
    """
    if args.merge and args.shard:
        raise ValueError("--merge joins all shards: do not pass --shard with it")
    if not (args.merge or judge is not None or bool(args.reward_model) != bool(args.judge_base_url)):
        raise ValueError("give exactly one of --reward_model and --judge_base_url")
    data_dir = Path(args.data_dir)
    out = Path(args.output_dir or args.data_dir)
    records = _read_sets(data_dir)
    order = [r["id"] for r in records]
    shard = None if args.merge else parse_shard(args.shard)
    seconds = None
    if args.merge:
        log = merge_logs(out, LOG_FILE, order)
    else:
        if shard is not None:
            records = select_shard(records, *shard)
        log = shard_path(out / LOG_FILE, shard)
        sifter = _Sifter(args, judge)
        settings = {key: getattr(args, key) for key in SETTINGS_KEYS}
        settings["strategy_config"] = dataclasses.asdict(strategy_config(args))
        stats = run_resumable(records, key=lambda r: r["id"], output=log, process=sifter.process, load=sifter.load,
                              setup=sifter.setup, chunk_size=args.chunk_size, num_workers=args.num_workers,
                              settings=settings, overwrite=args.overwrite, desc="sift",
                              progress=args.progress)  # fmt: skip
        seconds = stats.seconds
    summary = summarize(read_jsonl(log), seconds=seconds)
    if shard is None:
        pairs = finish_job(log, out / DPO_DATA_FILE, order, dpo_record)
        summary["dpo_file"] = str(out / DPO_DATA_FILE)
        summary["pairs"] = len(pairs)
    write_json_atomic(shard_path(out / SUMMARY_FILE, shard), summary)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry (``DiffusionDPO/sift_dpo_data.py``)."""
    from unifiedreward.args import parse_args

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    (args,) = parse_args([SiftArguments], list(sys.argv[1:] if argv is None else argv),
                         description=__doc__.split("\n\n")[0])  # fmt: skip
    try:
        summary = run_sift(args)
    except (UnifiedRewardError, ValueError) as err:
        logger.error("%s", err)
        return 2
    print(f"kept {summary['kept']} of {summary['inputs']} caption(s) -> {summary.get('dpo_file')}")
    print(f"dropped: {summary['dropped']}; judge calls: {summary['judge_calls']}")
    return 0
