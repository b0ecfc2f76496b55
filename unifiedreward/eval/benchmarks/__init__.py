"""Benchmark registry: name -> the module (and attribute) describing that benchmark's data format.

Each module holds only format knowledge (which files, how a row becomes an :class:`~unifiedreward.eval.types.Item`,
the published numbers to compare with) and names its metric set; loading, judging, ordering, outputs and metrics are
in :mod:`unifiedreward.eval.runner` and the modules beside it. Modules are imported only when their benchmark is
asked for.

    >>> from unifiedreward.eval.benchmarks import get_benchmark
    >>> get_benchmark("vl_rewardbench").metric_set
    'vl_rewardbench'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from unifiedreward.eval.types import Benchmark

#: benchmark name -> (module, attribute holding its :class:`~unifiedreward.eval.types.Benchmark`)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "genai_bench_image": ("unifiedreward.eval.benchmarks.genai_bench", "IMAGE"),
    "genai_bench_video": ("unifiedreward.eval.benchmarks.genai_bench", "VIDEO"),
    "videogen_rewardbench": ("unifiedreward.eval.benchmarks.videogen_rewardbench", "BENCHMARK"),
    "vl_rewardbench": ("unifiedreward.eval.benchmarks.vl_rewardbench", "BENCHMARK"),
}

__all__ = ["BENCHMARKS", "get_benchmark"]


def get_benchmark(name: str) -> Benchmark:
    """The :class:`~unifiedreward.eval.types.Benchmark` registered as ``name``.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    module, attribute = BENCHMARKS[name]
    return getattr(importlib.import_module(module), attribute)
