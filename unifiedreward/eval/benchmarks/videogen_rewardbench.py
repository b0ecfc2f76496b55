"""VideoGen-RewardBench (KwaiVGI / KlingTeam, arXiv 2501.13918).

Format (benchmarks.md §1.2, protocol §6.4):

* Hub dataset ``KlingTeam/VideoGen-RewardBench`` (formerly ``KwaiVGI/...``): one CSV ``videogen-rewardbench.csv``
  (split ``eval``) plus ``videos.zip``, unzipped into the same folder so that the CSV's ``path_A`` / ``path_B``
  (e.g. ``videos/kling1.5/kling1.5_00103.mp4`` or ``./videos/...``) resolve against ``--media_root`` (default: the
  CSV's folder).
* Columns: ``path_A, path_B, A_model, B_model, prompt, VQ, MQ, TA, Overall, fps_A, num_frames_A, fps_B,
  num_frames_B``; each label is ``A``, ``B`` or ``same`` (tie). There is no id column: an item's id is its row
  position (an ``id`` column is used when present).

Canonical order: A = first (upstream never swaps; the runner's default ``--order random`` does, seeded). Metric set
``videogen_rewardbench``: the official accuracy with ties (tie calibration) and without ties on ``Overall``, the
UnifiedReward paper's tau/diff, and the same judgment against the ``VQ``/``MQ``/``TA`` labels.
"""

from __future__ import annotations

from unifiedreward.errors import DataError
from unifiedreward.eval.types import Benchmark, Item, MetricGroup, PublishedRow, Table

__all__ = ["BENCHMARK", "build_items"]

_PREFERENCE = {"A": "first", "B": "second", "same": "tie"}
_REQUIRED = ("path_A", "path_B", "prompt", "Overall")
_DIMENSIONS = ("VQ", "MQ", "TA")


def build_items(table: Table) -> list[Item]:
    """VideoGen-RewardBench rows as items.

    Raises:
        DataError: a required column is missing, or a row's ``Overall`` is not ``A``/``B``/``same``.
    """
    columns = set(table.columns)
    missing = [c for c in _REQUIRED if c not in columns]
    if missing:
        raise DataError(f"{table.source}: missing column(s) {missing}; columns are {sorted(columns)}")
    items = []
    for index, row in enumerate(table.rows()):
        overall = str(row.get("Overall", "")).strip()
        if overall not in _PREFERENCE:
            raise DataError(f"{table.source}: row {index}: Overall {overall!r} is not A, B or same")
        labels = {dim: str(row[dim]).strip() for dim in _DIMENSIONS if row.get(dim) is not None}
        raw_id = row.get("id")
        item_id = str(index) if raw_id is None or str(raw_id) == "" else str(raw_id)
        media = (str(row["path_A"]).strip(), str(row["path_B"]).strip())
        items.append(Item(item_id, overall, _PREFERENCE[overall], {"prompt": row["prompt"]}, media, labels=labels))
    return items


_UR = "UnifiedReward paper / project page (UR scripts: A always first, 3-way match, no tie calibration)"
_UR15 = "UnifiedReward README 2025-03-19 (UR scripts)"
_THINK = "UnifiedReward-Think paper, arXiv 2505.03318 (UR scripts)"
_BOARD = (
    "VideoGen-RewardBench leaderboard (HF Space KwaiVGI/VideoGen-RewardBench), Overall, VideoAlign calc_accuracy.py"
)
_DESCORE = "DeScore page (independent re-evaluation, its own protocol)"

BENCHMARK = Benchmark(
    name="videogen_rewardbench",
    title="VideoGen-RewardBench",
    task="video_generation",
    media_kind="video",
    metric_set="videogen_rewardbench",
    default_split="eval",
    candidates=("path_A", "path_B"),
    build_items=build_items,
    published=(
        PublishedRow("VideoReward (VideoAlign)", {"with_ties_videoalign": 61.26, "without_ties": 73.59}, _BOARD),
        PublishedRow("VisionReward", {"with_ties_videoalign": 56.77, "without_ties": 67.59}, _BOARD),
        PublishedRow(
            "'Generative' row (probably LiFT)", {"with_ties_videoalign": 39.08, "without_ties": 57.26}, _BOARD
        ),
        PublishedRow(
            "'Seq. classifier' row (probably VideoScore)",
            {"with_ties_videoalign": 41.80, "without_ties": 50.22},
            _BOARD,
        ),
        PublishedRow("'Others' row (probably random)", {"with_ties_videoalign": 41.86, "without_ties": 50.30}, _BOARD),
        PublishedRow("VideoScore", {"tau": 42.1, "diff": 49.9}, _UR),
        PublishedRow("LiFT", {"tau": 40.6, "diff": 58.3}, _UR),
        PublishedRow("VisionReward", {"tau": 57.4, "diff": 68.2}, _UR),
        PublishedRow("VideoReward (VideoAlign)", {"tau": 60.1, "diff": 73.9}, _UR),
        PublishedRow("LLaVA-OneVision-7B (base)", {"tau": 40.4, "diff": 50.2}, _UR),
        PublishedRow("UnifiedReward-7B", {"tau": 66.6, "diff": 79.3}, _UR),
        PublishedRow("UnifiedReward-7B-v1.5", {"tau": 67.0, "diff": 80.5}, _UR15),
        PublishedRow("UnifiedReward-Think w/o CoT", {"tau": 64.9, "diff": 79.9}, _THINK),
        PublishedRow("UnifiedReward-Think (CoT; never answers tie)", {"diff": 80.5}, _THINK),
        PublishedRow("UnifiedReward (DeScore re-evaluation)", {"tau": 30.3, "diff": 56.4}, _DESCORE),
        PublishedRow("VideoAlign (DeScore re-evaluation)", {"tau": 53.8, "diff": 72.2}, _DESCORE),
    ),
    groups=(
        MetricGroup(
            "Official VideoGen-RewardBench accuracy (Overall)",
            (
                ("with_ties", "w/ ties (Ties Matter)"),
                ("with_ties_videoalign", "w/ ties (VideoAlign calc)"),
                ("without_ties", "w/o ties"),
            ),
            "Leaderboard rows score every video with a point-wise reward and compare the margins; ours are pairwise "
            "verdicts (margins +1/0/-1) or, with --scoring probabilities, P(first) - P(second). The leaderboard's "
            "'w/ ties' is VideoAlign's calc_accuracy.py (column 2); column 1 is the Ties Matter algorithm "
            "(benchmarks.md §1.4).",
        ),
        MetricGroup(
            "UnifiedReward paper metrics (tau / diff)",
            (("tau", "tau (w/ ties, 3-way)"), ("diff", "diff (w/o ties)")),
            "UR's scripts: exact 3-way match over all pairs (tau) and accuracy on non-tie pairs (diff); they "
            "treated unparsed answers as tie predictions, which inflates tau (here they are wrong).",
        ),
        MetricGroup(
            "Per dimension (the overall judgment against each dimension's human label)",
            (
                ("VQ_with_ties", "VQ w/ ties"),
                ("VQ_without_ties", "VQ w/o ties"),
                ("MQ_with_ties", "MQ w/ ties"),
                ("MQ_without_ties", "MQ w/o ties"),
                ("TA_with_ties", "TA w/ ties"),
                ("TA_without_ties", "TA w/o ties"),
            ),
            "Ties Matter calibration; the leaderboard's per-dimension columns use per-dimension rewards instead.",
        ),
    ),
    notes=(
        (
            "Unparsed answers are never ties: they count wrong in every metric (for the tie calibration: the threshold "
            "is chosen on the parsed pairs and the correct count divided by all pairs, which is the same optimum)."
        ),
        "The CSV has no id column: an item's id is its row position.",
        (
            "Upstream always shows video A first; --order random (seed 0) swaps on a seeded coin flip per item and "
            "records it (`swapped`), so the accuracy is not inflated by a position bias."
        ),
    ),
    source="hub dataset KlingTeam/VideoGen-RewardBench: videogen-rewardbench.csv + videos.zip",
)
