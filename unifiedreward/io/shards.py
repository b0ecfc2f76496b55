"""Sharding: split a job's items over ``n`` processes, name their outputs, and merge the outputs back.

The split rule is positional and depends only on the item list: shard ``i`` of ``n`` (0-based) takes the items at
positions ``i, i + n, i + 2n, ...`` (``items[i::n]``). The ``n`` shards partition the items, every shard gets
``len(items) // n`` or one more, and a shard's items keep their input order.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from unifiedreward.errors import DataError, list_problems
from unifiedreward.io.files import read_jsonl, write_jsonl_atomic
from unifiedreward.io.keys import id_key

logger = logging.getLogger(__name__)

__all__ = ["merge_jsonl", "parse_shard", "select_shard", "shard_path"]

T = TypeVar("T")

_SHARD_RE = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n`` (0-based ``i``); ``None`` or ``""`` -> ``None`` (no sharding).

    Raises:
        ValueError: malformed text, ``n < 1`` or ``i >= n``.
    """
    if text is None or str(text).strip() == "":
        return None
    match = _SHARD_RE.fullmatch(str(text))
    if not match:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text}: need 0 <= i < n")
    return index, count


def select_shard(items: Sequence[T], index: int, count: int) -> list[T]:
    """The items of shard ``index`` of ``count``: ``list(items[index::count])`` (positions ``index`` modulo
    ``count``, in input order).

    Raises:
        ValueError: ``count < 1`` or ``index`` outside ``[0, count)``.
    """
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {index}/{count}: need 0 <= index < count")
    return list(items[index::count])


def shard_path(output: str | os.PathLike, shard: tuple[int, int] | str | None) -> Path:
    """The output file of one shard: ``out.jsonl`` -> ``out.shard-0-of-2.jsonl`` for shard ``(0, 2)`` or ``"0/2"``.

    The shard tag goes before the last suffix (``preds`` -> ``preds.shard-0-of-2``); ``None`` returns ``output``.
    """
    output = Path(output)
    if isinstance(shard, str) or shard is None:
        shard = parse_shard(shard)
    if shard is None:
        return output
    index, count = shard
    return output.with_name(f"{output.stem}.shard-{index}-of-{count}{output.suffix}")


def merge_jsonl(
    paths: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    order: Sequence[str],
    key: Callable[[dict[str, Any]], str] = lambda record: id_key(record["id"]),
    allow_missing: bool = False,
) -> dict[str, Any]:
    """Merge shard outputs into one JSONL file whose records follow ``order``.

    Args:
        paths: the shard outputs (each must exist and be fully readable; nothing is repaired).
        output: the merged file, written atomically; it must not be one of ``paths``.
        order: every key the merged file may hold, in the order to write them (the input order).
        key: a record's key (default: :func:`id_key` of its ``"id"``).
        allow_missing: write the merged file even if keys of ``order`` are in none of the files (logged);
            otherwise that is an error.

    Returns:
        ``{"merged_files": [paths as str], "records": written count, "missing": count, "missing_ids": first 20}``.

    Raises:
        DataError: a missing or unreadable file, a record without a key, a key twice (within or across files), a key
            not in ``order``, or missing keys without ``allow_missing``. Nothing is written then.
        ValueError: no paths, or ``output`` is one of them.
    """
    if not paths:
        raise ValueError("nothing to merge")
    output = Path(output)
    sources = [Path(p) for p in paths]
    if output.resolve() in {p.resolve() for p in sources}:
        raise ValueError(f"the merged output {output} is also one of the files to merge")
    position = {k: i for i, k in enumerate(order)}
    if len(position) != len(order):
        raise ValueError("merge order lists an id twice")
    found: dict[str, tuple[dict[str, Any], Path]] = {}
    errors: list[str] = []
    for source in sources:
        if not source.is_file():
            raise DataError("shard output does not exist", path=source)
        for number, record in enumerate(read_jsonl(source, require_id=False), 1):
            try:
                record_key = key(record)
            except (KeyError, TypeError, ValueError) as exc:
                errors.append(f"{source}: record #{number} has no key ({exc!r})")
                continue
            if record_key not in position:
                errors.append(f"{source}: id {record_key!r} is not among the expected ids")
            elif record_key in found:
                errors.append(f"{source}: id {record_key!r} is already in {found[record_key][1]}")
            else:
                found[record_key] = (record, source)
    if errors:
        raise DataError(list_problems(f"cannot merge {len(sources)} file(s): {len(errors)} problem(s):", errors))
    missing = [k for k in order if k not in found]
    if missing:
        message = f"{len(missing)} of {len(order)} id(s) are in none of the files, e.g. {missing[:10]}"
        if not allow_missing:
            raise DataError(message + " (finish the shards, or allow missing ids)")
        logger.warning("%s; writing the merged file anyway", message)
    ordered = [found[k][0] for k in sorted(found, key=position.__getitem__)]
    output.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(output, ordered)
    return {
        "merged_files": [str(p) for p in sources],
        "records": len(ordered),
        "missing": len(missing),
        "missing_ids": missing[:20],
    }
