"""GenAI-Bench (TIGER-Lab, arXiv 2406.04485): the ``image_generation`` and ``video_generation`` configs.

Format (benchmarks.md §1.1, protocol §6.2-6.3):

* Hub dataset ``TIGER-Lab/GenAI-Bench`` (parquet), one folder per config, splits ``test`` (used by UnifiedReward's
  scripts and paper) and ``test_v1`` (the official leaderboard split; the default here).
  ``image_generation`` rows: ``prompt, left_model, left_image (Image), right_model, right_image, vote_type``.
  ``video_generation`` rows: ``left_video`` / ``right_video`` as URL or path strings. Videos are never downloaded:
  they are looked up by file name in ``--media_root`` (and its ``videos/`` folder).
* UnifiedReward-Think's bundled ``GenAI-Bench-Video/data.json`` (1,889 items): a list of
  ``{id, prompt, video_left, video_right, vote_type}`` with the videos in ``./videos/``.
* ``vote_type`` in ``leftvote`` / ``rightvote`` / ``tievote`` (tie, both good) / ``bothbad_vote`` (tie, both bad).
  The hub rows carry no id: the row position within the split is the item id.

Canonical order: left = first. Metric set ``genai_bench``: the official 4-way accuracy, the UnifiedReward paper's
tau/diff, and with ``--scoring probabilities`` the tie-calibrated accuracy over P(first) - P(second).
"""

from __future__ import annotations

from typing import Any

from unifiedreward.errors import DataError
from unifiedreward.eval.metrics import GENAIBENCH_VOTE_TYPES
from unifiedreward.eval.types import Benchmark, Item, MetricGroup, PublishedRow, Table

__all__ = ["IMAGE", "VIDEO", "build_items"]

_PREFERENCE = {"leftvote": "first", "rightvote": "second", "tievote": "tie", "bothbad_vote": "tie"}
_MEDIA_COLUMNS = {
    "image": (("left_image", "right_image"),),
    "video": (("left_video", "right_video"), ("video_left", "video_right")),  # hub / UR's data.json
}


def build_items(table: Table, kind: str) -> list[Item]:
    """GenAI-Bench rows as items (``kind`` ``"image"`` or ``"video"``).

    Raises:
        DataError: the media columns are missing, or a row has an unknown ``vote_type`` or no prompt.
    """
    columns = set(table.columns)
    pair = next((p for p in _MEDIA_COLUMNS[kind] if set(p) <= columns), None)
    if pair is None:
        raise DataError(
            f"{table.source}: no {kind} columns {' or '.join('/'.join(p) for p in _MEDIA_COLUMNS[kind])}; "
            f"columns are {sorted(columns)} (wrong GenAI-Bench config?)"
        )
    items = []
    for index, row in enumerate(table.rows()):
        vote = str(row.get("vote_type", "")).strip()
        if vote not in GENAIBENCH_VOTE_TYPES:
            raise DataError(f"{table.source}: row {index}: vote_type {vote!r} is not one of {GENAIBENCH_VOTE_TYPES}")
        prompt = row.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataError(f"{table.source}: row {index}: no prompt")
        raw_id: Any = row.get("id")
        item_id = str(index) if raw_id is None or str(raw_id) == "" else str(raw_id)
        items.append(Item(item_id, vote, _PREFERENCE[vote], {"prompt": prompt}, (row[pair[0]], row[pair[1]])))
    return items


def _groups(split_note: str) -> tuple[MetricGroup, ...]:
    return (
        MetricGroup(
            "UnifiedReward paper metrics (tau / diff)",
            (("tau", "tau (w/ ties, 3-way)"), ("diff", "diff (w/o ties)")),
            "Published rows: UnifiedReward's tables, computed by UR's own scripts on split `test` (not the official "
            "`test_v1`), with unseeded order swaps and tie handling that differs per script (benchmarks.md §1.1). "
            f"Pass `--split test` to match their split. {split_note}",
        ),
        MetricGroup(
            "Official GenAI-Bench accuracy (4-way)",
            (("official_4way", "accuracy"),),
            "Leaderboard v1 (split `test_v1`): judges answer [[A>B]] / [[B>A]] / [[A=B=Good]] / [[A=B=Bad]]; a "
            "UnifiedReward tie is the official [[A=B]], correct for both tie kinds. Random baseline about 25%.",
        ),
        MetricGroup(
            "Tie-calibrated accuracy from answer probabilities (--scoring probabilities)",
            (
                ("with_ties", "w/ ties (Ties Matter)"),
                ("with_ties_videoalign", "w/ ties (VideoAlign calc)"),
                ("without_ties", "w/o ties"),
            ),
            "Margins P(first) - P(second); no published numbers use this protocol on GenAI-Bench.",
        ),
    )


_UR = "UnifiedReward paper / project page (UR scripts, split test)"
_UR15 = "UnifiedReward README 2025-03-19 (UR scripts, split test)"
_THINK = "UnifiedReward-Think paper, arXiv 2505.03318 (UR scripts, split test)"

_IMAGE_PUBLISHED = (
    PublishedRow("PickScore", {"tau": 53.2, "diff": 67.2}, _UR),
    PublishedRow("HPSv2", {"tau": 51.6, "diff": 68.4}, _UR),
    PublishedRow("ImageReward", {"tau": 47.8, "diff": 65.0}, _UR),
    PublishedRow("VisionReward", {"tau": 46.8, "diff": 66.4}, _UR),
    PublishedRow("LLaVA-OneVision-7B (base)", {"tau": 39.7, "diff": 53.2}, _UR),
    PublishedRow("UnifiedReward-7B", {"tau": 54.8, "diff": 70.9}, _UR),
    PublishedRow("UnifiedReward-7B-v1.5", {"tau": 58.9, "diff": 72.4}, _UR15),
    PublishedRow("UnifiedReward-Think w/o CoT", {"tau": 54.1, "diff": 71.9}, _THINK),
    PublishedRow("UnifiedReward-Think (CoT; never answers tie)", {"diff": 72.5}, _THINK),
    PublishedRow("GPT-4o", {"official_4way": 45.59}, "GenAI-Bench leaderboard v1 (README 2024-08-09, split test_v1)"),
    PublishedRow("Gemini-1.5-Pro", {"official_4way": 44.67}, "GenAI-Bench leaderboard v1 (split test_v1)"),
    PublishedRow("random", {"official_4way": 25.36}, "GenAI-Bench leaderboard v1 (split test_v1)"),
)

_DESCORE = "DeScore page (independent re-evaluation, its own protocol; ~1.9k video pairs)"
_VIDEO_PUBLISHED = (
    PublishedRow("VideoScore", {"tau": 46.2, "diff": 70.6}, _UR),
    PublishedRow("LiFT", {"tau": 41.2, "diff": 60.1}, _UR),
    PublishedRow("VisionReward", {"tau": 52.1, "diff": 73.1}, _UR),
    PublishedRow("VideoReward (VideoAlign)", {"tau": 50.2, "diff": 73.3}, _UR),
    PublishedRow("LLaVA-OneVision-7B (base)", {"tau": 40.8, "diff": 51.4}, _UR),
    PublishedRow("UnifiedReward-7B", {"tau": 60.7, "diff": 77.2}, _UR),
    PublishedRow("UnifiedReward-7B-v1.5", {"tau": 61.7, "diff": 78.5}, _UR15),
    PublishedRow("UnifiedReward-Think w/o CoT", {"tau": 57.8, "diff": 81.6}, _THINK),
    PublishedRow("UnifiedReward-Think (CoT; never answers tie)", {"diff": 82.3}, _THINK),
    PublishedRow("UnifiedReward (DeScore re-evaluation)", {"tau": 45.8, "diff": 68.6}, _DESCORE),
    PublishedRow("UnifiedReward-Thinking (DeScore re-evaluation)", {"tau": 54.8, "diff": 70.9}, _DESCORE),
    PublishedRow("GPT-4o", {"official_4way": 48.46}, "GenAI-Bench leaderboard v1 (README 2024-08-09, split test_v1)"),
    PublishedRow("Gemini-1.5-Pro", {"official_4way": 46.21}, "GenAI-Bench leaderboard v1 (split test_v1)"),
    PublishedRow("random", {"official_4way": 25.16}, "GenAI-Bench leaderboard v1 (split test_v1)"),
)

_NOTES = (
    (
        "UnifiedReward prompts offer three verdicts (1 better, 2 better, equally good). 'Equally good' is scored as the "
        "official [[A=B]], which the official rule counts correct for both tievote and bothbad_vote, so the 4-way "
        "accuracy gives no credit for telling good ties from bad ones (metrics.genaibench_accuracy)."
    ),
    "The hub rows have no id column: an item's id is its row position in the split (files in name order).",
    (
        "Unparsed answers are never ties: they are wrong in every GenAI-Bench metric (upstream's video scripts turned "
        "them into tie predictions, protocol §8.2 item 11)."
    ),
)

IMAGE = Benchmark(
    name="genai_bench_image",
    title="GenAI-Bench, image generation",
    task="image_generation",
    media_kind="image",
    metric_set="genai_bench",
    default_split="test_v1",
    candidates=("left_image", "right_image"),
    build_items=lambda table: build_items(table, "image"),
    subdir="image_generation",
    published=_IMAGE_PUBLISHED,
    groups=_groups("UR resized nothing (Qwen) or to 512x512 (LLaVA)."),
    notes=_NOTES,
    source="hub dataset TIGER-Lab/GenAI-Bench, config image_generation (parquet)",
)

VIDEO = Benchmark(
    name="genai_bench_video",
    title="GenAI-Bench, video generation",
    task="video_generation",
    media_kind="video",
    metric_set="genai_bench",
    default_split="test_v1",
    candidates=("left_video", "right_video"),
    build_items=lambda table: build_items(table, "video"),
    subdir="video_generation",
    published=_VIDEO_PUBLISHED,
    groups=_groups("UR's LLaVA script sampled 8 frames per video; the official judge 16."),
    notes=(
        *_NOTES,
        (
            "Videos: the hub's left_video/right_video are URLs or paths and UR's data.json has file names; nothing is "
            "downloaded: each file is looked up by name in --media_root and its videos/ folder."
        ),
    ),
    source="hub dataset TIGER-Lab/GenAI-Bench, config video_generation (parquet), or UR's GenAI-Bench-Video data.json",
)
