"""Reading a benchmark's files into :class:`~unifiedreward.eval.types.Item` s, and decoding their media.

Data files are those of a hub snapshot (parquet through ``datasets``) or json / jsonl / csv; media are decoded
lazily, one item at a time, from table cells, encoded bytes or paths looked up in the media root (nothing is
downloaded). See ``docs/evaluation.md`` (sections 1 and 6) for the layouts.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unifiedreward.errors import DataError, MediaError
from unifiedreward.eval.arguments import EvalArguments
from unifiedreward.eval.types import Benchmark, Cell, Item, Table

logger = logging.getLogger(__name__)

__all__ = [
    "DATA_EXTENSIONS",
    "find_data_files",
    "load_item_media",
    "load_items",
    "load_media",
    "media_root",
    "read_table",
    "resolve_data",
    "split_of",
]

DATA_EXTENSIONS: tuple[str, ...] = (".parquet", ".jsonl", ".json", ".csv")


def split_of(path: Path) -> str:
    """The split a hub data file holds: ``test_v1-00000-of-00001.parquet`` -> ``test_v1``; else the file stem."""
    match = re.fullmatch(r"(?P<split>.+?)-\d+-of-\d+", path.stem)
    return match.group("split") if match else path.stem


def find_data_files(
    path: str | os.PathLike, split: str | None, subdir: str | None = None, extensions: Sequence[str] = DATA_EXTENSIONS
) -> list[Path]:
    """The data files of a benchmark split.

    ``path`` may be a file (used as is) or a folder such as a hub snapshot. In a folder (``subdir`` first, when it
    exists: a dataset config such as ``image_generation``), files with one of ``extensions`` are listed
    recursively (hidden folders skipped); those whose split (:func:`split_of`) is ``split`` are returned; failing
    that, those whose split ends with ``-<split>`` / ``_<split>``; failing that, a folder with a single data file
    returns it. Without a ``subdir`` folder, files whose path names ``subdir`` are preferred.

    Raises:
        DataError: nothing found, or no unambiguous choice (the message lists the candidates).
    """
    root = Path(path).expanduser()
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DataError(f"benchmark data {root} does not exist (download it first: docs/evaluation.md)")
    base = root / subdir if subdir and (root / subdir).is_dir() else root
    files = sorted(
        p
        for p in base.rglob("*")
        if p.is_file()
        and p.suffix.lower() in extensions
        and not any(x.startswith(".") for x in p.relative_to(root).parts)
    )
    if not files:
        raise DataError(f"no data file ({', '.join(extensions)}) under {base}")
    if subdir and base == root:  # no config folder: prefer files that name the config (e.g. image_generation-...)
        files = [p for p in files if subdir in str(p.relative_to(root))] or files
    if split:
        matched = [p for p in files if split_of(p) == split]
        matched = matched or [p for p in files if split_of(p).endswith((f"-{split}", f"_{split}", f".{split}"))]
        if matched:
            if len({p.parent for p in matched}) > 1 or len({p.suffix for p in matched}) > 1:
                raise DataError(
                    f"split {split!r} is in several folders or formats under {base}: "
                    f"{[str(p.relative_to(root)) for p in matched]}; pass the folder or file of the right one"
                )
            return matched
    if len(files) == 1:
        return files
    raise DataError(
        f"cannot tell which file under {base} holds split {split!r}; candidates: "
        f"{[str(p.relative_to(root)) for p in files[:20]]}. Pass --split or the file itself as --data."
    )


def _read_json_rows(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as exc:
                    raise DataError(f"{path}:{number}: not valid JSON ({exc})") from exc
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DataError(f"{path}: not valid JSON ({exc})") from exc
        if isinstance(data, dict):
            lists = [value for value in data.values() if isinstance(value, list)]
            if len(lists) != 1:
                raise DataError(f"{path}: expected a list of records (or an object holding one list)")
            data = lists[0]
        rows = data
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise DataError(f"{path}: expected JSON objects, one per record")
    return rows


def read_table(files: Sequence[Path], *, cache_dir: str | None = None) -> Table:
    """Read data files (all of one format) into a :class:`Table`.

    Parquet goes through ``datasets.load_dataset("parquet", ...)`` (memory-mapped; image columns decoded only when
    read); json (a list of objects), jsonl and csv are read with the standard library (csv values stay strings).
    """
    suffixes = {p.suffix.lower() for p in files}
    if len(suffixes) != 1:
        raise DataError(f"data files of one split must share a format, got {sorted(suffixes)}")
    (suffix,) = suffixes
    source = ", ".join(str(p) for p in files)
    if suffix == ".parquet":
        try:
            from datasets import load_dataset
        except ImportError as exc:  # pragma: no cover - the eval extra installs it
            raise DataError("reading parquet needs the `datasets` package: pip install 'unifiedreward[eval]'") from exc
        dataset = load_dataset("parquet", data_files=[str(p) for p in files], split="train", cache_dir=cache_dir)
        return Table(dataset=dataset, source=source)
    rows: list[dict[str, Any]] = []
    for path in files:
        if suffix == ".csv":
            import csv

            with path.open(encoding="utf-8-sig", newline="") as handle:
                rows.extend(dict(row) for row in csv.DictReader(handle))
        else:
            rows.extend(_read_json_rows(path))
    return Table(rows=rows, source=source)


def resolve_data(bench: Benchmark, args: EvalArguments) -> tuple[list[Path], str | None]:
    """The data files and the split evaluated."""
    split = args.split or bench.default_split
    return find_data_files(args.data, split, bench.subdir), split


def load_items(bench: Benchmark, args: EvalArguments) -> list[Item]:
    """The benchmark's items (after ``--limit``), in file order, with unique ids.

    Raises:
        DataError: missing or unreadable files, a malformed row, or a duplicate id.
    """
    files, split = resolve_data(bench, args)
    table = read_table(files, cache_dir=args.cache_dir)
    items = bench.build_items(table)
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise DataError(f"{table.source}: item id {item.id!r} occurs twice")
        seen.add(item.id)
        if item.gold_pref not in ("first", "second", "tie"):
            raise DataError(f"{table.source}: item {item.id!r} has gold_pref {item.gold_pref!r}")
    if args.limit is not None:
        items = items[: args.limit]
    logger.info("%s: %d item(s) from %s (split %s)", bench.name, len(items), table.source, split)
    return items


def media_root(args: EvalArguments) -> Path:
    """``--media_root``, else ``--data`` if it is a folder, else the data file's folder."""
    if args.media_root:
        return Path(args.media_root).expanduser()
    data = Path(args.data).expanduser()
    return data if data.is_dir() else data.parent


def load_media(reference: Any, kind: str, root: Path, args: EvalArguments) -> Any:
    """Decode one media reference of an :class:`Item` into a PIL image or a :class:`~unifiedreward.media.Video`.

    A :class:`Cell` is read from its table first; everything else (``{"bytes", "path"}`` cells, encoded bytes, PIL
    images, paths and URLs looked up by file name in ``root``, ``root/videos`` and ``root/images``) is
    :func:`unifiedreward.media.resolve_media`'s. Videos: ``--num_frames``, ``--video_fps``; both: ``--max_pixels``.

    Raises:
        MediaError: the media is missing or unreadable.
    """
    from unifiedreward.media import resolve_media

    value = reference.get() if isinstance(reference, Cell) else reference
    if kind == "image":
        return resolve_media(value, "image", root=root, max_pixels=args.max_pixels)
    return resolve_media(
        value, "video", root=root, num_frames=args.num_frames, fps=args.video_fps, max_pixels=args.max_pixels
    )


def load_item_media(item: Item, kind: str, root: Path, args: EvalArguments) -> tuple[list[Any], str | None]:
    """``(decoded media, None)``, or ``([], "media error: ...")`` when one of the item's media cannot be read."""
    try:
        return [load_media(ref, kind, root, args) for ref in item.media], None
    except MediaError as exc:
        return [], f"media error: {exc}"
