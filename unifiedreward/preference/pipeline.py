"""``infer+sift.py`` for image / video understanding: sample answers from a policy, sift them with the reward model,
write DPO pairs. Resumable, shardable, mergeable (on :mod:`unifiedreward.io`).

Steps (:func:`run_preference`):

1. read the input (:func:`read_items`): ``[{"prompt", "image"}]`` (video: ``"video"``, or upstream's ``"image"``
   holding a list of frame files, a frame folder or a video file), ids = ``"id"`` or the record's position;
2. keep this shard's inputs (``--shard i/n``: positions ``i`` modulo ``n``);
3. with the job engine (:func:`unifiedreward.io.run_resumable`), per chunk: decode media one chunk ahead
   (:func:`unifiedreward.media.resolve_media`; an unreadable file gives an ``unreadable_media`` line naming it),
   sample ``--num_candidates`` answers per input in one batched policy call (seeded by input id), sift each
   input's set with the strategy in batched judge calls (``--judge_per_input false``: all sets of the chunk in
   the same batches), append one decision line per input (fsync);
4. write the kept pairs in input order and a summary (kept / dropped per reason, judge calls, candidates/s).

Files (``--output_path out/pairs.json``): ``out/pairs.json`` (pairs), ``out/pairs.decisions.jsonl`` (one line per
input: the resume log, :mod:`unifiedreward.preference.records`), ``out/pairs.decisions.jsonl.settings.json``
(a resumed run with other settings is refused) and ``out/pairs.summary.json``. A shard ``i/n`` uses
``out/pairs.shard-i-of-n.*``; ``--merge`` joins the shard logs in input order and writes the same three files a
one-process run writes.

Resume: run the same command again; inputs already in the decision log are skipped (by id, unlike upstream, whose
resume counted kept records and so misaligned after any dropped input). Decision lines hold no timing, so a killed
and resumed run writes the same bytes as an uninterrupted one (given deterministic models: in-process sampling is
batch-invariant, and each input's judge requests are batched on their own, so neither chunking nor sharding
changes a float bit; with ``--judge_per_input false`` the judge batches whole chunks, which is faster for small
candidate sets on a GPU but lets batch composition move the last bits of probabilities).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
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
    settings_path,
    shard_path,
    write_json_atomic,
    write_jsonl_atomic,
)
from unifiedreward.judge.base import GenerationConfig
from unifiedreward.preference.arguments import PreferenceArguments, check_arguments, strategy_config
from unifiedreward.preference.candidates import CandidateSet
from unifiedreward.preference.records import decision_record, failed_record, pairs_from_log, summarize
from unifiedreward.preference.sampling import input_seed, policy_prompt, sample_candidates
from unifiedreward.preference.strategies import sift

logger = logging.getLogger(__name__)

#: Flags that define the decision log; resuming with any of them changed is refused.
SETTINGS_KEYS = (
    "task", "policy", "policy_base_url", "policy_model", "num_candidates", "temperature", "top_p", "max_new_tokens",
    "seed", "reward_model", "judge_base_url", "judge_model", "judge_version", "judge_max_new_tokens", "strategy",
    "num_frames", "video_fps", "max_pixels", "shard", "judge_per_input",
)  # fmt: skip


@dataclass(frozen=True)
class SiftItem:
    """One input: its id key, question, media reference (as written in the data) and the whole record."""

    id: str
    prompt: str
    media: Any
    source: dict[str, Any]


@dataclass(frozen=True)
class MediaFailure:
    """A media reference that could not be decoded (the loader's result instead of the media)."""

    error: str


def output_files(output: str | Path, shard: tuple[int, int] | None = None) -> dict[str, Path]:
    """``{"pairs", "decisions", "summary"}`` paths of a run (or of one shard) writing ``output``."""
    pairs = shard_path(output, shard)
    return {
        "pairs": pairs,
        "decisions": pairs.with_name(f"{pairs.stem}.decisions.jsonl"),
        "summary": pairs.with_name(f"{pairs.stem}.summary.json"),
    }


def media_key(record: dict[str, Any], task: str) -> str:
    """Which key of ``record`` names its media: ``image``; for video, ``video`` or (upstream) ``image``."""
    if task == "video_understanding" and "video" in record:
        return "video"
    return "image"


def read_items(path: str | Path, task: str) -> list[SiftItem]:
    """The inputs of ``path`` (a JSON list, or JSONL for ``.jsonl``), checked before any model loads.

    Raises:
        DataError: unreadable file, a record that is not an object, lacks a string ``prompt`` or its media, or an
            id used twice; the message names the file and the record.
    """
    path = Path(path)
    records = read_jsonl(path, require_id=False) if path.suffix == ".jsonl" else read_json(path, what="data file")
    if not isinstance(records, list):
        raise DataError("expected a JSON list of records", path=path)
    items, seen = [], set()
    for position, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(f"record #{position} is not an object", path=path)
        key = id_key(record.get("id", position))
        key_name = media_key(record, task)
        if not isinstance(record.get("prompt"), str):
            raise DataError("needs a string 'prompt'", path=path, record_id=key)
        if record.get(key_name) in (None, "", []):
            raise DataError(f"needs its media under {key_name!r}", path=path, record_id=key)
        if key in seen:
            raise DataError("id used twice", path=path, record_id=key)
        seen.add(key)
        items.append(SiftItem(key, record["prompt"], record[key_name], record))
    return items


class _Session:
    """The models of one run, built on first use (a finished run loads nothing) or injected by the caller."""

    def __init__(self, args: PreferenceArguments, policy: Any, policy_family: str | None, judge: Any):
        self.args = args
        self.policy, self.policy_family, self.judge = policy, policy_family, judge
        self.candidates = 0

    def setup(self, _pending: Sequence[SiftItem] = ()) -> None:
        args = self.args
        if self.policy is None:
            self.policy, self.policy_family = _build_policy(args)
        self.policy_family = self.policy_family or args.policy_family or "qwen"
        if self.judge is None:
            self.judge = build_judge(args)

    def load(self, item: SiftItem) -> Any:
        from unifiedreward.media import resolve_media

        args = self.args
        kind = "image" if self.args.task == "image_understanding" else "video"
        root = args.image_folder if kind == "image" else (args.video_folder or args.image_folder)
        try:
            return resolve_media(item.media, kind, root=root, num_frames=args.num_frames, fps=args.video_fps,
                                 max_pixels=args.max_pixels)  # fmt: skip
        except UnifiedRewardError as err:
            return MediaFailure(str(err))

    def process(self, chunk: Sequence[SiftItem], loaded: Sequence[Any]) -> list[dict[str, Any]]:
        args = self.args
        out: list[dict[str, Any] | None] = [None] * len(chunk)
        live = []
        for position, (item, media) in enumerate(zip(chunk, loaded, strict=True)):
            if isinstance(media, MediaFailure):
                logger.warning("record %s: %s", item.id, media.error)
                out[position] = failed_record(item.id, "unreadable_media", media.error)
            else:
                live.append(position)
        video = args.task == "video_understanding"
        prompts = [policy_prompt(chunk[p].prompt, self.policy_family, **{"video" if video else "image": loaded[p]})
                   for p in live]  # fmt: skip
        seeds = [input_seed(args.seed, chunk[p].id) for p in live]
        sampling = GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                                    top_p=args.top_p, n=args.num_candidates)  # fmt: skip
        sampled = sample_candidates(self.policy, prompts, seeds, sampling)
        sets = []
        for p, (candidates, _) in zip(live, sampled, strict=True):
            item = chunk[p]
            context = {"video": loaded[p]} if video else {"image": loaded[p]}
            sets.append(CandidateSet(item.id, args.task, item.prompt, candidates, source=item.source, **context))
            self.candidates += len(candidates)
        config = strategy_config(args)
        if args.judge_per_input:  # each set in its own batches: results independent of chunking and sharding
            decisions = [sift([cset], self.judge, args.strategy, config)[0] for cset in sets]
        else:
            decisions = sift(sets, self.judge, args.strategy, config) if sets else []
        for p, cset, decision, (_, errors) in zip(live, sets, decisions, sampled, strict=True):
            line = decision_record(cset, decision)
            if errors:
                line["policy_errors"] = errors
                if line["reason"] == "too_few_candidates":  # the policy, not the data, left too few answers
                    line["reason"] = "policy_error"
            out[p] = line
        return out  # type: ignore[return-value]


def _build_policy(args: PreferenceArguments) -> tuple[Any, str]:
    """The policy sampler and its prompt family, from ``--policy`` or ``--policy_base_url``."""
    if args.policy_base_url:
        from unifiedreward.judge.openai_backend import OpenAIBackend

        backend = OpenAIBackend(args.policy_base_url, args.policy_model or args.policy or "policy",
                                max_concurrency=args.max_concurrency, timeout=args.timeout,
                                max_retries=args.max_retries)  # fmt: skip
        return backend, args.policy_family or "qwen"
    from unifiedreward.judge.hf_backend import TransformersBackend
    from unifiedreward.modeling import model_family

    logger.info("loading policy %s", args.policy)
    backend = TransformersBackend.from_pretrained(args.policy, batch_size=args.policy_batch_size, dtype=args.dtype,
                                                  device_map=args.device_map,
                                                  attn_implementation=args.attn_implementation)  # fmt: skip
    return backend, args.policy_family or model_family(backend.model)


def build_judge(args: Any) -> Any:
    """The reward judge from ``--reward_model`` or ``--judge_base_url`` (and the judge flags of
    :class:`PreferenceArguments`; the DiffusionDPO / VideoDPO sift arguments carry the same fields)."""
    from unifiedreward.judge.judge import RewardJudge

    if args.judge_base_url:
        from unifiedreward.judge.openai_backend import OpenAIBackend

        backend = OpenAIBackend(args.judge_base_url, args.judge_model or "UnifiedReward",
                                max_concurrency=args.max_concurrency, timeout=args.timeout,
                                max_retries=args.max_retries)  # fmt: skip
        family = args.judge_family or "qwen"
    else:
        from unifiedreward.judge.hf_backend import TransformersBackend
        from unifiedreward.modeling import model_family

        logger.info("loading reward model %s", args.reward_model)
        backend = TransformersBackend.from_pretrained(args.reward_model, batch_size=args.judge_batch_size,
                                                      dtype=args.dtype, device_map=args.device_map,
                                                      attn_implementation=args.attn_implementation)  # fmt: skip
        family = args.judge_family or model_family(backend.model)
    generation = GenerationConfig(max_new_tokens=args.judge_max_new_tokens)
    return RewardJudge(backend, family=family, version=args.judge_version, generation=generation, seed=args.seed)


def _write_outputs(files: dict[str, Path], log: list[dict[str, Any]], order: Sequence[str], **timing: Any) -> dict:
    """Write the pairs (kept lines, in input order) and the summary of a decision log; return the summary."""
    position = {key: i for i, key in enumerate(order)}
    log = sorted(log, key=lambda line: position[id_key(line["id"])])
    pairs = pairs_from_log(log)
    if files["pairs"].suffix == ".json":
        write_json_atomic(files["pairs"], pairs)
    else:
        write_jsonl_atomic(files["pairs"], pairs)
    summary = summarize(log, seconds=timing.get("seconds"))
    if timing.get("candidates_this_run") is not None and timing.get("seconds"):
        summary["candidates_per_second"] = timing["candidates_this_run"] / timing["seconds"]
    summary["pairs_file"] = str(files["pairs"])
    write_json_atomic(files["summary"], summary)
    return summary


_SHARD_FILE = re.compile(r"\.shard-(\d+)-of-(\d+)\.decisions\.jsonl$")


def _check_same_settings(paths: Sequence[Path]) -> None:
    """Refuse to merge shard logs written with different settings (other than ``shard``)."""
    seen: dict[str, Any] = {}
    for path in paths:
        stored = settings_path(path)
        if not stored.exists():
            continue
        values = {k: v for k, v in read_json(stored).items() if k != "shard"}
        if seen and values != seen["values"]:
            changed = sorted(k for k in set(values) | set(seen["values"]) if values.get(k) != seen["values"].get(k))
            raise DataError(f"shards were run with different settings ({', '.join(changed)}) than {seen['path']}",
                            path=path)  # fmt: skip
        seen = seen or {"values": values, "path": path}


def merge_shards(args: PreferenceArguments) -> dict[str, Any]:
    """Join every shard's decision log into the one-process files (module docstring); returns the summary."""
    files = output_files(args.output_path)
    stem = files["pairs"].stem
    found = {}
    for path in files["pairs"].parent.glob(f"{stem}.shard-*-of-*.decisions.jsonl"):
        match = _SHARD_FILE.search(path.name)
        if match and path.name.startswith(f"{stem}.shard-"):
            found[(int(match.group(1)), int(match.group(2)))] = path
    counts = {n for _, n in found}
    if len(counts) != 1:
        raise DataError(f"need the shard logs of one shard count, found {sorted(found)}", path=files["decisions"])
    (count,) = counts
    missing = [i for i in range(count) if (i, count) not in found]
    if missing:
        raise DataError(f"shards {missing} of {count} have no decision log", path=files["decisions"])
    order = [item.id for item in read_items(args.data_path, args.task)]
    paths = [found[(i, count)] for i in range(count)]
    _check_same_settings(paths)
    merge_jsonl(paths, files["decisions"], order=order)
    seconds = []
    for i in range(count):
        shard_summary = output_files(args.output_path, (i, count))["summary"]
        if shard_summary.exists():
            seconds.append(read_json(shard_summary).get("seconds") or 0.0)
    log = read_jsonl(files["decisions"])
    summary = _write_outputs(files, log, order, seconds=max(seconds) if seconds else None)
    summary["merged_shards"] = count
    return summary


def run_preference(
    args: PreferenceArguments, *, policy: Any = None, policy_family: str | None = None, judge: Any = None
) -> dict[str, Any]:
    """Run (or resume, or merge) one preference-construction job; returns its summary.

    Args:
        args: the flags.
        policy: a ready :class:`~unifiedreward.judge.base.Sampler` (else built from ``--policy`` /
            ``--policy_base_url`` when the first input is due).
        policy_family: the injected policy's prompt family (default ``--policy_family`` or ``"qwen"``).
        judge: a ready :class:`~unifiedreward.judge.RewardJudge` (else built from the flags).
    """
    check_arguments(args, policy_injected=policy is not None, judge_injected=judge is not None)
    if args.merge:
        return merge_shards(args)
    shard = parse_shard(args.shard)
    items = read_items(args.data_path, args.task)
    order = [item.id for item in items]
    if shard is not None:
        items = select_shard(items, *shard)
    files = output_files(args.output_path, shard)
    session = _Session(args, policy, policy_family, judge)
    settings = {key: getattr(args, key) for key in SETTINGS_KEYS}
    settings["strategy_config"] = dataclasses.asdict(strategy_config(args))
    stats = run_resumable(items, key=lambda item: item.id, output=files["decisions"], process=session.process,
                          load=session.load, setup=session.setup, chunk_size=args.chunk_size,
                          num_workers=args.num_workers, settings=settings, overwrite=args.overwrite,
                          desc="infer+sift", progress=args.progress)  # fmt: skip
    log = read_jsonl(files["decisions"])
    summary = _write_outputs(files, log, order, seconds=stats.seconds or None,
                             candidates_this_run=session.candidates)  # fmt: skip
    logger.info("%s: %d input(s), %d kept, dropped %s, %d judge call(s)", files["pairs"], summary["inputs"],
                summary["kept"], summary["dropped"], summary["judge_calls"])  # fmt: skip
    return summary


def main(argv: Sequence[str] | None = None, *, task: str | None = None) -> int:
    """Command-line entry (``preference_data_construction/*/infer+sift.py``); ``task`` fixes ``--task``."""
    from unifiedreward.args import parse_args

    argv = list(sys.argv[1:] if argv is None else argv)
    if task is not None:
        argv = ["--task", task, *argv]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    (args,) = parse_args([PreferenceArguments], argv, description=__doc__.split("\n\n")[0])
    try:
        summary = run_preference(args)
    except (UnifiedRewardError, ValueError) as err:
        logger.error("%s", err)
        return 2
    print(f"kept {summary['kept']} of {summary['inputs']} input(s) -> {summary['pairs_file']}")
    print(f"dropped: {summary['dropped']}; judge calls: {summary['judge_calls']}")
    return 0
