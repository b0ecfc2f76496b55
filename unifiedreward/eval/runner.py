"""The shared benchmark runner: load a reward benchmark from local files, judge it, score it, report it.

One runner serves every pairwise reward benchmark (GenAI-Bench image and video, VideoGen-RewardBench,
VL-RewardBench). A benchmark is a small module in :mod:`unifiedreward.eval.benchmarks` that only knows its data
format (:class:`Benchmark`: which files, how a row becomes an :class:`Item` with an id, a gold label, media and a
category) and which metric set applies. Everything else lives here:

1. **Load** the benchmark's official files as downloaded from the Hugging Face hub (parquet through ``datasets``,
   or json / jsonl / csv) plus a media folder (:func:`load_items`). Media are decoded lazily, chunk by chunk.
2. **Judge** with :class:`~unifiedreward.judge.judge.RewardJudge` over either backend of the judge CLI (a model in
   this process, or an OpenAI-compatible vLLM / SGLang server). Position bias: ``--order random`` (default, seed
   0) shows each pair swapped on a seeded coin flip keyed by the item id (so shards and resumed runs agree), and
   every prediction records whether it was swapped; ``--order both`` judges both orders. The judge maps verdicts
   back to the benchmark's canonical order, so gold labels never need flipping here.
3. **Write** one prediction per item to a JSONL file, appended and flushed every ``--chunk_size`` items; running the
   same command again resumes (ids already written are skipped). ``--shard i/n`` judges every n-th item into its
   own file; ``--merge`` joins the shard files and scores them.
4. **Score** with :mod:`unifiedreward.eval.metrics` (never reimplemented here): an unparsed answer is its own
   category (``verdict: null``), never a tie, and each benchmark's official rule decides whether it counts wrong or
   is excluded. Items whose media cannot be read are reported (``status: "media_error"``) and left out of the
   metrics; a rerun tries them again.
5. **Report** ``results.json`` (metrics with their counts, the exact settings: model, template, order/seed,
   scoring, invalid counts, and the definition of every metric), ``results.md`` (our numbers beside the published
   ones, each row labelled with its source and protocol) and ``results.png`` (a bar chart).

Output folder (``--output_dir``)::

    settings.json                      what the predictions were made with (a resumed run must match it)
    predictions.jsonl                  one line per item (or predictions.shard-<i>-of-<n>.jsonl per shard)
    results.json, results.md, results.png

A prediction line holds ``id``, ``gold`` (the benchmark's own label), ``gold_pref`` (``first``/``second``/``tie`` in
the benchmark's canonical order), ``category``, ``labels`` (other gold labels), ``status`` (``valid``, ``invalid``,
``inconsistent`` for ``--order both`` disagreements, ``media_error``), ``verdict`` (canonical order, ``null`` when
unparsed), ``margin`` (P(first) - P(second) with ``--scoring probabilities``, else +1 / 0 / -1 from the verdict,
``null`` without one), ``swapped`` and ``shown_order`` (the order the candidates were actually shown in),
``consistent``, ``reason``, ``raw`` (the model's answer), ``template``, then the judge result's other fields
(``probabilities``, ``think``, ``details``, ...).

Entry points: the scripts in ``benchmark_evaluation/`` (``eval_<benchmark>.py``), ``python -m
unifiedreward.eval.runner <benchmark> [flags]``, or :func:`run_benchmark` from Python. Flags: :class:`EvalArguments`
and :class:`BackendArguments`; ``--config file.yaml`` sets defaults. See ``docs/evaluation.md``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import sys
import tempfile
import urllib.parse
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unifiedreward.errors import MediaError, UnifiedRewardError
from unifiedreward.judge.cli import (
    BACKENDS,
    FAMILIES,
    ORDERS,
    SCORINGS,
    BackendArguments,
    JudgeArguments,
    OutputError,
    id_key,
    parse_shard,
    read_output,
    reason_group,
    to_jsonable,
    write_jsonl_atomic,
)
from unifiedreward.protocol import VERSIONS, PairwiseResult, Verdict

logger = logging.getLogger(__name__)

__all__ = [
    "BackendArguments",
    "Benchmark",
    "Cell",
    "DataError",
    "EvalArguments",
    "Item",
    "MetricGroup",
    "PublishedRow",
    "Table",
    "check_settings",
    "cli_main",
    "compute_metrics",
    "find_data_files",
    "load_items",
    "main",
    "merge_predictions",
    "predictions_path",
    "read_table",
    "run_benchmark",
    "write_json_atomic",
    "write_jsonl_atomic",
    "write_reports",
]

DATA_EXTENSIONS: tuple[str, ...] = (".parquet", ".jsonl", ".json", ".csv")
PREDICTIONS = "predictions.jsonl"
SETTINGS = "settings.json"
MEDIA_ERROR = "media_error"

#: Settings that must be equal for predictions to be appended to (or merged with) an existing run.
_CHECKED_SETTINGS: tuple[str, ...] = (
    "benchmark", "data_files", "split", "backend", "model", "family", "version", "template", "order", "seed",
    "scoring", "max_new_tokens", "num_frames", "video_fps", "max_pixels",
)  # fmt: skip


class DataError(UnifiedRewardError):
    """The benchmark files cannot be found or read, or a row does not follow the benchmark's format."""


# ------------------------------------------------------------------------------------------------------ arguments
@dataclass
class EvalArguments:
    """What to evaluate and where to write it (every field is a ``--flag``; ``--config file.yaml`` sets defaults)."""

    data: str = field(
        metadata={
            "help": "The benchmark as downloaded from the hub: a folder (a hub snapshot; the file of --split is "
            "found in it) or one data file (.parquet, .jsonl, .json or .csv). See docs/evaluation.md."
        }
    )
    output_dir: str = field(
        metadata={"help": "Folder for predictions (resumed if present), results.json, results.md and results.png."}
    )
    media_root: str | None = field(
        default=None,
        metadata={
            "help": "Folder that relative (or URL) media paths in the data are looked up in. Default: --data if it "
            "is a folder, else the data file's folder."
        },
    )
    split: str | None = field(
        default=None,
        metadata={"help": "Split to evaluate (the hub file name prefix, e.g. test_v1). Default: the benchmark's."},
    )
    limit: int | None = field(
        default=None, metadata={"help": "Evaluate only the first N items of the split (in file order)."}
    )
    order: str = field(
        default="random",
        metadata={
            "help": "Order the two candidates are shown in: random (a seeded coin flip per item id, recorded per "
            "prediction), both (judge both orders; disagreements are 'inconsistent') or as_given.",
            "choices": list(ORDERS),
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of --order random."})
    scoring: str = field(
        default="generate",
        metadata={
            "help": "generate (parse the answer text, as upstream) or probabilities (score the template's answer "
            "sentences from the logits; enables margin-based tie calibration; transformers backend only).",
            "choices": list(SCORINGS),
        },
    )
    shard: str | None = field(
        default=None,
        metadata={"help": "'i/n': judge only the items whose position is i modulo n (then run --merge)."},
    )
    merge: bool = field(
        default=False,
        metadata={
            "help": "Join the shard prediction files in --output_dir (predictions.shard-*-of-N.jsonl) into "
            "predictions.jsonl and write the results; no judging."
        },
    )
    chunk_size: int = field(
        default=32, metadata={"help": "Items judged and written together; a killed run loses at most one chunk."}
    )
    overwrite: bool = field(
        default=False,
        metadata={"help": "Delete existing predictions (of this shard) and settings and start over."},
    )
    num_frames: int = field(default=8, metadata={"help": "Frames sampled uniformly per video."})
    video_fps: float | None = field(
        default=None, metadata={"help": "Sample videos at this frame rate, capped at --num_frames."}
    )
    max_pixels: int | None = field(
        default=None, metadata={"help": "Downsize images and video frames to at most this many pixels."}
    )
    num_workers: int = field(
        default=4, metadata={"help": "Threads decoding media (the next chunk is decoded while one is judged)."}
    )
    cache_dir: str | None = field(
        default=None,
        metadata={"help": "Cache folder of the `datasets` library for parquet data. Default: its usual cache."},
    )
    plot: bool = field(default=True, metadata={"help": "Write results.png (matplotlib)."})
    progress: bool = field(default=True, metadata={"help": "Show a progress bar over items (stderr)."})


def judge_arguments(args: EvalArguments, backend_args: BackendArguments) -> JudgeArguments:
    """The ``unifiedreward judge`` arguments equivalent to these flags, for the judge CLI's backend helpers."""
    values = {f.name: getattr(backend_args, f.name) for f in dataclasses.fields(BackendArguments)}
    return JudgeArguments(
        input="<benchmark>",
        output="<predictions>",
        order=args.order,
        seed=args.seed,
        scoring=args.scoring,
        num_frames=args.num_frames,
        video_fps=args.video_fps,
        max_pixels=args.max_pixels,
        num_workers=args.num_workers,
        progress=args.progress,
        **values,
    )


# -------------------------------------------------------------------------------------------- benchmark description
@dataclass(frozen=True)
class Item:
    """One benchmark pair, in the benchmark's canonical order.

    Attributes:
        id: the benchmark's item id (or the row position where the format has none), unique within the split.
        gold: the benchmark's own gold label (``leftvote``, ``A``/``B``/``same``, ``first``/``second``, ...).
        gold_pref: the gold label as ``first``/``second``/``tie`` (canonical order).
        fields: the template's text fields (``prompt``; or ``question``, ``answer1``, ``answer2``).
        media: the two images / videos (or the one image of an understanding item), as references: a
            :class:`Cell` of a parquet table, a PIL image, encoded bytes, ``{"bytes", "path"}`` or a path / URL
            string (looked up in the media root).
        category: the benchmark's category of the item, if it has categories.
        labels: other gold labels kept for the metrics (e.g. VideoGen-RewardBench ``VQ``/``MQ``/``TA``).
    """

    id: str
    gold: str
    gold_pref: str
    fields: Mapping[str, Any]
    media: tuple[Any, ...]
    category: str | None = None
    labels: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class PublishedRow:
    """A published result to put beside ours.

    Attributes:
        model: the model as the source names it.
        values: metric key (a :class:`MetricGroup` column) -> percent.
        source: where the number comes from and under which protocol (split, grouping, script).
    """

    model: str
    values: Mapping[str, float | None]
    source: str


@dataclass(frozen=True)
class MetricGroup:
    """Columns reported together in one results table (and one panel of the bar chart).

    Attributes:
        title: the table heading.
        columns: ``(metric key, column header)`` pairs; the keys are those of the metric set's ``headline``.
        note: what the numbers mean and how comparable the published rows are.
    """

    title: str
    columns: tuple[tuple[str, str], ...]
    note: str = ""


@dataclass(frozen=True)
class Benchmark:
    """Format knowledge of one benchmark (the runner does the rest).

    Attributes:
        name: registry name (``genai_bench_image``).
        title: human-readable name.
        task: the judge task (``image_generation``, ``video_generation``, ``image_understanding``).
        media_kind: ``"image"`` or ``"video"``: what :attr:`Item.media` holds.
        metric_set: which metrics apply (``genai_bench``, ``videogen_rewardbench``, ``vl_rewardbench``).
        default_split: split evaluated when ``--split`` is not given.
        candidates: names of the two candidates in canonical order (recorded as ``shown_order``).
        build_items: ``(table) -> list[Item]`` (raise :class:`DataError` naming the row on a bad row).
        subdir: folder of a hub snapshot that holds this benchmark's files (a dataset config), if any.
        published: published results for the report.
        groups: how the report groups the metrics.
        notes: caveats printed in the report (format assumptions, protocol differences).
        source: where the data comes from (hub dataset id, files).
    """

    name: str
    title: str
    task: str
    media_kind: str
    metric_set: str
    default_split: str | None
    candidates: tuple[str, str]
    build_items: Callable[[Table], list[Item]]
    subdir: str | None = None
    published: tuple[PublishedRow, ...] = ()
    groups: tuple[MetricGroup, ...] = ()
    notes: tuple[str, ...] = ()
    source: str = ""
    mode: str = "pair_rank"


# --------------------------------------------------------------------------------------------------------- tables
@dataclass(frozen=True)
class Cell:
    """A lazily read value of a parquet table (an image or video column); :meth:`get` reads it."""

    table: Table
    row: int
    column: str

    def get(self) -> Any:
        return self.table.value(self.row, self.column)


class Table:
    """Rows of a benchmark file: plain dicts (json / jsonl / csv) or a ``datasets.Dataset`` (parquet).

    Image / video columns of a dataset are not decoded when rows are listed: :meth:`rows` puts a :class:`Cell` in
    their place, and the runner reads it when the item is judged.
    """

    def __init__(self, rows: list[dict[str, Any]] | None = None, dataset: Any = None, *, source: str = ""):
        self._rows = rows
        self._dataset = dataset
        self.source = source
        self.media_columns: tuple[str, ...] = ()
        if dataset is not None:
            from datasets import Image as HFImage

            media = []
            for name, feature in dataset.features.items():
                if isinstance(feature, HFImage) or type(feature).__name__ == "Video":
                    media.append(name)
                    dataset = dataset.cast_column(name, type(feature)(decode=False))
            self._dataset = dataset
            self.media_columns = tuple(media)
        self._columns: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self._rows) if self._rows is not None else len(self._dataset)

    @property
    def columns(self) -> list[str]:
        if self._rows is not None:
            return sorted({key for row in self._rows for key in row})
        return list(self._dataset.column_names)

    def rows(self) -> list[dict[str, Any]]:
        """Every row as a dict; media columns of a dataset hold :class:`Cell` placeholders."""
        if self._rows is not None:
            return self._rows
        light = self._dataset.remove_columns(list(self.media_columns)) if self.media_columns else self._dataset
        rows = light.to_list()
        for index, row in enumerate(rows):
            for column in self.media_columns:
                row[column] = Cell(self, index, column)
        return rows

    def value(self, row: int, column: str) -> Any:
        """One cell, undecoded (``{"bytes": ..., "path": ...}`` for dataset media)."""
        if self._rows is not None:
            return self._rows[row].get(column)
        if column not in self._columns:  # a one-column view, so reading one image does not read the others
            self._columns[column] = self._dataset.select_columns([column])
        return self._columns[column][row][column]


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


# ---------------------------------------------------------------------------------------------------------- media
def media_root(args: EvalArguments) -> Path:
    """``--media_root``, else ``--data`` if it is a folder, else the data file's folder."""
    if args.media_root:
        return Path(args.media_root).expanduser()
    data = Path(args.data).expanduser()
    return data if data.is_dir() else data.parent


def resolve_media_path(reference: str, root: Path) -> Path:
    """The local file of a path or URL found in the data.

    Tried in order: the path itself (absolute, or relative to ``root``), then ``root/<name>``, ``root/videos/<name>``
    and ``root/images/<name>`` with ``<name>`` its file name. A URL is never downloaded: its file name is looked up
    in ``root`` the same way (download the benchmark's media there first).

    Raises:
        MediaError: no candidate exists.
    """
    text = str(reference).strip()
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme in ("http", "https"):
        name = Path(urllib.parse.unquote(parsed.path)).name
        candidates = [root / name, root / "videos" / name, root / "images" / name]
    else:
        path = Path(text).expanduser()
        first = path if path.is_absolute() else root / path
        candidates = [first, root / path.name, root / "videos" / path.name, root / "images" / path.name]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise MediaError(text, f"not found (looked for {', '.join(str(c) for c in dict.fromkeys(candidates))})")


def load_media(reference: Any, kind: str, root: Path, args: EvalArguments) -> Any:
    """Decode one media reference of an :class:`Item` into a PIL image or a :class:`~unifiedreward.media.Video`.

    Raises:
        MediaError: the media is missing or unreadable.
    """
    from PIL import Image

    from unifiedreward.media import load_image, load_video

    value = reference.get() if isinstance(reference, Cell) else reference
    if isinstance(value, Mapping):
        value = value.get("bytes") or value.get("path")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise MediaError(None, "the item has no media in this column")
    if kind == "image":
        if isinstance(value, (Image.Image, bytes, bytearray)):
            return load_image(bytes(value) if isinstance(value, bytearray) else value, max_pixels=args.max_pixels)
        return load_image(resolve_media_path(value, root), max_pixels=args.max_pixels)
    options = {"num_frames": args.num_frames, "fps": args.video_fps, "max_pixels": args.max_pixels}
    if isinstance(value, (bytes, bytearray)):
        with tempfile.NamedTemporaryFile(suffix=".mp4") as handle:
            handle.write(value)
            handle.flush()
            return load_video(handle.name, **options)
    return load_video(resolve_media_path(value, root), **options)


def _load_item_media(item: Item, kind: str, root: Path, args: EvalArguments) -> tuple[list[Any], str | None]:
    try:
        return [load_media(ref, kind, root, args) for ref in item.media], None
    except MediaError as exc:
        return [], f"media error: {exc}"


# ---------------------------------------------------------------------------------------------------- predictions
def predictions_path(output_dir: str | os.PathLike, shard: tuple[int, int] | None = None) -> Path:
    """``predictions.jsonl``, or ``predictions.shard-<i>-of-<n>.jsonl`` for a shard."""
    if shard is None:
        return Path(output_dir) / PREDICTIONS
    return Path(output_dir) / f"predictions.shard-{shard[0]}-of-{shard[1]}.jsonl"


def result_margin(result: PairwiseResult) -> float | None:
    """P(first) - P(second) when the judge scored probabilities, else +1 / 0 / -1 from the verdict (or ``None``)."""
    if result.probabilities:
        probs = {getattr(k, "value", k): v for k, v in result.probabilities.items()}
        return float(probs.get("first", 0.0)) - float(probs.get("second", 0.0))
    if result.verdict is None:
        return None
    return {Verdict.FIRST: 1.0, Verdict.SECOND: -1.0, Verdict.TIE: 0.0}[result.verdict]


def prediction_record(
    bench: Benchmark, item: Item, template: str | None, result: PairwiseResult | None, order: str, error: str | None
) -> dict[str, Any]:
    """The prediction line of one item (see the module docstring for the fields)."""
    record: dict[str, Any] = {
        "id": item.id,
        "gold": item.gold,
        "gold_pref": item.gold_pref,
        "category": item.category,
        "labels": to_jsonable(item.labels) if item.labels else None,
    }
    if result is None:
        record.update(status=MEDIA_ERROR, verdict=None, margin=None, swapped=None, shown_order=None, consistent=None,
                      reason=error, raw="", template=template)  # fmt: skip
        return record
    data = to_jsonable(result)
    swapped = bool(data.pop("swapped", False))
    if order == "both":
        shown: Any = "both"
    else:
        shown = list(bench.candidates[::-1] if swapped else bench.candidates)
    record.update(
        status=result.status,
        verdict=data.pop("verdict", None),
        margin=result_margin(result),
        swapped=swapped,
        shown_order=shown,
        consistent=data.pop("consistent", None),
        reason=data.pop("reason", None),
        raw=data.pop("raw", ""),
        template=template,
    )
    for key, value in data.items():
        record.setdefault(key, value)
    return record


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _load_done(path: Path, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """Records already in ``path`` (a truncated last line is repaired), by id; media errors are dropped (retried).

    Raises:
        OutputError: an id twice, or an id that is not among ``wanted``.
    """
    records = read_output(path, repair=True)
    done: dict[str, dict[str, Any]] = {}
    retry = 0
    for record in records:
        key = id_key(record["id"])
        if key in done:
            raise OutputError(f"{path} holds id {record['id']!r} twice: not a file this runner wrote")
        if key not in wanted:
            raise OutputError(
                f"{path} holds id {record['id']!r}, which is not among this run's items (other --data, --split, "
                "--limit or --shard?); use --overwrite to start over"
            )
        if record.get("status") == MEDIA_ERROR:
            retry += 1
            continue
        done[key] = record
    if retry:
        logger.info("%s: %d item(s) had media errors; trying them again", path, retry)
        write_jsonl_atomic(path, list(done.values()))
    return done


# -------------------------------------------------------------------------------------------------------- settings
def run_settings(
    bench: Benchmark, args: EvalArguments, backend_args: BackendArguments, family: str, template: str | None,
    backend_name: str, files: Sequence[Path], split: str | None,
) -> dict[str, Any]:  # fmt: skip
    """The settings that define a run's predictions (``settings.json``; checked when resuming or merging)."""
    model = backend_args.model
    if backend_args.backend == "openai" and not model:
        model = "UnifiedReward"
    return {
        "benchmark": bench.name,
        "data_files": [str(p.resolve()) for p in files],
        "split": split,
        "media_root": str(media_root(args).resolve()),
        "backend": backend_name,
        "model": model,
        "base_url": backend_args.base_url if backend_args.backend == "openai" else None,
        "family": family,
        "version": backend_args.version,
        "template": template,
        "order": args.order,
        "seed": args.seed,
        "scoring": args.scoring,
        "max_new_tokens": backend_args.max_new_tokens,
        "temperature": 0.0,
        "num_frames": args.num_frames if bench.media_kind == "video" else None,
        "video_fps": args.video_fps if bench.media_kind == "video" else None,
        "max_pixels": args.max_pixels,
        "limit": args.limit,
    }


def check_settings(
    output_dir: Path, settings: dict[str, Any], keys: Sequence[str] = _CHECKED_SETTINGS, name: str = SETTINGS
) -> None:
    """Write ``output_dir/name``, or check that the existing one describes the same run (on ``keys``).

    Raises:
        OutputError: the existing predictions were made with other settings.
    """
    path = output_dir / name
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        diff = [
            f"{key}: {old.get(key)!r} in {path}, now {settings.get(key)!r}"
            for key in keys
            if old.get(key) != settings.get(key)
        ]
        if diff:
            raise OutputError(
                f"{output_dir} holds predictions made with other settings (use another --output_dir, or "
                "--overwrite to start over):\n  " + "\n  ".join(diff)
            )
        if old.get("limit") != settings.get("limit"):
            write_json_atomic(path, {**old, "limit": settings.get("limit")})
        return
    write_json_atomic(path, settings)


# ---------------------------------------------------------------------------------------------------------- judging
def _build_judge(args: EvalArguments, backend_args: BackendArguments, backend: Any, family: str) -> Any:
    from unifiedreward.judge.base import GenerationConfig
    from unifiedreward.judge.judge import RewardJudge

    return RewardJudge(
        backend,
        family=family,
        version=backend_args.version,
        generation=GenerationConfig(max_new_tokens=backend_args.max_new_tokens),
        order=args.order,
        seed=args.seed,
        scoring=args.scoring,
    )


def _judge_chunk(
    judge: Any, bench: Benchmark, chunk: Sequence[Item], loaded: Sequence[tuple[list[Any], str | None]], order: str
) -> list[dict[str, Any]]:
    from unifiedreward.judge.judge import JudgeRequest

    requests, live = [], []
    for position, (item, (media, error)) in enumerate(zip(chunk, loaded, strict=True)):
        if error is None:
            live.append(position)
            images, videos = (media, []) if bench.media_kind == "image" else ([], media)
            requests.append(JudgeRequest(bench.task, bench.mode, images=images, videos=videos,
                                         fields=dict(item.fields), id=item.id))  # fmt: skip
    results = judge.judge(requests) if requests else []
    if len(results) != len(requests):
        raise UnifiedRewardError(f"the judge returned {len(results)} results for {len(requests)} requests")
    template = judge.template_for(requests[0]).id if requests else None
    by_position = dict(zip(live, results, strict=True))
    lines = []
    for position, item in enumerate(chunk):
        result = by_position.get(position)
        lines.append(prediction_record(bench, item, template, result, order, loaded[position][1]))
        if result is None:
            logger.warning("item %s: %s", item.id, loaded[position][1])
    return lines


def _judge_pending(
    judge: Any, bench: Benchmark, pending: Sequence[Item], args: EvalArguments, path: Path, root: Path
) -> int:
    """Judge ``pending`` chunk by chunk, appending each chunk's predictions to ``path``; returns how many."""
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    chunks = [pending[i : i + args.chunk_size] for i in range(0, len(pending), args.chunk_size)]
    pool = ThreadPoolExecutor(max_workers=args.num_workers, thread_name_prefix="media") if args.num_workers else None

    def submit(chunk: Sequence[Item]) -> list[Future] | None:
        if pool is None:
            return None
        return [pool.submit(_load_item_media, item, bench.media_kind, root, args) for item in chunk]

    written = 0
    bar = tqdm(total=len(pending), desc=bench.name, unit="item", disable=not args.progress, file=sys.stderr)
    try:
        with logging_redirect_tqdm(), path.open("a", encoding="utf-8") as handle:
            futures = submit(chunks[0])
            for number, chunk in enumerate(chunks):
                if futures is not None:
                    loaded = [f.result() for f in futures]
                else:
                    loaded = [_load_item_media(item, bench.media_kind, root, args) for item in chunk]
                futures = submit(chunks[number + 1]) if number + 1 < len(chunks) else None  # decode ahead
                lines = _judge_chunk(judge, bench, chunk, loaded, args.order)
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


def _check_args(args: EvalArguments, backend_args: BackendArguments, *, injected: bool) -> None:
    checks = [
        (args.order in ORDERS, f"--order must be one of {ORDERS}"),
        (args.scoring in SCORINGS, f"--scoring must be one of {SCORINGS}"),
        (args.chunk_size >= 1, "--chunk_size must be >= 1"),
        (args.num_frames >= 1, "--num_frames must be >= 1"),
        (args.num_workers >= 0, "--num_workers must be >= 0"),
        (args.limit is None or args.limit >= 1, "--limit must be >= 1"),
        (backend_args.backend in BACKENDS, f"--backend must be one of {BACKENDS}"),
        (backend_args.batch_size >= 1, "--batch_size must be >= 1"),
        (backend_args.max_new_tokens >= 1, "--max_new_tokens must be >= 1"),
        (backend_args.family in (None, *FAMILIES), f"--family must be one of {FAMILIES}"),
        (backend_args.version in VERSIONS, f"--version must be one of {VERSIONS}"),
        (injected or args.merge or backend_args.backend != "transformers" or bool(backend_args.model),
         "--model is required with --backend transformers"),
        (not (args.merge and args.shard), "--merge joins all shards: do not pass --shard with it"),
        (not (args.scoring == "probabilities" and backend_args.backend == "openai" and not injected),
         "--scoring probabilities needs the transformers backend (a server only returns text)"),
    ]  # fmt: skip
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


def run_benchmark(
    benchmark: Benchmark | str,
    args: EvalArguments,
    backend_args: BackendArguments | None = None,
    *,
    backend: Any = None,
) -> dict[str, Any] | None:
    """Evaluate a benchmark: judge the pending items, then (unless sharded) score and report.

    Args:
        benchmark: a :class:`Benchmark` or its registry name.
        args: what to evaluate and where.
        backend_args: the backend flags (default: :class:`BackendArguments` defaults).
        backend: a ready :class:`~unifiedreward.judge.base.Backend` to use instead of building one (tests, or a
            caller holding a loaded model); its family is ``--family``, else its model's, else ``"qwen"``.

    Returns:
        The results (as written to ``results.json``), or ``None`` for a ``--shard`` run (run ``--merge`` after the
        last shard).

    Raises:
        DataError: the benchmark files are missing or malformed.
        OutputError: existing predictions are corrupt or were made with other settings.
        ValueError: invalid flags.
        UnifiedRewardError: the model cannot be loaded or the server is not usable.
    """
    from unifiedreward.eval.benchmarks import get_benchmark
    from unifiedreward.judge.cli import build_backend, resolve_family

    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    backend_args = backend_args or BackendArguments()
    _check_args(args, backend_args, injected=backend is not None)
    if args.merge:
        return merge_predictions(bench, args)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    shard = parse_shard(args.shard)
    files, split = resolve_data(bench, args)
    items = load_items(bench, args)
    mine = [item for position, item in enumerate(items) if shard is None or position % shard[1] == shard[0]]
    path = predictions_path(output_dir, shard)
    if args.overwrite:
        others = [p for p in output_dir.glob("predictions*.jsonl") if p != path]
        # settings.json is shared by the shards: it goes only with the last predictions file
        for stale in (path,) if others else (path, output_dir / SETTINGS):
            if stale.exists():
                logger.info("--overwrite: deleting %s", stale)
                stale.unlink()

    judge_args = judge_arguments(args, backend_args)
    family = resolve_family(judge_args, backend)
    backend_name = backend_args.backend if backend is None else type(backend).__name__
    if not family:  # the checkpoint's config could not be read: load the model to find out
        backend = build_backend(judge_args)
        from unifiedreward.modeling import model_family

        family = model_family(backend.model)
    from unifiedreward.protocol import select_template

    template = select_template(bench.task, bench.mode, family, backend_args.version).id
    settings = run_settings(bench, args, backend_args, family, template, backend_name, files, split)
    check_settings(output_dir, settings)

    done = _load_done(path, {item.id for item in mine})
    pending = [item for item in mine if item.id not in done]
    logger.info(
        "%s: %d item(s)%s, %d already in %s, %d to judge; template %s, order=%s%s, scoring=%s",
        bench.name, len(mine), f" in shard {args.shard}" if shard else "", len(done), path, len(pending), template,
        args.order, f" (seed {args.seed}: a coin flip per item id, recorded as 'swapped')"
        if args.order == "random" else "", args.scoring,
    )  # fmt: skip
    if pending:
        if backend is None:
            backend = build_backend(judge_args)
        judge = _build_judge(args, backend_args, backend, family)
        _judge_pending(judge, bench, pending, args, path, media_root(args))
    records = read_output(path)
    swapped = sum(1 for r in records if r.get("swapped"))
    logger.info("%s: %d of %d prediction(s) were shown swapped", path, swapped, len(records))
    if shard is not None:
        logger.info("shard %s done: %s; after every shard, run again with --merge", args.shard, path)
        return None
    return _finish(bench, args, items, records, settings, [path])


def merge_predictions(bench: Benchmark, args: EvalArguments) -> dict[str, Any]:
    """Join ``predictions.shard-*-of-N.jsonl`` in ``--output_dir`` into ``predictions.jsonl`` and report.

    Raises:
        OutputError: no shard files, shards of different N or a shard missing, an id twice or unknown, or items no
            shard holds.
    """
    output_dir = Path(args.output_dir)
    pattern = re.compile(r"predictions\.shard-(\d+)-of-(\d+)\.jsonl")
    found = sorted(
        (int(m.group(1)), int(m.group(2)), p)
        for p in output_dir.glob("predictions.shard-*-of-*.jsonl")
        if (m := pattern.fullmatch(p.name))
    )
    if not found:
        raise OutputError(f"no shard predictions (predictions.shard-<i>-of-<n>.jsonl) in {output_dir}")
    counts = {n for _, n, _ in found}
    if len(counts) != 1:
        raise OutputError(f"{output_dir} holds shard files of different shard counts {sorted(counts)}")
    (count,) = counts
    missing_shards = sorted(set(range(count)) - {i for i, _, _ in found})
    if missing_shards:
        raise OutputError(f"{output_dir}: shard(s) {missing_shards} of {count} have no predictions file")
    settings_path = output_dir / SETTINGS
    if not settings_path.exists():
        raise OutputError(f"{settings_path} is missing: these shards were not written by this runner")
    settings = json.loads(settings_path.read_text(encoding="utf-8"))
    files, split = resolve_data(bench, args)
    now = {"data_files": [str(p.resolve()) for p in files], "split": split}
    changed = [
        f"{k}: {settings.get(k)!r} in {settings_path}, now {v!r}" for k, v in now.items() if settings.get(k) != v
    ]
    if changed:
        raise OutputError("--merge must name the data the shards were judged on:\n  " + "\n  ".join(changed))
    items = load_items(bench, args)
    position = {item.id: k for k, item in enumerate(items)}
    merged: dict[str, dict[str, Any]] = {}
    errors = []
    for _, _, path in found:
        for record in read_output(path):
            key = id_key(record["id"])
            if key not in position:
                errors.append(f"{path}: id {record['id']!r} is not among the benchmark's items")
            elif key in merged:
                errors.append(f"{path}: id {record['id']!r} is in two shard files")
            else:
                merged[key] = record
    missing = [item.id for item in items if item.id not in merged]
    if missing:
        errors.append(f"{len(missing)} item(s) are in no shard file (finish those shards first), e.g. {missing[:10]}")
    if errors:
        raise OutputError(f"cannot merge {len(found)} shard file(s):\n  " + "\n  ".join(errors[:20]))
    ordered = [merged[key] for key in sorted(merged, key=position.__getitem__)]
    target = predictions_path(output_dir)
    write_jsonl_atomic(target, ordered)
    logger.info("merged %d shard file(s) into %s (%d predictions)", len(found), target, len(ordered))
    return _finish(bench, args, items, ordered, settings, [p for _, _, p in found])


# ---------------------------------------------------------------------------------------------------------- metrics
def _acc(result: Any) -> dict[str, Any]:
    """An :class:`~unifiedreward.eval.metrics.AccuracyResult` as JSON (fraction, percent rounded to 2, counts)."""
    return {
        "accuracy": result.accuracy,
        "percent": None if math.isnan(result.accuracy) else round(result.percent, 2),
        "n": result.n,
        "n_correct": result.n_correct,
        "n_invalid": result.n_invalid,
        "denominator": result.denominator,
    }


def _margin_metrics(gold_signs: Sequence[int], margins: Sequence[float | None]) -> dict[str, dict[str, Any]]:
    """Tie-calibrated accuracy (Ties Matter and VideoAlign modes) and accuracy without ties over margins.

    Items without a margin (unparsed) are counted **wrong** in every denominator: the calibration runs on the
    others (an unparsed item is wrong at every threshold, so the best threshold is the same), and its correct count
    is divided by all items.
    """
    from unifiedreward.eval.metrics import AccuracyResult, accuracy_without_ties, tie_calibrated_accuracy

    pairs = [(h, m) for h, m in zip(gold_signs, margins, strict=True) if m is not None]
    h, m = [p[0] for p in pairs], [p[1] for p in pairs]
    n, n_invalid = len(gold_signs), len(gold_signs) - len(pairs)
    out: dict[str, dict[str, Any]] = {}
    for name, mode in (("with_ties", "ties_matter"), ("with_ties_videoalign", "videoalign")):
        calibrated = tie_calibrated_accuracy(h, m, mode=mode)
        correct = calibrated.stats.concordant + calibrated.stats.ties_both
        entry = _acc(AccuracyResult.from_counts(n, correct, n_invalid, n))
        entry.update(epsilon=calibrated.epsilon, mode=mode)
        out[name] = entry
    nontie = sum(1 for g in gold_signs if g != 0)
    invalid_nontie = sum(1 for g, mm in zip(gold_signs, margins, strict=True) if g != 0 and mm is None)
    without = accuracy_without_ties(h, m)
    out["without_ties"] = _acc(AccuracyResult.from_counts(nontie, without.n_correct, invalid_nontie, nontie))
    return out


_GENAI_PREDICTION = {"first": "left", "second": "right", "tie": "tie"}

METRIC_DEFINITIONS: dict[str, dict[str, str]] = {
    "genai_bench": {
        "official_4way": "GenAI-Bench official accuracy (TIGER-AI-Lab/GenAI-Bench inference.py/show_results.py): "
        "correct iff leftvote<->first, rightvote<->second, tievote or bothbad_vote<->tie; over ALL items, unparsed "
        "= wrong. UnifiedReward prompts offer one tie verdict ('equally good'), mapped to the official [[A=B]], "
        "which the official rule accepts for both tie kinds (metrics.genaibench_accuracy).",
        "tau": "UnifiedReward paper 'tau': 3-way accuracy over all pairs, tievote and bothbad_vote both 'tie'; "
        "unparsed = wrong, never a tie (metrics.ur_tau_diff).",
        "diff": "UnifiedReward paper 'diff': accuracy over the pairs whose gold is not a tie; a tie prediction is "
        "wrong; unparsed = wrong (metrics.ur_tau_diff).",
        "with_ties": "--scoring probabilities only: tie-calibrated pairwise accuracy ('Ties Matter', Deutsch et al. "
        "2023; margins P(first)-P(second); best threshold over {0} and every |margin|; unparsed = wrong) "
        "(metrics.tie_calibrated_accuracy, mode ties_matter).",
        "with_ties_videoalign": "--scoring probabilities only: the same with VideoAlign calc_accuracy.py's "
        "search (metrics.tie_calibrated_accuracy, mode videoalign).",
        "without_ties": "--scoring probabilities only: C/(C+D) over non-tie gold pairs from the margins, margin 0 "
        "= wrong, unparsed = wrong (metrics.accuracy_without_ties).",
    },
    "videogen_rewardbench": {
        "with_ties": "VideoGen-RewardBench 'w/ Ties' on the Overall label: tie-calibrated accuracy over margins m "
        "(P(first)-P(second) with --scoring probabilities, else +1/0/-1 from the verdict), Ties Matter algorithm "
        "(threshold 0 state included, equal |m| grouped); unparsed = wrong (metrics.tie_calibrated_accuracy).",
        "with_ties_videoalign": "The same computed like KwaiVGI/VideoAlign calc_accuracy.py (what the leaderboard "
        "reports; no 'no new ties' state, splits equal |m|) (metrics.tie_calibrated_accuracy, mode videoalign).",
        "without_ties": "VideoGen-RewardBench 'w/o Ties' on Overall: C/(C+D) over non-tie gold pairs, margin 0 (a "
        "tie verdict) = wrong, unparsed = wrong (metrics.accuracy_without_ties).",
        "tau": "UnifiedReward paper 'tau': 3-way accuracy (A/B/same) over all pairs; unparsed = wrong, never a tie "
        "(metrics.ur_tau_diff).",
        "diff": "UnifiedReward paper 'diff': accuracy over non-tie gold pairs; unparsed = wrong (metrics.ur_tau_diff).",
        "per_dimension": "VQ/MQ/TA: the same one overall judgment scored against each dimension's human label "
        "(the leaderboard scores a per-dimension reward instead).",
    },
    "vl_rewardbench": {
        "overall": "VL-RewardBench official (cal.py): sum agree / sum (agree + reject) over all items; unparsed "
        "(and --order both disagreements) are EXCLUDED from the denominator and reported as n_invalid "
        "(metrics.vlrewardbench_accuracy, unparsed='exclude').",
        "general/hallucination/reasoning": "Official categories from the item id (General = VLFeedback + "
        "WildVision 183, Hallucination = POVID + RLAIF-V + RLHF-V 749, Reasoning = MathVerse + MMMU 318), same "
        "rule per category (metrics.vlrewardbench_category).",
        "macro": "Unweighted mean of the three official category accuracies.",
        "ur_*": "UnifiedReward scripts' variant: unparsed counted wrong and the pre-fix category map that puts the "
        "448 POVID items under General (metrics.vlrewardbench_category_upstream_ur, unparsed='wrong'); only for "
        "comparison with UR's own table.",
    },
}


def _metrics_genai_bench(records: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, float | None]]:
    from unifiedreward.eval.metrics import genaibench_accuracy, preference_sign, ur_tau_diff

    gold = [r["gold"] for r in records]
    verdicts = [r.get("verdict") for r in records]
    official = genaibench_accuracy(gold, [None if v is None else _GENAI_PREDICTION[v] for v in verdicts])
    taudiff = ur_tau_diff(gold, verdicts)
    metrics: dict[str, Any] = {"official_4way": _acc(official), "tau": _acc(taudiff.tau), "diff": _acc(taudiff.diff)}
    if any(r.get("probabilities") for r in records):
        metrics.update(_margin_metrics([preference_sign(g) for g in gold], [r.get("margin") for r in records]))
    headline = {key: metrics[key]["percent"] for key in metrics}
    return metrics, headline


def _metrics_videogen(records: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, float | None]]:
    from unifiedreward.eval.metrics import preference_sign, ur_tau_diff

    gold = [r["gold"] for r in records]
    margins = [r.get("margin") for r in records]
    metrics: dict[str, Any] = _margin_metrics([preference_sign(g) for g in gold], margins)
    taudiff = ur_tau_diff(gold, [r.get("verdict") for r in records])
    metrics.update(tau=_acc(taudiff.tau), diff=_acc(taudiff.diff))
    per_dimension: dict[str, Any] = {}
    for dim in ("VQ", "MQ", "TA"):
        labels = [(r.get("labels") or {}).get(dim) for r in records]
        if records and all(label in ("A", "B", "same") for label in labels):
            per_dimension[dim] = _margin_metrics([preference_sign(x) for x in labels], margins)
    if per_dimension:
        metrics["per_dimension"] = per_dimension
    headline = {key: metrics[key]["percent"] for key in ("with_ties", "with_ties_videoalign", "without_ties", "tau",
                                                          "diff")}  # fmt: skip
    for dim, values in per_dimension.items():
        headline[f"{dim}_with_ties"] = values["with_ties"]["percent"]
        headline[f"{dim}_without_ties"] = values["without_ties"]["percent"]
    return metrics, headline


def _metrics_vl_rewardbench(records: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, float | None]]:
    from unifiedreward.eval.metrics import vlrewardbench_accuracy, vlrewardbench_category_upstream_ur

    ids = [str(r["id"]) for r in records]
    outcomes = [None if r.get("verdict") in (None, "tie") else r["verdict"] == r["gold_pref"] for r in records]
    metrics: dict[str, Any] = {}
    headline: dict[str, float | None] = {}
    variants = (("", {}), ("ur_", {"category_fn": vlrewardbench_category_upstream_ur, "unparsed": "wrong"}))
    for prefix, options in variants:
        result = vlrewardbench_accuracy(ids, outcomes, **options)
        block = {"overall": _acc(result.overall), "macro": result.macro,
                 "macro_percent": None if math.isnan(result.macro) else round(100 * result.macro, 2)}  # fmt: skip
        block.update({c: _acc(v) for c, v in result.per_category.items()})
        metrics["official" if not prefix else "ur_scripts"] = block
        for category, value in result.per_category.items():
            headline[prefix + category] = _acc(value)["percent"]
        headline[prefix + "overall"] = block["overall"]["percent"]
        headline[prefix + "macro"] = block["macro_percent"]
    return metrics, headline


METRIC_SETS: dict[str, Callable[[Sequence[Mapping[str, Any]]], tuple[dict[str, Any], dict[str, float | None]]]] = {
    "genai_bench": _metrics_genai_bench,
    "videogen_rewardbench": _metrics_videogen,
    "vl_rewardbench": _metrics_vl_rewardbench,
}


def compute_metrics(bench: Benchmark, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Metrics and counts from prediction records (media errors left out of the metrics, counted).

    Returns:
        ``{"metrics": ..., "headline": {key: percent}, "counts": ...}``.
    """
    scored = [r for r in records if r.get("status") != MEDIA_ERROR]
    metrics, headline = METRIC_SETS[bench.metric_set](scored)
    statuses = Counter(str(r.get("status")) for r in records)
    reasons: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for record in records:
        if record.get("status") != "valid":
            reason = str(record.get("reason") or "(no reason)")
            reasons[reason_group(reason)] += 1
            examples.setdefault(reason_group(reason), reason[:300])
    counts = {
        "items": len(records),
        "scored": len(scored),
        "valid": statuses.get("valid", 0),
        "invalid": statuses.get("invalid", 0),
        "inconsistent": statuses.get("inconsistent", 0),
        "media_errors": statuses.get(MEDIA_ERROR, 0),
        "swapped": sum(1 for r in records if r.get("swapped")),
        "verdicts": dict(Counter(str(r.get("verdict")) for r in scored)),
        "gold": dict(Counter(str(r.get("gold")) for r in scored)),
        "not_valid_reasons": [{"reason": k, "count": c, "example": examples[k]} for k, c in reasons.most_common(10)],
    }
    return {"metrics": metrics, "headline": headline, "counts": counts}


def _finish(
    bench: Benchmark, args: EvalArguments, items: Sequence[Item], records: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any], prediction_files: Sequence[Path],
) -> dict[str, Any]:  # fmt: skip
    by_id = {id_key(r["id"]): r for r in records}
    missing = [item.id for item in items if item.id not in by_id]
    if missing:
        raise OutputError(f"{len(missing)} item(s) have no prediction, e.g. {missing[:10]}")
    ordered = [by_id[item.id] for item in items]
    scored = compute_metrics(bench, ordered)
    results = {
        "benchmark": bench.name,
        "title": bench.title,
        "source": bench.source,
        "settings": dict(settings, limit=args.limit),
        "counts": scored["counts"],
        "metrics": scored["metrics"],
        "headline": scored["headline"],
        "metric_definitions": METRIC_DEFINITIONS[bench.metric_set],
        "published": [dataclasses.asdict(row) for row in bench.published],
        "notes": list(bench.notes),
        "predictions": [str(p) for p in prediction_files],
    }
    write_reports(bench, results, Path(args.output_dir), plot=args.plot)
    return results


# ---------------------------------------------------------------------------------------------------------- reports
def _fmt(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def _ours_label(results: Mapping[str, Any]) -> str:
    settings = results["settings"]
    model = Path(str(settings.get("model"))).name if settings.get("model") else settings.get("backend")
    return f"**ours: {model}**"


def _ours_source(results: Mapping[str, Any]) -> str:
    s = results["settings"]
    order = f"order {s['order']}" + (f" (seed {s['seed']})" if s["order"] == "random" else "")
    return f"this run: split {s.get('split')}, {s.get('template')}, {order}, scoring {s['scoring']}"


def render_markdown(bench: Benchmark, results: Mapping[str, Any]) -> str:
    """``results.md``: settings, counts, then per metric group our row beside the published rows."""
    s, c, headline = results["settings"], results["counts"], results["headline"]
    lines = [
        f"# {bench.title}: results",
        "",
        f"Model `{s.get('model') or s.get('backend')}` ({s.get('backend')}, family {s.get('family')}, version {s.get('version')}), "
        f"template `{s.get('template')}`, order `{s['order']}`"
        + (
            f" (seed {s['seed']}; {c['swapped']} of {c['items']} pairs shown swapped)"
            if s["order"] == "random"
            else ""
        )
        + f", scoring `{s['scoring']}`, split `{s.get('split')}`"
        + (f", first {s['limit']} items" if s.get("limit") else "")
        + ".",
        "",
        (
            f"Items {c['items']}: {c['valid']} valid, {c['invalid']} unparsed, {c['inconsistent']} order-inconsistent, "
            f"{c['media_errors']} media errors (left out of the metrics)."
        ),
        "",
    ]
    for group in bench.groups:
        keys = [key for key, _ in group.columns]
        ours = [headline.get(key) for key in keys]
        published = [row for row in bench.published if any(row.values.get(k) is not None for k in keys)]
        if not any(k in headline for k in keys):
            continue  # not computed in this run (e.g. margin metrics without --scoring probabilities)
        lines += [f"## {group.title}", ""]
        if group.note:
            lines += [group.note, ""]
        lines.append("| model | " + " | ".join(h for _, h in group.columns) + " | source |")
        lines.append("|---|" + "---:|" * len(keys) + "---|")
        lines.append(
            f"| {_ours_label(results)} | " + " | ".join(_fmt(v) for v in ours) + f" | {_ours_source(results)} |"
        )
        for row in published:
            values = " | ".join(_fmt(row.values.get(k)) for k in keys)
            lines.append(f"| {row.model} | {values} | {row.source} |")
        lines.append("")
    lines += ["## Metric definitions", ""]
    lines += [f"* **{key}**: {text}" for key, text in results["metric_definitions"].items()]
    if bench.notes:
        lines += ["", "## Notes", ""]
        lines += [f"* {note}" for note in bench.notes]
    if c["not_valid_reasons"]:
        lines += ["", "## Answers without a verdict", ""]
        lines += [f"* {r['count']} x {r['reason']} (e.g. `{r['example'][:120]}`)" for r in c["not_valid_reasons"]]
    lines.append("")
    return "\n".join(lines)


def plot_results(bench: Benchmark, results: Mapping[str, Any], path: Path) -> None:
    """``results.png``: one panel per metric group with a value; ours highlighted beside the published rows."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    headline = results["headline"]
    panels = []
    for group in bench.groups:
        keys = [key for key, _ in group.columns]
        if not any(k in headline for k in keys):
            continue
        rows = [(_ours_label(results).strip("*"), {k: headline.get(k) for k in keys})]
        rows += [(r.model, r.values) for r in bench.published if any(r.values.get(k) is not None for k in keys)]
        panels.append((group, rows))
    if not panels:
        panels = [(MetricGroup("no metrics", ()), [])]
    heights = [max(1.6, 0.22 * max(1, len(rows)) * max(1, len(g.columns)) + 0.9) for g, rows in panels]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(9, min(sum(heights) + 0.6, 40)), squeeze=False, gridspec_kw={"height_ratios": heights}
    )
    for ax, (group, rows) in zip(axes[:, 0], panels, strict=True):
        n_cols = max(1, len(group.columns))
        bar = 0.8 / n_cols
        for j, (key, header) in enumerate(group.columns):
            values = [row[1].get(key) for row in rows]
            ys = [i + j * bar for i in range(len(rows))]
            xs = [0.0 if v is None or math.isnan(v) else v for v in values]
            colors = [f"C{j}" for _ in rows]
            bars = ax.barh(ys, xs, height=bar, color=colors, label=header)
            bars[0].set_edgecolor("black")
            bars[0].set_linewidth(1.5)
            for y, v in zip(ys, values, strict=True):
                ax.text(0.5, y, _fmt(v), va="center", fontsize=7)
        ax.set_yticks([i + 0.4 - bar / 2 for i in range(len(rows))])
        ax.set_yticklabels([row[0] for row in rows], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel("%")
        ax.set_title(group.title, fontsize=9)
        if group.columns:
            ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{bench.title} (first row, outlined: this run)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(bench: Benchmark, results: Mapping[str, Any], output_dir: Path, *, plot: bool = True) -> None:
    """Write ``results.json``, ``results.md`` and (with ``plot``) ``results.png`` into ``output_dir``."""
    write_json_atomic(output_dir / "results.json", results)
    (output_dir / "results.md").write_text(render_markdown(bench, results), encoding="utf-8")
    if plot:
        plot_results(bench, results, output_dir / "results.png")
    logger.info("wrote %s/results.{json,md%s}", output_dir, ",png" if plot else "")


def format_results(results: Mapping[str, Any]) -> str:
    """A few human-readable lines of a results dict."""
    c = results["counts"]
    head = ", ".join(f"{k} {_fmt(v)}" for k, v in results["headline"].items())
    return (
        f"{results['title']}: {c['items']} items ({c['valid']} valid, {c['invalid']} unparsed, "
        f"{c['inconsistent']} inconsistent, {c['media_errors']} media errors)\n{head}"
    )


# -------------------------------------------------------------------------------------------------------------- CLI
def cli_main(benchmark: str, argv: Sequence[str] | None = None, *, description: str | None = None) -> int:
    """Parse flags and evaluate ``benchmark``; the body of every ``benchmark_evaluation/eval_*.py`` script.

    Returns:
        The exit status (1 on a data, output, flag or model error, with the message on stderr).
    """
    from unifiedreward.args import parse_args
    from unifiedreward.eval.benchmarks import get_benchmark

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    bench = get_benchmark(benchmark)
    args, backend_args = parse_args(
        [EvalArguments, BackendArguments], argv, prog=f"eval {benchmark}", description=description or bench.title
    )
    try:
        results = run_benchmark(bench, args, backend_args)
    except (UnifiedRewardError, ValueError) as exc:
        print(f"eval {benchmark}: error: {exc}", file=sys.stderr)
        return 1
    if results is not None:
        print(format_results(results))
        print(f"results: {Path(args.output_dir) / 'results.md'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m unifiedreward.eval.runner <benchmark> [flags]``."""
    from unifiedreward.eval.benchmarks import BENCHMARKS

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in BENCHMARKS:
        print(f"usage: python -m unifiedreward.eval.runner {{{','.join(BENCHMARKS)}}} [flags]", file=sys.stderr)
        return 2
    return cli_main(args[0], args[1:])


if __name__ == "__main__":
    sys.exit(main())
