"""The shared types of benchmark evaluation: a benchmark's description and the tables its rows come from.

:class:`Benchmark` (with :class:`Item`, :class:`PublishedRow`, :class:`MetricGroup`) is what a module of
:mod:`unifiedreward.eval.benchmarks` declares; :class:`Table` / :class:`Cell` are the rows it builds items from.
Nothing here imports the rest of :mod:`unifiedreward.eval`: benchmarks -> types, runner -> benchmarks, types.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MEDIA_ERROR", "Benchmark", "Cell", "Item", "MetricGroup", "PublishedRow", "Table"]

#: ``status`` of a prediction whose media could not be read (left out of the metrics, tried again on the next run).
MEDIA_ERROR = "media_error"


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
        build_items: ``(table) -> list[Item]`` (raise :class:`~unifiedreward.errors.DataError` naming the row on a
            bad row).
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
