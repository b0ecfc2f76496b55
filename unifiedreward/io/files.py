"""JSON and JSONL files: strict reading (errors name ``file:line``), crash-safe appending and atomic rewriting.

Durability rules, shared by every job of the package:

* :func:`append_jsonl` writes whole lines, then ``flush`` + ``os.fsync``: after it returns, the lines survive a
  crash of the process (or of the machine).
* :func:`write_jsonl_atomic` / :func:`write_json_atomic` write a temporary file beside the target, ``fsync`` it and
  ``os.replace`` it over the target (then ``fsync`` the folder where the OS allows it): a reader sees the old file
  or the new one, never half of one.
* A process killed in the middle of :func:`append_jsonl` can leave an incomplete *last* line. :func:`read_jsonl`
  with ``repair=True`` drops it (with a warning) so that the record is produced again; damage anywhere else is never
  guessed at and raises :class:`~unifiedreward.errors.DataError` naming ``file:line``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import IO, Any

from unifiedreward.errors import DataError

logger = logging.getLogger(__name__)

__all__ = ["append_jsonl", "read_json", "read_jsonl", "to_jsonable", "write_json_atomic", "write_jsonl_atomic"]


def _dumps_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def _decode_line(raw: bytes, require_id: bool) -> dict[str, Any] | None:
    """The JSON object of one line, or ``None`` if the line is not one (or has no ``id`` when required)."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or (require_id and "id" not in data):
        return None
    return data


def read_jsonl(path: str | os.PathLike, *, repair: bool = False, require_id: bool = True) -> list[dict[str, Any]]:
    """Read a JSONL file of JSON objects (blank lines are skipped).

    Args:
        path: the file; a missing file reads as ``[]``.
        repair: if the *last* non-blank line is unreadable (a process killed while appending it), drop it, rewrite
            the file atomically without it and log a warning; a complete last line that lacks its final newline
            gets one (also an atomic rewrite). Without ``repair`` such a file is an error and is not touched.
        require_id: every line must be an object with an ``"id"`` key (records of a resumable job).

    Returns:
        The objects in file order.

    Raises:
        DataError: ``"<path>:<line>: not a JSON record ..."`` for an unreadable line other than a repaired last one.
    """
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    numbered = [(number, line) for number, line in enumerate(data.split(b"\n"), 1) if line.strip()]
    what = "JSON object with an 'id'" if require_id else "JSON object"
    records: list[dict[str, Any]] = []
    dropped = False
    for position, (number, line) in enumerate(numbered):
        record = _decode_line(line, require_id)
        if record is not None:
            records.append(record)
            continue
        is_last = position == len(numbered) - 1
        if is_last and repair:
            logger.warning(
                "%s: line %d is incomplete (the previous run was interrupted while writing it): dropping it; its "
                "item will be processed again",
                path,
                number,
            )
            dropped = True
            break
        hint = " (the last line: an interrupted write; resuming the job repairs it)" if is_last else ""
        raise DataError(f"not a {what}{hint}: {line[:80]!r}", path=f"{path}:{number}")
    if repair and (dropped or (data and not data.endswith(b"\n"))):
        write_jsonl_atomic(path, records)
    return records


def append_jsonl(handle: IO[str], records: Iterable[Mapping[str, Any]]) -> None:
    """Append ``records`` as JSON lines to an open text ``handle``, then ``flush`` and ``os.fsync`` it.

    The lines are written with one ``write`` call, so a crash leaves at most the last of them incomplete.
    """
    handle.write("".join(_dumps_line(record) for record in records))
    handle.flush()
    os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _write_atomic(path: Path, text_chunks: Iterable[str]) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            for chunk in text_chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def write_jsonl_atomic(path: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> None:
    """Replace ``path`` by ``records`` as JSONL (temporary file + ``fsync`` + ``os.replace``)."""
    _write_atomic(Path(path), (_dumps_line(record) for record in records))


def write_json_atomic(path: str | os.PathLike, data: Any, *, indent: int | None = 2) -> None:
    """Replace ``path`` by ``data`` as JSON plus a final newline (temporary file + ``fsync`` + ``os.replace``).

    ``data`` must be JSON-serializable as it is; pass it through :func:`to_jsonable` first if it holds
    dataclasses, enums or numpy scalars.
    """
    _write_atomic(Path(path), [json.dumps(data, indent=indent, ensure_ascii=False) + "\n"])


def read_json(path: str | os.PathLike, *, what: str = "file") -> Any:
    """Read one JSON document.

    Args:
        path: the file.
        what: what the file is, for messages (e.g. ``"settings file"``).

    Raises:
        DataError: the file is missing or not valid JSON (naming the file, and the line and column).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} does not exist", path=path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} is not UTF-8 text ({exc})", path=path) from exc
    except ValueError as exc:
        raise DataError(f"{what} is not valid JSON ({exc})", path=path) from exc


def to_jsonable(value: Any) -> Any:
    """A JSON-ready copy of ``value``: dataclasses -> dicts, enums -> their values (also as dict keys), tuples and
    sets -> lists, numpy / torch scalars -> Python numbers, non-finite floats -> ``None``."""
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
            return to_jsonable(value.item())
        except (TypeError, ValueError):
            return str(value)
    return value
