"""VL-RewardBench (arXiv 2411.17451): image understanding, which of two answers to a question is better.

Format (benchmarks.md §1.3, protocol §6.5):

* Hub dataset ``MMInstruction/VL-RewardBench`` (parquet, split ``test``): ``id, query, response`` (2 strings),
  ``image`` (Image), ``human_ranking``, ``models, judge, rationale, query_source, ground_truth``.
* The GitHub ``data/data.jsonl`` (same fields, ``image_path`` instead of ``image``) and UnifiedReward-Think's bundled
  ``VL-RewardBench/data.json`` (a list; ``image`` is a relative path such as ``images/RLAIF-V-14.png``): image paths
  are looked up in ``--media_root`` (default: the data file's folder), then by file name in its ``images/`` folder.
* ``human_ranking[i]`` is the rank of ``response[i]``, 0 = better: ``[0, 1]`` means ``response[0]`` is preferred
  (1,245 of the 1,250 items, so an evaluation that never swaps leaks position bias), ``[1, 0]`` the reverse.

Canonical order: ``response[0]`` = first. Metric set ``vl_rewardbench``: overall and macro accuracy with the
official id -> category map (unparsed excluded, as the official ``cal.py``), plus UnifiedReward's scripts' variant.
"""

from __future__ import annotations

import json
from typing import Any

from unifiedreward.errors import DataError
from unifiedreward.eval.metrics import vlrewardbench_category
from unifiedreward.eval.types import Benchmark, Item, MetricGroup, PublishedRow, Table

__all__ = ["BENCHMARK", "build_items"]


def _as_list(value: Any) -> Any:
    if isinstance(value, str):  # a list serialised into a text column
        try:
            return json.loads(value)
        except ValueError:
            return value
    return list(value) if isinstance(value, tuple) else value


def build_items(table: Table) -> list[Item]:
    """VL-RewardBench rows as items.

    Raises:
        DataError: a row without an id, query, image or two responses, or with a ``human_ranking`` other than
            ``[0, 1]`` / ``[1, 0]``.
    """
    items = []
    for index, row in enumerate(table.rows()):
        item_id = row.get("id")
        if item_id is None or str(item_id) == "":
            raise DataError(f"{table.source}: row {index}: no id")
        item_id = str(item_id)
        where = f"{table.source}: item {item_id!r}"
        responses = _as_list(row.get("response"))
        if not isinstance(responses, list) or len(responses) != 2:
            raise DataError(f"{where}: 'response' must hold two answers, got {responses!r:.80}")
        ranking = _as_list(row.get("human_ranking"))
        ranking = [int(x) for x in ranking] if isinstance(ranking, list) else ranking
        if ranking == [0, 1]:
            gold = "first"
        elif ranking == [1, 0]:
            gold = "second"
        else:
            raise DataError(f"{where}: human_ranking {ranking!r} is not [0, 1] or [1, 0]")
        image = row.get("image")
        if image is None or image == "":
            image = row.get("image_path")
        if image is None or image == "":
            raise DataError(f"{where}: no 'image' or 'image_path'")
        fields = {"question": row.get("query", ""), "answer1": responses[0], "answer2": responses[1]}
        items.append(Item(item_id, gold, gold, fields, (image,), category=vlrewardbench_category(item_id),
                          labels={"human_ranking": ranking}))  # fmt: skip
    return items


_PAPER = "VL-RewardBench paper (official grouping; 10 samples per item, majority vote)"
_UR = "UnifiedReward paper table (UR scripts: POVID under General, unparsed wrong)"
_NEITHER = "UnifiedReward project page 2025-03 (fits neither grouping, benchmarks.md §1.3)"
_COLUMNS = ("general", "hallucination", "reasoning", "overall", "macro")


def _row(model: str, values: tuple[float, ...], source: str, prefix: str = "") -> PublishedRow:
    return PublishedRow(model, {prefix + k: v for k, v in zip(_COLUMNS, values, strict=True)}, source)


BENCHMARK = Benchmark(
    name="vl_rewardbench",
    title="VL-RewardBench",
    task="image_understanding",
    media_kind="image",
    metric_set="vl_rewardbench",
    default_split="test",
    candidates=("response[0]", "response[1]"),
    build_items=build_items,
    published=(
        _row("Gemini-1.5-Pro", (50.8, 72.5, 64.2, 67.2, 62.5), _PAPER),
        _row("GPT-4o", (49.1, 67.6, 70.5, 65.8, 62.4), _PAPER),
        _row("LLaVA-Critic", (47.4, 38.5, 53.8, 46.9, 46.6), _UR, "ur_"),
        _row("LLaVA-OneVision-7B (base)", (32.2, 20.1, 57.1, 29.6, 36.5), _UR, "ur_"),
        _row("UnifiedReward-7B", (60.6, 78.4, 60.5, 66.1, 66.5), _NEITHER, "ur_"),
        _row("UnifiedReward-7B-v1.5", (68.1, 84.4, 59.5, 70.1, 70.7), "UnifiedReward README 2025-03-19", "ur_"),
        _row("UnifiedReward (README after 2025-05-09)", (76.5, 58.1, 65.1, 67.5, 66.6), "UnifiedReward README", "ur_"),
        _row("UnifiedReward-Think w/o CoT", (77.9, 70.5, 65.4, 73.1, 71.3), "UnifiedReward-Think paper", "ur_"),
        _row("UnifiedReward-Think (CoT)", (78.1, 72.7, 66.0, 73.8, 72.3), "UnifiedReward-Think paper", "ur_"),
    ),
    groups=(
        MetricGroup(
            "Official VL-RewardBench accuracy",
            tuple((k, k.capitalize()) for k in _COLUMNS),
            "Official categories (General 183 / Hallucination 749 / Reasoning 318); unparsed answers excluded from "
            "the denominators (reported as invalid), as the official cal.py. The paper samples 10 answers per item "
            "and takes a majority vote; this run judges once per item.",
        ),
        MetricGroup(
            "UnifiedReward scripts' variant",
            tuple(("ur_" + k, k.capitalize()) for k in _COLUMNS),
            "UR's scripts put the 448 POVID items under General (General 631 / Hallucination 301 / Reasoning 318) "
            "and count unparsed answers wrong. Their per-category numbers are not comparable with the paper's.",
        ),
    ),
    notes=(
        (
            "response[0] is the preferred answer in 1,245 of 1,250 items: --order random (seed 0, recorded per item as "
            "`swapped`) or both is needed for a meaningful accuracy."
        ),
        (
            "With --order both, a pair judged differently in the two orders has no verdict and is excluded like the "
            "official 'no majority' case (status 'inconsistent')."
        ),
        (
            "Images: the hub's `image` column, or the `image`/`image_path` path of the json/jsonl copies, resolved in "
            "--media_root."
        ),
    ),
    source="hub dataset MMInstruction/VL-RewardBench (parquet), or the GitHub data.jsonl / UR's data.json + images",
)
