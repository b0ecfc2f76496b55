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

The whole file is validated before any model is loaded (:func:`read_requests`, :func:`check_templates`): bad JSON,
a missing or duplicate id, an unknown task or mode, a template that does not exist for the family, wrong text
fields or a wrong number of images/videos fail the run with every offending line number listed. Media files are
*not* opened at startup: one that fails to load gives that request an ``invalid`` record (``reason`` starts with
``media error:`` and names the file), never a crash and never a default verdict.

Output: one JSON object per request, appended and flushed every ``--chunk_size`` requests (see
:func:`result_record` for the fields). A run that is killed loses at most the chunk in flight; running the same
command again resumes: ids already in the output are skipped, and a truncated last line (a kill in the middle of a
write) is dropped, with a warning, and judged again. Records hold no timing, so a resumed run's output equals an
uninterrupted run's (as a set of records). Timing is in ``<output>.summary.json``.

Sharding: ``--shard i/n`` keeps the requests whose 0-based position among the input's records is ``i`` modulo
``n``; ``n`` processes with ``--shard 0/n`` ... ``--shard n-1/n`` and separate ``--output`` files cover every request
exactly once. ``--merge a.jsonl b.jsonl ... --output merged.jsonl --input requests.jsonl`` (:func:`merge_outputs`)
joins them in input order and fails on duplicate, unknown or missing ids.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import math
import os
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from unifiedreward.errors import MediaError, TemplateError, UnifiedRewardError
from unifiedreward.protocol import (
    VERSIONS,
    Mode,
    PairwiseResult,
    PointwiseResult,
    Task,
    TemplateSpec,
    fill_template,
    get_template,
    select_template,
)

logger = logging.getLogger(__name__)

#: Keys of an input line that are not template text fields.
RESERVED_KEYS: tuple[str, ...] = ("id", "task", "mode", "template", "images", "videos", "num_frames", "meta")

#: The fixed leading keys of every output record, in order; the result's other fields follow.
RECORD_KEYS: tuple[str, ...] = ("id", "task", "mode", "template", "status", "verdict", "score", "reason", "raw")

BACKENDS: tuple[str, ...] = ("transformers", "openai")
FAMILIES: tuple[str, ...] = ("qwen", "llava")
ORDERS: tuple[str, ...] = ("as_given", "random", "both")
SCORINGS: tuple[str, ...] = ("generate", "probabilities")
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")

#: Family used with ``--backend openai`` when ``--family`` is not given.
OPENAI_DEFAULT_FAMILY = "qwen"
#: Served model name used with ``--backend openai`` when ``--model`` is not given (upstream's --served-model-name).
OPENAI_DEFAULT_MODEL = "UnifiedReward"

_MAX_LISTED_ERRORS = 20

DESCRIPTION = (
    "Judge a JSONL file of requests with a reward model into a JSONL file of results. Resumable (ids already in "
    "--output are skipped), shardable (--shard i/n, then --merge). Input and output formats: docs/judge_cli.md."
)


class InputError(UnifiedRewardError):
    """The request file is malformed; the message lists every offending line (``file:line: why``)."""


class OutputError(UnifiedRewardError):
    """An existing output (or shard output to merge) cannot be used: corrupt, foreign ids, duplicates, missing ids."""


# ------------------------------------------------------------------------------------------------------ arguments
@dataclass
class BackendArguments:
    """Which judging backend to use and how to decode (shared by ``unifiedreward judge`` and the benchmark runner)."""

    backend: str = field(
        default="transformers",
        metadata={"help": "transformers (model in this process) or openai (an OpenAI-compatible server).",
                  "choices": list(BACKENDS)},
    )  # fmt: skip
    model: str | None = field(
        default=None,
        metadata={
            "help": "transformers: checkpoint path or hub id (required). openai: the served model name "
            f"(default {OPENAI_DEFAULT_MODEL!r})."
        },
    )
    dtype: str = field(default="auto", metadata={"help": "transformers: model dtype.", "choices": list(DTYPES)})
    device_map: str | None = field(
        default=None, metadata={"help": "transformers: e.g. 'auto' or 'cuda:0'. Default: CPU."}
    )
    attn_implementation: str | None = field(
        default=None, metadata={"help": "transformers: e.g. sdpa, eager, flash_attention_2. Default: transformers'."}
    )
    batch_size: int = field(default=8, metadata={"help": "transformers: prompts per forward pass."})
    base_url: str = field(
        default="http://localhost:8080/v1", metadata={"help": "openai: the server's API root (ends in /v1)."}
    )
    api_key: str | None = field(
        default=None, metadata={"help": "openai: bearer token. Default: $OPENAI_API_KEY, else 'EMPTY'."}
    )
    max_concurrency: int = field(default=16, metadata={"help": "openai: requests in flight at once."})
    timeout: float = field(default=120.0, metadata={"help": "openai: seconds per socket operation of a request."})
    max_retries: int = field(default=3, metadata={"help": "openai: retries of a transient failure (429, 5xx, ...)."})
    health_check: bool = field(
        default=True, metadata={"help": "openai: check at startup that the server serves --model."}
    )
    family: str | None = field(
        default=None,
        metadata={
            "help": "Prompt family. Default: from the checkpoint's config (transformers), "
            f"{OPENAI_DEFAULT_FAMILY!r} (openai; pass llava for LLaVA servers).",
            "choices": list(FAMILIES),
        },
    )
    version: str = field(
        default="1.0",
        metadata={
            "help": "Template generation (1.0, 1.5, 2.0, think, ...) used when a request names no template.",
            "choices": list(VERSIONS),
        },
    )
    max_new_tokens: int = field(default=512, metadata={"help": "Answer length cap (CoT versions need 1-2k)."})


@dataclass(kw_only=True)
class JudgeArguments(BackendArguments):
    """Flags of ``unifiedreward judge`` (every field is a ``--flag``; ``--config file.yaml`` sets defaults)."""

    input: str = field(metadata={"help": "JSONL file of requests, one per line (see docs/judge_cli.md)."})
    output: str = field(
        metadata={"help": "JSONL file of results. An existing file is resumed: ids already in it are skipped."}
    )
    media_root: str | None = field(
        default=None, metadata={"help": "Folder that relative media paths start from. Default: the input's folder."}
    )
    chunk_size: int = field(
        default=64,
        metadata={"help": "Requests judged and written together; a killed run loses at most one chunk."},
    )
    shard: str | None = field(
        default=None,
        metadata={"help": "'i/n': judge only requests whose position in the input is i modulo n (e.g. 0/4)."},
    )
    overwrite: bool = field(
        default=False, metadata={"help": "Delete an existing --output and start over instead of resuming."}
    )
    merge: list[str] | None = field(
        default=None,
        metadata={
            "help": "Merge mode: shard outputs to join into --output, in --input order (no judging). Fails on "
            "duplicate, unknown or missing ids."
        },
    )
    allow_missing: bool = field(
        default=False, metadata={"help": "Merge mode: write the merged file even if some input ids are missing."}
    )
    order: str = field(
        default="as_given",
        metadata={
            "help": "Pair order (position-bias control): as_given, random (seeded coin flip per pair), both "
            "(judge both orders and combine).",
            "choices": list(ORDERS),
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of --order random."})
    scoring: str = field(
        default="generate",
        metadata={"help": "generate (parse the answer text) or probabilities (score answers from logits).",
                  "choices": list(SCORINGS)},
    )  # fmt: skip
    num_frames: int = field(
        default=8, metadata={"help": "Frames sampled per video (a request's num_frames overrides it)."}
    )
    video_fps: float | None = field(
        default=None, metadata={"help": "Sample videos at this frame rate, capped at num_frames. Default: uniform."}
    )
    max_pixels: int | None = field(
        default=None, metadata={"help": "Downsize images and video frames to at most this many pixels."}
    )
    num_workers: int = field(
        default=4, metadata={"help": "Threads decoding media (the next chunk is decoded while one is judged)."}
    )
    progress: bool = field(default=True, metadata={"help": "Show a progress bar over requests (stderr)."})


# ---------------------------------------------------------------------------------------------------------- input
@dataclass(frozen=True)
class InputRecord:
    """One validated input line.

    Attributes:
        line: 1-based line number in the input file.
        index: 0-based position among the file's records (blank lines not counted); the shard rule uses it.
        id: the caller's id, as given (string or integer).
        task, mode: what is judged and how.
        template: an explicit template id, or ``None`` to select one from task/mode/family/version.
        images, videos: media paths as written in the file.
        fields: the template's text fields.
        num_frames: per-request frame count, or ``None`` for ``--num_frames``.
        meta: the ``meta`` value, copied to the output; ``None`` when absent.
    """

    line: int
    index: int
    id: str | int
    task: str
    mode: str
    template: str | None = None
    images: tuple[str, ...] = ()
    videos: tuple[str, ...] = ()
    fields: Mapping[str, Any] = field(default_factory=dict)
    num_frames: int | None = None
    meta: Any = None

    @property
    def key(self) -> str:
        return id_key(self.id)


def id_key(value: Any) -> str:
    """The identity of a request id: ``1`` and ``"1"`` are the same request (so they count as duplicates)."""
    return str(value)


_TASKS = tuple(task.value for task in Task)
_MODES = tuple(mode.value for mode in Mode)


def _raise_listed(error_type: type[UnifiedRewardError], header: str, errors: list[str]) -> None:
    listed = errors[:_MAX_LISTED_ERRORS]
    more = f"\n  ... and {len(errors) - len(listed)} more" if len(errors) > len(listed) else ""
    raise error_type(header + "\n  " + "\n  ".join(listed) + more)


def _parse_line(data: Any, line: int, index: int) -> tuple[InputRecord | None, list[str]]:
    """Validate one decoded line; return the record (``None`` if unusable) and the problems found."""
    if not isinstance(data, dict):
        return None, [f"expected a JSON object, got {type(data).__name__}"]
    problems: list[str] = []
    rid = data.get("id")
    if "id" not in data or rid is None:
        problems.append("missing 'id'")
    elif isinstance(rid, bool) or not isinstance(rid, (str, int)) or (isinstance(rid, str) and not rid.strip()):
        problems.append(f"'id' must be a non-empty string or an integer, got {rid!r}")
    for key, allowed in (("task", _TASKS), ("mode", _MODES)):
        value = data.get(key)
        if value is None:
            problems.append(f"missing {key!r}")
        elif value not in allowed:
            problems.append(f"unknown {key} {value!r} (expected one of {', '.join(allowed)})")
    template = data.get("template")
    if template is not None and not isinstance(template, str):
        problems.append(f"'template' must be a template id string, got {template!r}")
    media: dict[str, tuple[str, ...]] = {}
    for key in ("images", "videos"):
        value = data.get(key, [])
        if value is None:
            value = []
        if not isinstance(value, list) or not all(isinstance(p, str) and p.strip() for p in value):
            problems.append(f"{key!r} must be a list of file paths, got {value!r}")
            value = []
        media[key] = tuple(value)
    num_frames = data.get("num_frames")
    if num_frames is not None and (isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1):
        problems.append(f"'num_frames' must be a positive integer, got {num_frames!r}")
    fields: dict[str, Any] = {}
    for key, value in data.items():
        if key in RESERVED_KEYS:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            problems.append(f"text field {key!r} must be a string, got {json.dumps(value)[:60]}")
        else:
            fields[key] = value
    if problems:
        return None, problems
    record = InputRecord(
        line=line,
        index=index,
        id=rid,
        task=data["task"],
        mode=data["mode"],
        template=template,
        images=media["images"],
        videos=media["videos"],
        fields=fields,
        num_frames=num_frames,
        meta=data.get("meta"),
    )
    return record, []


def read_requests(path: str | os.PathLike) -> list[InputRecord]:
    """Read and validate a request file (structure only; see :func:`check_templates` for template checks).

    Args:
        path: the JSONL file.

    Returns:
        The records in file order.

    Raises:
        InputError: the file is missing or empty, or lines are malformed (bad JSON, missing/invalid/duplicate id,
            unknown task or mode, badly typed keys). The message names every offending line (first 20 listed).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input file {path} does not exist")
    records: list[InputRecord] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    index = 0
    with path.open(encoding="utf-8") as handle:
        for line_number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except ValueError as exc:
                errors.append(f"{path}:{line_number}: not valid JSON ({exc})")
                index += 1
                continue
            record, problems = _parse_line(data, line_number, index)
            index += 1
            errors.extend(f"{path}:{line_number}: {problem}" for problem in problems)
            if record is None:
                continue
            first = seen.setdefault(record.key, line_number)
            if first != line_number:
                errors.append(f"{path}:{line_number}: duplicate id {record.id!r} (first on line {first})")
                continue
            records.append(record)
    if errors:
        _raise_listed(InputError, f"{path}: {len(errors)} problem(s); nothing was judged:", errors)
    if not records:
        raise InputError(f"input file {path} holds no requests")
    return records


def template_of(record: InputRecord, family: str, version: str) -> TemplateSpec:
    """The template a record is judged with (its own ``template``, else upstream's for task/mode/family/version)."""
    if record.template is not None:
        return get_template(record.template)
    return select_template(record.task, record.mode, family, version)


def check_templates(records: Sequence[InputRecord], family: str, version: str, source: str | os.PathLike) -> None:
    """Check, without opening media, that every record can be rendered: its template exists for ``family``, its
    text fields are the template's, and it has the number of images and videos the template places.

    Raises:
        InputError: naming every offending line.
    """
    errors: list[str] = []
    specs: dict[tuple[Any, ...], TemplateSpec | str] = {}
    field_checks: dict[tuple[str, tuple[str, ...]], str | None] = {}
    for record in records:
        spec_key = (record.template, record.task, record.mode)
        if spec_key not in specs:
            try:
                spec = template_of(record, family, version)
                if family not in spec.families:
                    raise TemplateError(
                        f"template {spec.id} is not defined for {family} checkpoints ({spec.families})"
                    )
                specs[spec_key] = spec
            except TemplateError as exc:
                specs[spec_key] = str(exc)
        spec = specs[spec_key]
        where = f"{source}:{record.line}"
        if isinstance(spec, str):
            errors.append(f"{where}: {spec}")
            continue
        if record.template is not None and (spec.task.value, spec.mode.value) != (record.task, record.mode):
            errors.append(
                f"{where}: template {spec.id} is a {spec.task.value}/{spec.mode.value} template, but the line says "
                f"{record.task}/{record.mode}"
            )
            continue
        want_images, want_videos = spec.media.count("image"), spec.media.count("video")
        if (len(record.images), len(record.videos)) != (want_images, want_videos):
            errors.append(
                f"{where}: template {spec.id} takes {want_images} image(s) and {want_videos} video(s); the line "
                f"gives {len(record.images)} and {len(record.videos)}"
            )
            continue
        names = tuple(sorted(record.fields))
        if (spec.id, names) not in field_checks:
            try:
                fill_template(spec, **dict.fromkeys(names, "x"))
                field_checks[(spec.id, names)] = None
            except TemplateError as exc:
                field_checks[(spec.id, names)] = str(exc)
        problem = field_checks[(spec.id, names)]
        if problem is not None:
            errors.append(f"{where}: {problem}")
    if errors:
        _raise_listed(
            InputError,
            f"{source}: {len(errors)} request(s) cannot be rendered (family={family}, version={version}):",
            errors,
        )


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``; ``None`` -> ``None``.

    Raises:
        ValueError: a malformed shard.
    """
    if text is None or str(text).strip() == "":
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text}: need 0 <= i < n")
    return index, count


def select_shard(records: Sequence[InputRecord], index: int, count: int) -> list[InputRecord]:
    """The records of shard ``index`` of ``count``: those whose position in the input is ``index`` modulo ``count``.

    The position (:attr:`InputRecord.index`) counts records in file order, blank lines excluded, so the split depends
    only on the input file, and the ``count`` shards partition it.
    """
    return [record for record in records if record.index % count == index]


# --------------------------------------------------------------------------------------------------------- output
def to_jsonable(value: Any) -> Any:
    """Dataclasses -> dicts, enums -> their values (also as dict keys), tuples -> lists, numpy scalars -> Python."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(to_jsonable(k)): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        try:
            return value.item()
        except (TypeError, ValueError):
            return str(value)
    return value


def result_record(record: InputRecord, template_id: str | None, result: Any) -> dict[str, Any]:
    """The output line of one request.

    Keys, in order: ``id``, ``task``, ``mode``, ``template`` (the id used), ``status`` (``"valid"`` / ``"invalid"``),
    ``verdict`` (``"first"`` / ``"second"`` / ``"tie"`` or ``null``; ``null`` for point scores), ``score`` (a float
    or ``null``; ``null`` for pairwise results), ``reason`` (why it is invalid, else ``null``), ``raw`` (the model's
    answer); then every other field of the result dataclass (e.g. ``think``, ``dimension_scores``, ``scores``,
    ``probabilities``, ``score_range``, ...; new result fields appear automatically), then ``meta`` when the input
    line had one.
    """
    data = to_jsonable(result)
    out: dict[str, Any] = {
        "id": record.id,
        "task": record.task,
        "mode": record.mode,
        "template": template_id,
        "status": getattr(result, "status", "valid" if getattr(result, "valid", False) else "invalid"),
        "verdict": data.pop("verdict", None),
        "score": data.pop("score", None),
        "reason": data.pop("reason", None),
        "raw": data.pop("raw", None),
    }
    for key, value in data.items():
        out.setdefault(key, value)
    if record.meta is not None:
        out["meta"] = to_jsonable(record.meta)
    return out


def failed_result(mode: str, reason: str) -> PairwiseResult | PointwiseResult:
    """An *invalid* result of the right type for ``mode`` (no verdict, no score, empty answer)."""
    if mode == Mode.POINT_SCORE.value:
        return PointwiseResult(None, "", reason=reason)
    return PairwiseResult(None, "", reason=reason)


def _decode_output_line(raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) and "id" in data else None


def read_output(path: str | os.PathLike, *, repair: bool = False) -> list[dict[str, Any]]:
    """Read a results file.

    Args:
        path: the JSONL output (a missing file reads as empty).
        repair: if the *last* line is unreadable (a run killed while writing), drop it, rewrite the file without it
            and log a warning; a complete last line without its final newline gets one. Without ``repair`` such a
            file is an error.

    Returns:
        The records in file order.

    Raises:
        OutputError: an unreadable line other than the last one (or the last one without ``repair``).
    """
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    numbered = [(number, line) for number, line in enumerate(lines, 1) if line.strip()]
    records: list[dict[str, Any]] = []
    truncated = False
    for position, (number, line) in enumerate(numbered):
        record = _decode_output_line(line)
        if record is not None:
            records.append(record)
            continue
        if position == len(numbered) - 1 and repair:
            logger.warning(
                "%s: line %d is incomplete (the previous run was interrupted while writing): dropping it; its "
                "request will be judged again",
                path,
                number,
            )
            truncated = True
            break
        last = (
            " (the last line: an interrupted write; rerun the judge on this output to repair it)"
            if (position == len(numbered) - 1)
            else ""
        )
        raise OutputError(f"{path}:{number}: not a JSON result record{last}: {line[:80]!r}")
    if repair and (truncated or (data and not data.endswith(b"\n"))):
        write_jsonl_atomic(path, records)
    return records


def write_jsonl_atomic(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Write ``records`` as JSONL to ``path`` via a temporary file and an atomic rename (no half-written file)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def summary_path(output: str | os.PathLike) -> Path:
    """``<output>.summary.json``."""
    output = Path(output)
    return output.with_name(output.name + ".summary.json")


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def reason_group(reason: str) -> str:
    """A reason without its specifics, for counting: the text before the first ``": "``, numbers replaced by ``N``
    (``"media error: cannot read media a.png: ..."`` -> ``"media error"``, ``"score 7 outside (1, 5)"`` ->
    ``"score N outside (N, N)"``)."""
    head = reason.split(": ", 1)[0].strip()
    return _NUMBER.sub("N", head)[:120] or "(no reason)"


def summarize_records(records: Iterable[Mapping[str, Any]], *, top_reasons: int = 10) -> dict[str, Any]:
    """Counts over result records: per status, per verdict, per ``task/mode`` (with the mean valid score of point
    scores), and the most frequent reasons of non-valid records (grouped by :func:`reason_group`, one full example
    each). ``invalid`` counts every record whose status is not ``"valid"`` (``statuses`` splits them, e.g.
    ``"inconsistent"`` for ``--order both``)."""
    statuses: Counter[str] = Counter()
    verdicts: Counter[str] = Counter({"first": 0, "second": 0, "tie": 0})
    groups: dict[str, dict[str, Any]] = {}
    score_lists: dict[str, list[float]] = defaultdict(list)
    reasons: Counter[str] = Counter()
    examples: dict[str, str] = {}
    total = 0
    for record in records:
        total += 1
        status = str(record.get("status"))
        statuses[status] += 1
        name = f"{record.get('task')}/{record.get('mode')}"
        group = groups.setdefault(name, {"total": 0, "valid": 0, "invalid": 0, "statuses": Counter()})
        group["total"] += 1
        group["valid" if status == "valid" else "invalid"] += 1
        group["statuses"][status] += 1
        verdict = record.get("verdict")
        if verdict is not None:
            verdicts[str(verdict)] += 1
            group.setdefault("verdicts", {"first": 0, "second": 0, "tie": 0})
            group["verdicts"][str(verdict)] = group["verdicts"].get(str(verdict), 0) + 1
        score = record.get("score")
        if status == "valid" and isinstance(score, (int, float)) and not isinstance(score, bool):
            score_lists[name].append(float(score))
        if status != "valid":
            reason = str(record.get("reason") or "(no reason)")
            key = reason_group(reason)
            reasons[key] += 1
            examples.setdefault(key, reason)
    for name, scores in score_lists.items():
        groups[name]["mean_score"] = round(sum(scores) / len(scores), 6)
    for group in groups.values():
        group["statuses"] = dict(sorted(group["statuses"].items()))
    return {
        "total": total,
        "valid": statuses.get("valid", 0),
        "invalid": total - statuses.get("valid", 0),
        "statuses": dict(sorted(statuses.items())),
        "verdicts": dict(verdicts),
        "by_task_mode": dict(sorted(groups.items())),
        "invalid_reasons": [
            {"reason": key, "count": count, "example": examples[key][:300]}
            for key, count in reasons.most_common(top_reasons)
        ],
    }


# --------------------------------------------------------------------------------------------------------- media
@dataclass(frozen=True)
class MediaLoader:
    """Loads a record's media from disk (``MediaError`` -> a reason string, never an exception)."""

    root: Path
    num_frames: int
    fps: float | None = None
    max_pixels: int | None = None

    def resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.root / candidate

    def load(self, record: InputRecord) -> tuple[list[Any], list[Any], str | None]:
        """``(images, videos, None)``, or ``([], [], "media error: ...")`` if any file fails to load."""
        from unifiedreward.media import load_image, load_video

        try:
            images = [load_image(self.resolve(p), max_pixels=self.max_pixels) for p in record.images]
            frames = record.num_frames or self.num_frames
            videos = [
                load_video(self.resolve(p), num_frames=frames, fps=self.fps, max_pixels=self.max_pixels)
                for p in record.videos
            ]
        except MediaError as exc:
            return [], [], f"media error: {exc}"
        return images, videos, None


# ------------------------------------------------------------------------------------------------------ judging
def judge_options(args: JudgeArguments, judge_type: type | None = None) -> dict[str, Any]:
    """The ``order`` / ``seed`` / ``scoring`` keywords to pass to ``RewardJudge``, as far as it accepts them.

    Raises:
        UnifiedRewardError: a non-default value was asked for that this ``RewardJudge`` does not support.
    """
    if judge_type is None:
        from unifiedreward.judge.judge import RewardJudge as judge_type
    parameters = inspect.signature(judge_type.__init__).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    wanted = {"order": (args.order, "as_given"), "seed": (args.seed, 0), "scoring": (args.scoring, "generate")}
    options: dict[str, Any] = {}
    for name, (value, default) in wanted.items():
        if name in parameters or accepts_any:
            options[name] = value
        elif value != default:
            raise UnifiedRewardError(f"--{name} {value} is not supported by this version of RewardJudge")
    return options


def _read_model_family(model: str) -> str | None:
    """The family of a checkpoint from its config alone (no weights); ``None`` if the config cannot be read."""
    try:
        from transformers import PretrainedConfig

        from unifiedreward.modeling import model_family

        config, _ = PretrainedConfig.get_config_dict(model)
        return model_family(config)
    except Exception as exc:  # noqa: BLE001 - fall back to loading the model, whose loader reports errors well
        logger.debug("cannot read the family of %s from its config: %s", model, exc)
        return None


def resolve_family(args: JudgeArguments, backend: Any = None) -> str:
    """``--family``, else: the injected backend's model, the checkpoint's config (transformers), or
    :data:`OPENAI_DEFAULT_FAMILY` (openai, or an injected backend without a model)."""
    if args.family:
        return args.family
    model = getattr(backend, "model", None) if backend is not None else None
    if model is not None and not isinstance(model, str):
        from unifiedreward.modeling import model_family

        return model_family(model)
    if backend is None and args.backend == "transformers" and args.model:
        family = _read_model_family(args.model)
        if family is not None:
            logger.info("prompt family %s (from the config of %s)", family, args.model)
            return family
        return ""  # decided after loading the model
    logger.info("prompt family %s (default; pass --family llava for LLaVA checkpoints)", OPENAI_DEFAULT_FAMILY)
    return OPENAI_DEFAULT_FAMILY


def build_backend(args: JudgeArguments) -> Any:
    """The backend the flags describe (loads the model for ``transformers``; checks the server for ``openai``)."""
    if args.backend == "transformers":
        from unifiedreward.judge.hf_backend import TransformersBackend

        logger.info("loading %s", args.model)
        return TransformersBackend.from_pretrained(
            args.model,
            batch_size=args.batch_size,
            dtype=args.dtype,
            device_map=args.device_map,
            attn_implementation=args.attn_implementation,
        )
    from unifiedreward.judge.openai_backend import OpenAIBackend

    backend = OpenAIBackend(
        args.base_url,
        args.model or OPENAI_DEFAULT_MODEL,
        api_key=args.api_key,
        max_concurrency=args.max_concurrency,
        timeout=args.timeout,
        max_retries=args.max_retries,
    )
    if args.health_check:
        entry = backend.health_check()
        logger.info("server %s serves %s", args.base_url, entry.get("id"))
    return backend


def _check_args(args: JudgeArguments, *, injected: bool = False) -> None:
    checks = [
        (args.backend in BACKENDS, f"--backend must be one of {BACKENDS}"),
        (args.chunk_size >= 1, "--chunk_size must be >= 1"),
        (args.batch_size >= 1, "--batch_size must be >= 1"),
        (args.num_frames >= 1, "--num_frames must be >= 1"),
        (args.num_workers >= 0, "--num_workers must be >= 0"),
        (args.max_new_tokens >= 1, "--max_new_tokens must be >= 1"),
        (args.order in ORDERS, f"--order must be one of {ORDERS}"),
        (args.scoring in SCORINGS, f"--scoring must be one of {SCORINGS}"),
        (args.family in (None, *FAMILIES), f"--family must be one of {FAMILIES}"),
        (args.version in VERSIONS, f"--version must be one of {VERSIONS}"),
        (
            injected or args.backend != "transformers" or bool(args.model),
            "--model is required with --backend transformers",
        ),
        (Path(args.input).resolve() != Path(args.output).resolve(), "--output must differ from --input"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def _load_done(output: Path, shard: Sequence[InputRecord], shard_text: str | None) -> set[str]:
    """Ids of ``shard`` already in ``output`` (repairing a truncated last line); checks the output belongs here."""
    records = read_output(output, repair=True)
    wanted = {record.key for record in shard}
    done: set[str] = set()
    for record in records:
        key = id_key(record["id"])
        if key in done:
            raise OutputError(f"{output} holds id {record['id']!r} twice: not a file this command wrote")
        if key not in wanted:
            where = f"shard {shard_text} of the input" if shard_text else "the input"
            raise OutputError(
                f"{output} holds id {record['id']!r}, which is not in {where}: wrong --output, --input or --shard? "
                "(use --overwrite to start over)"
            )
        done.add(key)
    return done


def _judge_chunk(judge: Any, chunk: Sequence[InputRecord], loaded: Sequence[tuple]) -> list[dict[str, Any]]:
    from unifiedreward.judge.judge import JudgeRequest

    requests: list[JudgeRequest] = []
    live: list[int] = []
    for position, (record, (images, videos, error)) in enumerate(zip(chunk, loaded, strict=True)):
        if error is None:
            live.append(position)
            requests.append(
                JudgeRequest(record.task, record.mode, images=images, videos=videos, fields=dict(record.fields),
                             template=record.template, id=record.id)
            )  # fmt: skip
    results = judge.judge(requests) if requests else []
    if len(results) != len(requests):
        raise UnifiedRewardError(f"the judge returned {len(results)} results for {len(requests)} requests")
    by_position = dict(zip(live, zip(requests, results, strict=True), strict=True))
    lines = []
    for position, record in enumerate(chunk):
        if position in by_position:
            request, result = by_position[position]
            try:
                template_id = judge.template_for(request).id
            except TemplateError:
                template_id = record.template
        else:
            result = failed_result(record.mode, loaded[position][2])
            try:
                template_id = template_of(record, judge.family, judge.version).id
            except TemplateError:
                template_id = record.template
        lines.append(result_record(record, template_id, result))
    return lines


def _judge_pending(
    judge: Any, pending: Sequence[InputRecord], args: JudgeArguments, output: Path, loader: MediaLoader
) -> int:
    """Judge ``pending`` chunk by chunk, appending each chunk's records to ``output``; returns how many."""
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    chunks = [pending[i : i + args.chunk_size] for i in range(0, len(pending), args.chunk_size)]
    pool = ThreadPoolExecutor(max_workers=args.num_workers, thread_name_prefix="media") if args.num_workers else None

    def submit(chunk: Sequence[InputRecord]) -> list[Future] | None:
        return [pool.submit(loader.load, record) for record in chunk] if pool is not None else None

    written = 0
    bar = tqdm(total=len(pending), desc="judging", unit="req", disable=not args.progress, file=sys.stderr)
    try:
        with logging_redirect_tqdm(), output.open("a", encoding="utf-8") as handle:
            futures = submit(chunks[0])
            for number, chunk in enumerate(chunks):
                loaded = [f.result() for f in futures] if futures is not None else [loader.load(r) for r in chunk]
                futures = submit(chunks[number + 1]) if number + 1 < len(chunks) else None  # decode ahead
                lines = _judge_chunk(judge, chunk, loaded)
                handle.write("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
                handle.flush()
                os.fsync(handle.fileno())
                written += len(lines)
                bar.update(len(lines))
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return written


def run_judge(args: JudgeArguments, *, backend: Any = None) -> dict[str, Any]:
    """Judge ``args.input`` into ``args.output`` (resuming it), write ``<output>.summary.json`` and return it.

    Order of work: validate the whole input file and the templates (no model loaded yet), read the existing output
    (resume), then load the model or check the server only if something is left to judge.

    Args:
        args: the command's flags.
        backend: a ready :class:`~unifiedreward.judge.base.Backend` to use instead of building one from the flags
            (tests, or callers holding a loaded model). Its family is ``--family``, else the family of its ``model``
            attribute, else ``"qwen"``.

    Returns:
        The summary: ``input``, ``output``, ``shard``, ``family``, ``version``, ``requests_in_input``,
        ``requests_in_shard``, ``skipped_done`` (already in the output), ``judged`` (this run), ``wall_s`` (this
        run, model loading included), ``judge_s`` (the judging loop), ``requests_per_s`` (``judged / judge_s``),
        and ``results`` (:func:`summarize_records` over the whole output).

    Raises:
        InputError: a malformed input file (nothing judged, no model loaded).
        OutputError: the existing output is corrupt or belongs to another input/shard.
        ValueError: invalid flags.
        UnifiedRewardError: the model cannot be loaded or the server is not usable.
    """
    start = time.perf_counter()
    _check_args(args, injected=backend is not None)
    backend_name = args.backend if backend is None else type(backend).__name__
    input_path, output = Path(args.input), Path(args.output)
    shard = parse_shard(args.shard)
    records = read_requests(input_path)
    mine = select_shard(records, *shard) if shard else records
    family = resolve_family(args, backend)
    if family:
        check_templates(records, family, args.version, input_path)
    options = judge_options(args)
    if args.overwrite:
        for stale in (output, summary_path(output)):
            if stale.exists():
                logger.info("--overwrite: deleting %s", stale)
                stale.unlink()
    output.parent.mkdir(parents=True, exist_ok=True)
    done = _load_done(output, mine, args.shard)
    pending = [record for record in mine if record.key not in done]
    logger.info(
        "%d request(s) in %s%s: %d already in %s, %d to judge",
        len(mine), input_path, f" (shard {args.shard} of {len(records)})" if shard else "", len(done), output,
        len(pending),
    )  # fmt: skip

    judged, judge_s = 0, 0.0
    if pending:
        if backend is None:
            backend = build_backend(args)
        if not family:
            from unifiedreward.modeling import model_family

            family = model_family(backend.model)
            logger.info("prompt family %s (from the loaded model)", family)
            check_templates(records, family, args.version, input_path)
        from unifiedreward.judge.base import GenerationConfig
        from unifiedreward.judge.judge import RewardJudge

        judge = RewardJudge(
            backend,
            family=family,
            version=args.version,
            generation=GenerationConfig(max_new_tokens=args.max_new_tokens),
            **options,
        )
        root = Path(args.media_root) if args.media_root else input_path.resolve().parent
        loader = MediaLoader(root, args.num_frames, args.video_fps, args.max_pixels)
        loop_start = time.perf_counter()
        judged = _judge_pending(judge, pending, args, output, loader)
        judge_s = time.perf_counter() - loop_start

    summary = {
        "input": str(input_path),
        "output": str(output),
        "shard": args.shard,
        "backend": backend_name,
        "model": args.model,
        "family": family or None,
        "version": args.version,
        "order": args.order,
        "scoring": args.scoring,
        "requests_in_input": len(records),
        "requests_in_shard": len(mine),
        "skipped_done": len(done),
        "judged": judged,
        "wall_s": round(time.perf_counter() - start, 3),
        "judge_s": round(judge_s, 3),
        "requests_per_s": round(judged / judge_s, 3) if judge_s > 0 else None,
        "results": summarize_records(read_output(output)),
    }
    summary_path(output).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


# --------------------------------------------------------------------------------------------------------- merge
def merge_outputs(
    paths: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    input: str | os.PathLike,
    *,
    allow_missing: bool = False,
) -> dict[str, Any]:
    """Join shard outputs into one file in input order, and write ``<output>.summary.json``.

    Args:
        paths: the shard outputs.
        output: the merged file (written atomically; must not be one of ``paths``).
        input: the request file the shards were judged from.
        allow_missing: write the merged file even if input ids are missing (logged); otherwise that is an error.

    Returns:
        The summary: ``merged_files``, ``requests_in_input``, ``records``, ``missing`` (count), ``missing_ids``
        (first 20) and ``results`` (:func:`summarize_records`).

    Raises:
        OutputError: an unreadable line, an id twice (across or within files), an id not in the input, or missing
            ids without ``allow_missing``. Nothing is written then.
    """
    if not paths:
        raise ValueError("nothing to merge")
    output = Path(output)
    sources = [Path(p) for p in paths]
    if output.resolve() in {p.resolve() for p in sources}:
        raise ValueError(f"the merged --output {output} is also one of the files to merge")
    requests = read_requests(input)
    position = {record.key: record.index for record in requests}
    found: dict[str, tuple[dict[str, Any], Path]] = {}
    errors: list[str] = []
    for source in sources:
        if not source.is_file():
            raise OutputError(f"shard output {source} does not exist")
        for record in read_output(source):
            key = id_key(record["id"])
            if key not in position:
                errors.append(f"{source}: id {record['id']!r} is not in {input}")
            elif key in found:
                errors.append(f"{source}: id {record['id']!r} is already in {found[key][1]}")
            else:
                found[key] = (record, source)
    if errors:
        _raise_listed(OutputError, f"cannot merge {len(sources)} file(s): {len(errors)} problem(s):", errors)
    missing = [record.id for record in requests if record.key not in found]
    if missing:
        message = f"{len(missing)} of {len(requests)} input id(s) are in none of the files, e.g. {missing[:10]}"
        if not allow_missing:
            raise OutputError(message + " (finish the shards, or pass --allow_missing)")
        logger.warning("%s; writing the merged file anyway (--allow_missing)", message)
    ordered = [found[key][0] for key in sorted(found, key=position.__getitem__)]
    output.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(output, ordered)
    summary = {
        "merged_files": [str(p) for p in sources],
        "input": str(input),
        "output": str(output),
        "requests_in_input": len(requests),
        "records": len(ordered),
        "missing": len(missing),
        "missing_ids": missing[:_MAX_LISTED_ERRORS],
        "results": summarize_records(ordered),
    }
    summary_path(output).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


# ----------------------------------------------------------------------------------------------------------- CLI
def format_summary(summary: Mapping[str, Any]) -> str:
    """A few human-readable lines of a :func:`run_judge` or :func:`merge_outputs` summary."""
    results = summary["results"]
    lines = []
    if "merged_files" in summary:
        lines.append(
            f"merged {len(summary['merged_files'])} file(s) into {summary['output']}: {summary['records']} records, "
            f"{summary['missing']} missing"
        )
    else:
        rate = f", {summary['requests_per_s']} req/s" if summary.get("requests_per_s") else ""
        lines.append(
            f"judged {summary['judged']} request(s) in {summary['wall_s']} s ({summary['judge_s']} s judging{rate}); "
            f"{summary['skipped_done']} already done"
        )
    statuses = ", ".join(f"{count} {status}" for status, count in results["statuses"].items())
    lines.append(f"{summary['output']}: {results['total']} records ({statuses or 'none'})")
    for name, group in results["by_task_mode"].items():
        detail = f"  {name}: {group['total']} ({group['valid']} valid"
        if "verdicts" in group:
            detail += ", " + ", ".join(f"{k} {v}" for k, v in group["verdicts"].items())
        if "mean_score" in group:
            detail += f", mean score {group['mean_score']:.3f}"
        lines.append(detail + ")")
    for item in results["invalid_reasons"]:
        lines.append(f"  not valid x{item['count']}: {item['reason']} (e.g. {item['example'][:100]!r})")
    lines.append(f"summary: {summary_path(summary['output'])}")
    return "\n".join(lines)


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
