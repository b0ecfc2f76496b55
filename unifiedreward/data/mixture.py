"""Data mixtures for reward-model SFT: the upstream YAML format, ``sampling_strategy`` and record files.

A mixture is a YAML file (protocol reference §3.2)::

    datasets:
      - json_path: dataset/HPD/train_data.json     # JSON list or JSONL of records
        sampling_strategy: all                      # optional; all | first:N | end:N | random:N, N or P%
        image_folder: dataset/HPD                   # relative media paths are joined to it

or, as upstream's ``--data_path``, a single ``.json``/``.jsonl`` file or the brace form ``prefix{a,b,c}.json``
(files ``prefixa.json``, ``prefixb.json``, ``prefixc.json``, all records of each).

Steps: :func:`load_mixture` (parse the config into :class:`DatasetEntry` items; reads no data), :func:`load_records`
(read one file and apply its sampling strategy), :func:`build_mixture` (all entries, parsed into
:class:`~unifiedreward.data.records.Record` items, concatenated in YAML order, with a per-entry summary).

Sampling happens once, when the mixture is built, and is a pure function of (file length, strategy, seed,
``json_path``): every rank and every run selects the same records, whatever the global RNG state. Where upstream
was lenient or wrong (§8.4 item 27) we raise instead; see :func:`parse_sampling_strategy`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from unifiedreward.data.records import IMAGES_AS_VIDEO_THRESHOLD, DataError, Record, parse_record

logger = logging.getLogger(__name__)

DEFAULT_SEED = 42
_STRATEGIES = ("all", "first", "end", "random")
_MEDIA_FOLDER_KEYS = ("image_folder", "media_folder", "video_folder")
_ENTRY_KEYS = {"json_path", "sampling_strategy", "seed", *_MEDIA_FOLDER_KEYS}
_COUNT_RE = re.compile(r"\d+")
_PERCENT_RE = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_BRACE_RE = re.compile(r"^(?P<head>[^{}]*)\{(?P<items>[^{}]*)\}(?P<tail>[^{}]*)$")


class MixtureError(DataError, ValueError):
    """A mixture config is wrong: bad YAML entry, bad ``sampling_strategy``, impossible count, missing file.

    It is a :class:`ValueError` (a bad value in a config) and a :class:`DataError` (so pipelines can catch
    :class:`~unifiedreward.errors.UnifiedRewardError`).
    """


@dataclass(frozen=True)
class SamplingStrategy:
    """A parsed ``sampling_strategy``.

    Attributes:
        name: ``"all"``, ``"first"``, ``"end"`` or ``"random"``.
        count: the number of records (``first:N``), or ``None``.
        percent: the percentage (``first:12.5%``) as an exact fraction, or ``None``.
    """

    name: Literal["all", "first", "end", "random"] = "all"
    count: int | None = None
    percent: Fraction | None = None

    def __str__(self) -> str:
        if self.name == "all":
            return "all"
        if self.percent is not None:
            value = self.percent.numerator if self.percent.denominator == 1 else float(self.percent)
            return f"{self.name}:{value}%"
        return f"{self.name}:{self.count}"

    def num_selected(self, available: int, *, where: str = "") -> int:
        """How many of ``available`` records the strategy selects.

        A percentage selects ``ceil(P * available / 100)`` records (exact arithmetic, so ``first:12.5%`` of 8 is 1).

        Raises:
            MixtureError: when a count is larger than ``available`` (an impossible count), naming ``where``.
        """
        if self.name == "all":
            return available
        if self.percent is not None:
            return math.ceil(self.percent * available / 100)
        assert self.count is not None
        if self.count > available:
            raise MixtureError(
                f"sampling_strategy {str(self)!r} asks for {self.count} records but the file has {available}",
                path=where or None,
            )
        return self.count

    def select(self, available: int, *, seed: int = DEFAULT_SEED, key: str = "", where: str = "") -> list[int]:
        """Indices (ascending) of the records the strategy keeps out of ``available``.

        ``random`` draws a uniform subset with a local ``random.Random`` seeded by ``sha256(f"{seed}\\0{key}")``
        (``key`` is the entry's ``json_path``), using only ``Random.random()``, whose sequence Python guarantees
        across versions. The global RNG is never touched. The subset is returned in file order (the trainer
        shuffles anyway).

        Args:
            available: number of records in the file.
            seed: the mixture seed.
            key: distinguishes entries, so two files with the same length do not draw the same subset.
            where: the entry, named in errors.

        Returns:
            Sorted record indices.
        """
        n = self.num_selected(available, where=where)
        if self.name in ("all", "first"):
            return list(range(n))
        if self.name == "end":
            return list(range(available - n, available))
        rng = random.Random(derive_seed(seed, key))
        pool = list(range(available))
        for i in range(n):  # partial Fisher-Yates: pool[:n] is a uniform n-subset
            j = i + math.floor(rng.random() * (available - i))
            pool[i], pool[j] = pool[j], pool[i]
        return sorted(pool[:n])


def derive_seed(seed: int, key: str) -> int:
    """A 64-bit seed from the mixture seed and an entry key, identical on every machine and Python version."""
    digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def parse_sampling_strategy(value: str | None, *, where: str = "") -> SamplingStrategy:
    """Parse a ``sampling_strategy`` value.

    Accepted: missing (``None``) or ``all`` -> every record; ``first:N``, ``end:N``, ``random:N`` with ``N`` a
    positive integer count or a percentage ``P%`` with ``0 < P <= 100`` (decimals allowed: ``end:12.5%``; the count
    is ``ceil(P * len / 100)``). Names are case-insensitive; spaces around parts are ignored.

    Rejected with :class:`MixtureError` (a ``ValueError``) naming ``where`` and the value, where upstream silently
    returned every record or crashed: unknown names (``foo:3``), ``all`` with a number (``all:50%``), a name
    without a number (``random``), zero (``end:0`` returned everything upstream; an empty selection is a config
    mistake, so ``first:0``/``0%`` are rejected too), negative or malformed numbers, percentages over 100.

    Args:
        value: the YAML value.
        where: the entry (its ``json_path``), named in errors.

    Returns:
        The parsed strategy.
    """

    def bad(reason: str) -> MixtureError:
        return MixtureError(f"invalid sampling_strategy {value!r}: {reason}", path=where or None)

    if value is None:
        return SamplingStrategy()
    if not isinstance(value, str):
        raise bad(f"expected a string, got {type(value).__name__}")
    name, sep, number = (s.strip() for s in value.strip().partition(":"))
    name = name.lower()
    if name not in _STRATEGIES:
        raise bad(f"unknown strategy {name!r} (expected one of {', '.join(_STRATEGIES)})")
    if name == "all":
        if sep:
            raise bad("'all' takes no count")
        return SamplingStrategy()
    if not sep or not number:
        raise bad(f"'{name}' needs a count, e.g. '{name}:1000' or '{name}:10%'")
    if number.startswith("-"):
        raise bad("the count is negative")
    if match := _PERCENT_RE.fullmatch(number):
        percent = Fraction(match.group(1))
        if not 0 < percent <= 100:
            raise bad("a percentage must be in (0, 100]")
        return SamplingStrategy(name, percent=percent)  # type: ignore[arg-type]
    if not _COUNT_RE.fullmatch(number):
        raise bad(f"malformed count {number!r} (expected an integer N or a percentage P%)")
    if int(number) == 0:
        raise bad("the count is 0 (an empty selection)")
    return SamplingStrategy(name, count=int(number))  # type: ignore[arg-type]


@dataclass(frozen=True)
class DatasetEntry:
    """One data file of a mixture.

    Attributes:
        json_path: the path as written in the config; names the entry in errors and seeds ``random``.
        path: ``json_path`` resolved against the mixture root.
        strategy: the parsed sampling strategy.
        media_folder: folder relative media paths are joined to (the entry's ``image_folder``/``media_folder``/
            ``video_folder``, resolved against the root; the root itself when the entry names none).
        seed: the seed for ``random`` (the mixture seed, or the entry's own ``seed`` key).
    """

    json_path: str
    path: Path
    strategy: SamplingStrategy
    media_folder: Path
    seed: int = DEFAULT_SEED


@dataclass(frozen=True)
class RawRecord:
    """A JSON object read from a data file, with its provenance.

    Attributes:
        source: the data file.
        index: position in the file (0-based; for JSONL, among the non-blank lines).
        data: the JSON object as read.
        line: the 1-based line number (JSONL only).
    """

    source: Path
    index: int
    data: Any
    line: int | None = None


@dataclass(frozen=True)
class EntrySummary:
    """What one entry contributed: for logging."""

    json_path: str
    strategy: str
    available: int
    selected: int
    invalid: int = 0


class Mixture(list[Record]):
    """The records of a mixture, in YAML order, plus ``summary`` (one :class:`EntrySummary` per entry)."""

    def __init__(self, records: list[Record] | None = None, summary: list[EntrySummary] | None = None):
        super().__init__(records or [])
        self.summary: list[EntrySummary] = list(summary or [])

    def format_summary(self) -> str:
        """A small table: file, strategy, records available, records selected (and skipped invalid ones)."""
        rows = [("json_path", "strategy", "available", "selected", "invalid")]
        rows += [(s.json_path, s.strategy, str(s.available), str(s.selected), str(s.invalid)) for s in self.summary]
        rows.append(
            (
                "total",
                "",
                str(sum(s.available for s in self.summary)),
                str(len(self)),
                str(sum(s.invalid for s in self.summary)),
            )
        )
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        return "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
        )


def load_mixture(
    path: str | Path,
    *,
    seed: int = DEFAULT_SEED,
    root: str | Path | None = None,
    media_folder: str | Path | None = None,
    check_exists: bool = True,
) -> list[DatasetEntry]:
    """Read a mixture config into entries (no data is read).

    Relative data paths (``json_path``, media folders, and a ``.json``/``.jsonl``/brace ``path``) are resolved
    against ``root``, which defaults to the current working directory: upstream paths such as
    ``dataset/HPD/train_data.json`` are relative to the repository root, where training is launched. A YAML
    ``path`` itself is opened as given (relative to the working directory), not against ``root``.

    Args:
        path: a ``.yaml``/``.yml`` mixture; or a single ``.json``/``.jsonl`` file; or ``prefix{a,b,c}.json``.
            Files given directly (not through YAML) use ``sampling_strategy: all``.
        seed: the seed of ``random`` strategies (an entry may override it with its own ``seed`` key).
        root: base of relative paths; defaults to the current working directory.
        media_folder: media folder of files given directly (upstream's ``--image_folder``); YAML entries name
            their own. Defaults to ``root``.
        check_exists: raise if a data file is missing (all missing files are listed at once). ``False`` parses
            the config only.

    Returns:
        The entries, in config order.

    Raises:
        MixtureError: malformed YAML or entry, bad sampling strategy, missing file.
    """
    base = Path.cwd() if root is None else Path(root).expanduser()
    text = str(path)
    if Path(text).suffix.lower() in (".yaml", ".yml"):
        entries = _entries_from_yaml(Path(text).expanduser(), base=base, seed=seed)
    else:
        folder = base if media_folder is None else _resolve(str(media_folder), base)
        entries = [
            DatasetEntry(name, _resolve(name, base), SamplingStrategy(), folder, seed) for name in _expand_braces(text)
        ]
    if check_exists:
        missing = [entry for entry in entries if not entry.path.is_file()]
        if missing:
            listing = ", ".join(f"{entry.json_path} ({entry.path})" for entry in missing)
            raise MixtureError(f"{len(missing)} data file(s) not found: {listing}", path=text)
    return entries


def _resolve(path: str, base: Path) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else base / candidate


def _expand_braces(text: str) -> list[str]:
    if "{" not in text and "}" not in text:
        return [text]
    match = _BRACE_RE.fullmatch(text)
    items = [] if match is None else [item.strip() for item in match.group("items").split(",")]
    if match is None or not all(items):
        raise MixtureError(f"malformed brace form {text!r} (expected one group: prefix{{a,b,c}}.json)")
    return [f"{match.group('head')}{item}{match.group('tail')}" for item in items]


def _entries_from_yaml(path: Path, *, base: Path, seed: int) -> list[DatasetEntry]:
    import yaml  # local: keep `import unifiedreward.data` light

    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MixtureError("mixture file not found", path=path) from None
    except yaml.YAMLError as exc:
        raise MixtureError(f"invalid YAML: {exc}", path=path) from None
    items = config.get("datasets") if isinstance(config, dict) else None
    if not isinstance(items, list) or not items:
        raise MixtureError("expected a top-level 'datasets:' list with at least one entry", path=path)
    entries = []
    for number, item in enumerate(items):
        entries.append(_entry_from_yaml(item, number, path=path, base=base, seed=seed))
    return entries


def _entry_from_yaml(item: Any, number: int, *, path: Path, base: Path, seed: int) -> DatasetEntry:
    if not isinstance(item, dict) or not isinstance(item.get("json_path"), str) or not item["json_path"]:
        raise MixtureError(f"datasets[{number}] must be a mapping with a 'json_path' string, got {item!r}", path=path)
    json_path = item["json_path"]
    where = f"{path}: datasets[{number}] ({json_path})"
    unknown = sorted(set(item) - _ENTRY_KEYS)
    if unknown:
        raise MixtureError(f"unknown key(s) {unknown} (expected {sorted(_ENTRY_KEYS)})", path=where)
    folders = {item[key] for key in _MEDIA_FOLDER_KEYS if item.get(key) is not None}
    if len(folders) > 1:
        raise MixtureError(f"conflicting media folders {sorted(map(str, folders))}", path=where)
    folder = folders.pop() if folders else None
    if folder is not None and not isinstance(folder, str):
        raise MixtureError(f"the media folder must be a string, got {folder!r}", path=where)
    entry_seed = item.get("seed", seed)
    if not isinstance(entry_seed, int) or isinstance(entry_seed, bool):
        raise MixtureError(f"'seed' must be an integer, got {entry_seed!r}", path=where)
    return DatasetEntry(
        json_path=json_path,
        path=_resolve(json_path, base),
        strategy=parse_sampling_strategy(item.get("sampling_strategy"), where=where),
        media_folder=base if folder is None else _resolve(folder, base),
        seed=entry_seed,
    )


def read_data_file(path: str | Path) -> list[RawRecord]:
    """Read every record of a JSON list or JSONL file.

    The format is detected from the content: a file starting with ``[`` is a JSON list; a file whose extension is
    ``.jsonl`` or whose content is not one JSON document is JSONL (one object per non-blank line). A one-line file
    holding one object is taken as one-record JSONL.

    Raises:
        DataError: missing file, invalid JSON (with the line number), a top level that is not a list, a JSONL line
            that is not an object, an empty file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError("data file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read data file: {exc}", path=path) from None
    stripped = text.lstrip()
    if not stripped:
        raise DataError("data file is empty", path=path)
    if path.suffix.lower() != ".jsonl" and (stripped[0] == "[" or _single_document(stripped)):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", path=path) from None
        if isinstance(data, dict) and len(stripped.strip().splitlines()) == 1:
            data = [data]
        if not isinstance(data, list):
            raise DataError(f"top level is a {type(data).__name__}, expected a list of records", path=path)
        records = [RawRecord(path, i, item) for i, item in enumerate(data)]
    else:
        records = _read_jsonl(text, path)
    if not records:
        raise DataError("data file holds no records", path=path)
    return records


def _single_document(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def _read_jsonl(text: str, path: Path) -> list[RawRecord]:
    records = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON on line {line_number} (column {exc.colno}): {exc.msg}", path=path) from None
        if not isinstance(data, dict):
            raise DataError(f"line {line_number} is a {type(data).__name__}, expected a JSON object", path=path)
        records.append(RawRecord(path, len(records), data, line_number))
    return records


def load_records(entry: DatasetEntry) -> list[RawRecord]:
    """Read an entry's file and apply its sampling strategy.

    Returns:
        The selected raw records, in file order, each with its source file and index in the file.

    Raises:
        DataError: the file is missing or malformed (see :func:`read_data_file`).
        MixtureError: the strategy asks for more records than the file has.
    """
    return _select(entry, read_data_file(entry.path))


def _select(entry: DatasetEntry, records: list[RawRecord]) -> list[RawRecord]:
    indices = entry.strategy.select(len(records), seed=entry.seed, key=entry.json_path, where=entry.json_path)
    return [records[i] for i in indices]


def build_mixture(
    entries: list[DatasetEntry],
    *,
    images_as_video_threshold: int | None = IMAGES_AS_VIDEO_THRESHOLD,
    on_invalid: Literal["raise", "skip"] = "raise",
) -> Mixture:
    """Load, sample and parse every entry; concatenate in config order.

    Args:
        entries: from :func:`load_mixture`.
        images_as_video_threshold: passed to :func:`~unifiedreward.data.records.parse_record`.
        on_invalid: ``"raise"`` (default) stops at the first malformed record; ``"skip"`` drops it, logs a
            warning and counts it in the summary (never substitutes another record).

    Returns:
        The records, with ``summary`` (file, strategy, available, selected, invalid). The summary is logged.
    """
    if on_invalid not in ("raise", "skip"):
        raise ValueError(f"on_invalid must be 'raise' or 'skip', got {on_invalid!r}")
    mixture = Mixture()
    for entry in entries:
        everything = read_data_file(entry.path)
        available = len(everything)
        raw = _select(entry, everything)
        del everything
        invalid = 0
        for item in raw:
            try:
                record = parse_record(
                    item.data,
                    source=item.source,
                    index=item.index,
                    media_folder=entry.media_folder,
                    id_prefix=entry.json_path,
                    images_as_video_threshold=images_as_video_threshold,
                )
            except DataError as exc:
                if on_invalid == "raise":
                    raise
                invalid += 1
                logger.warning("skipping invalid record: %s", exc)
                continue
            mixture.append(record)
        mixture.summary.append(EntrySummary(entry.json_path, str(entry.strategy), available, len(raw), invalid))
    duplicates = [rid for rid, n in Counter(record.id for record in mixture).items() if n > 1]
    if duplicates:
        logger.warning("%d record id(s) occur more than once in the mixture, e.g. %r", len(duplicates), duplicates[0])
    logger.info("data mixture:\n%s", mixture.format_summary())
    return mixture
