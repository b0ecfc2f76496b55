"""Request files of ``unifiedreward judge``: reading and validating them, and choosing each request's template.

One JSON object per line (blank lines are skipped); the format is in ``docs/judge_cli.md`` and the module docstring
of :mod:`unifiedreward.judge.cli`. The whole file is validated before any model is loaded: :func:`read_requests`
checks the structure of every line, :func:`check_templates` that every request can be rendered. Both list every
offending ``file:line`` in one :class:`~unifiedreward.errors.DataError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unifiedreward.errors import DataError, TemplateError, list_problems
from unifiedreward.io.keys import id_key
from unifiedreward.protocol import Mode, Task, TemplateSpec, fill_template, get_template, select_template

__all__ = ["RESERVED_KEYS", "InputRecord", "check_templates", "read_requests", "template_of"]

#: Keys of an input line that are not template text fields.
RESERVED_KEYS: tuple[str, ...] = ("id", "task", "mode", "template", "images", "videos", "num_frames", "meta")


@dataclass(frozen=True)
class InputRecord:
    """One validated input line.

    Attributes:
        line: 1-based line number in the input file.
        index: 0-based position among the file's records (blank lines not counted), which is also its position in
            the list :func:`read_requests` returns; ``--shard i/n`` keeps the records with ``index % n == i``.
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


_TASKS = tuple(task.value for task in Task)
_MODES = tuple(mode.value for mode in Mode)


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
        DataError: the file is missing or empty, or lines are malformed (bad JSON, missing/invalid/duplicate id,
            unknown task or mode, badly typed keys). The message names every offending line (first 20 listed).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("input file does not exist", path=path)
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
        raise DataError(list_problems(f"{path}: {len(errors)} problem(s); nothing was judged:", errors))
    if not records:
        raise DataError("input file holds no requests", path=path)
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
        DataError: naming every offending line.
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
        header = f"{source}: {len(errors)} request(s) cannot be rendered (family={family}, version={version}):"
        raise DataError(list_problems(header, errors))
