"""Held-out benchmark files of the world in the official formats (split ``heldout``: disjoint from training draws).

GenAI-Bench image and video (jsonl rows as the hub's ``image_generation`` / ``video_generation`` configs, media by
path), VideoGen-RewardBench (the csv), VL-RewardBench (the GitHub ``data.jsonl``), a VL-RewardBench-style
video-understanding file (``video`` instead of ``image_path``; read by :func:`video_understanding_benchmark`) and
point-score requests in the ``unifiedreward judge`` JSONL format with the true score in ``meta``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unifiedreward.synth.examples import make_example
from unifiedreward.synth.media import VIDEO_FPS, save_media
from unifiedreward.synth.records import progress_bar
from unifiedreward.synth.tasks import TASKS, DifficultyMix, Example
from unifiedreward.synth.text import score_range
from unifiedreward.synth.world import World

__all__ = ["HeldoutData", "video_understanding_benchmark", "write_heldout"]

@dataclass
class HeldoutData:
    """What :func:`write_heldout` wrote (paths of each benchmark file; media are beside them)."""

    genai_bench_image: Path | None = None
    genai_bench_video: Path | None = None
    videogen_rewardbench: Path | None = None
    vl_rewardbench: Path | None = None
    video_understanding: Path | None = None
    point_score: Path | None = None
    counts: dict[str, int] = field(default_factory=dict)


_VLRB_PREFIX = {  # question type -> an id prefix of the official VL-RewardBench category it resembles most
    "color": "RLAIF-V-synth",
    "shape": "RLAIF-V-synth",
    "describe": "hallucination_pair-synth",
    "count": "mathverse-synth",
    "position": "wildvision-synth",
}


def _vlrb_row(example: Example, path: str, media_key: str) -> dict[str, Any]:
    first, second = example.fields["answer1"], example.fields["answer2"]
    right, wrong = (first, second) if example.verdict == "first" else (second, first)
    ranking = [0, 1] if example.verdict == "first" else [1, 0]
    prefix = _VLRB_PREFIX.get(example.kind, "synth") if media_key == "image_path" else "synth-video"
    return {
        "id": f"{prefix}-{example.id}",
        "query": example.fields["question"],
        "response": [first, second],
        media_key: path,
        "human_ranking": ranking,
        "models": ["synth-truth" if a == right else f"synth-wrong-{example.kind}" for a in (first, second)],
        "judge": "synthetic ground truth",
        "rationale": f"{right!r} is true of the {'clip' if media_key == 'video' else 'image'}; {wrong!r} gets the "
        f"{'/'.join(example.meta.get('wrong_attributes', []))} wrong.",
        "query_source": f"synth-{example.kind}",
        "ground_truth": right,
        "meta": {"question_type": example.kind, "spec": example.meta.get("spec")},
    }


#: Held-out pair benchmarks of the same shape: key -> (task, folder, media subfolder, the row builder's media key).
_GENAI = {
    "genai_bench_image": ("image_generation", "genai_bench_image", "images", "image"),
    "genai_bench_video": ("video_generation", "video_generation", "videos", "video"),
}
_VLRB = {
    "vl_rewardbench": ("image_understanding", "vl_rewardbench", "images", "image_path"),
    "video_understanding": ("video_understanding", "video_understanding", "videos", "video"),
}


def write_heldout(
    out_dir: str | Path,
    world: World,
    num: Mapping[str, int] | int,
    *,
    mix: DifficultyMix | None = None,
    progress: bool = False,
) -> HeldoutData:
    """Write the held-out benchmark files (split ``heldout``: draws disjoint from the training split's).

    Layout under ``out_dir``::

        genai_bench_image/test_v1.jsonl + images/       GenAI-Bench image_generation rows (paths)
        video_generation/test_v1.jsonl + videos/        GenAI-Bench video_generation rows
        video_generation/videogen-rewardbench.csv       the same pairs as VideoGen-RewardBench rows
        vl_rewardbench/data.jsonl + images/             VL-RewardBench GitHub data.jsonl rows
        video_understanding/data.jsonl + videos/        VL-RewardBench-style rows with a "video" path
        point_score/requests.jsonl + media/             unifiedreward judge requests, true score in meta

    Args:
        num: items per benchmark key (``genai_bench_image``, ``genai_bench_video``, ``vl_rewardbench``,
            ``video_understanding``, ``point_score`` per task) or one int for all.
    """
    out = Path(out_dir).resolve()
    keys = ("genai_bench_image", "genai_bench_video", "vl_rewardbench", "video_understanding", "point_score")
    counts = dict.fromkeys(keys, num) if isinstance(num, int) else {k: int(num.get(k, 0)) for k in keys}
    total = sum(counts[k] * (4 if k == "point_score" else 1) for k in keys)
    bar = progress_bar(total, "held-out data", progress)
    result = HeldoutData(counts=dict(counts))

    def examples(task: str, mode: str, n: int) -> Iterator[Example]:
        for index in range(n):
            yield make_example(world, task, mode, index, "heldout", mix)
            bar.update(1)

    for key, (task, name, media, kind) in _GENAI.items():
        if counts[key]:
            folder = out / name
            pairs = [(ex, save_media(ex, folder / media, folder)) for ex in examples(task, "pair_rank", counts[key])]
            rows = [_genai_row(ex, paths, kind) for ex, paths in pairs]
            setattr(result, key, _write_jsonl(folder / "test_v1.jsonl", rows))
            if kind == "video":  # the same pairs as VideoGen-RewardBench rows
                result.videogen_rewardbench = _write_videogen_csv(folder / "videogen-rewardbench.csv", pairs)
    for key, (task, name, media, media_key) in _VLRB.items():
        if counts[key]:
            folder = out / name
            rows = []
            for ex in examples(task, "pair_rank", counts[key]):
                (path,) = save_media(ex, folder / media, folder)
                rows.append(_vlrb_row(ex, path, media_key))
            setattr(result, key, _write_jsonl(folder / "data.jsonl", rows))
    if counts["point_score"]:
        folder = out / "point_score"
        rows = []
        for task in TASKS:
            for ex in examples(task, "point_score", counts["point_score"]):
                paths = save_media(ex, folder / "media", folder)
                row: dict[str, Any] = {"id": ex.id, "task": task, "mode": "point_score"}
                row["videos" if ex.is_video else "images"] = paths
                row.update(ex.fields)
                row["meta"] = {"truth": ex.score, "score_range": list(score_range(task)), "kind": ex.kind}
                rows.append(row)
        result.point_score = _write_jsonl(folder / "requests.jsonl", rows)
    bar.close()
    return result


def _genai_row(example: Example, paths: list[str], kind: str) -> dict[str, Any]:
    """A GenAI-Bench row (``kind``: ``image`` or ``video``, the suffix of the media keys)."""
    (left, right), models = paths, _model_names(example)
    return {"id": example.id, "prompt": example.fields["prompt"], "left_model": models[0], f"left_{kind}": left,
            "right_model": models[1], f"right_{kind}": right, "vote_type": example.vote_type}  # fmt: skip


def _write_videogen_csv(path: Path, pairs: list[tuple[Example, list[str]]]) -> Path:
    """VideoGen-RewardBench rows of video-generation pairs (motion quality differs only in direction pairs)."""
    rows = []
    for ex, (left, right) in pairs:
        models = _model_names(ex)
        overall = {"first": "A", "second": "B", "tie": "same"}[ex.verdict or "tie"]
        motion = overall if ex.kind == "direction" else "same"
        frames = len(ex.media[0].frames)  # type: ignore[union-attr]
        rows.append({"id": ex.id, "path_A": left, "path_B": right, "A_model": models[0], "B_model": models[1],
                     "prompt": ex.fields["prompt"], "VQ": "same", "MQ": motion, "TA": overall, "Overall": overall,
                     "fps_A": VIDEO_FPS, "num_frames_A": frames, "fps_B": VIDEO_FPS, "num_frames_B": frames})  # fmt: skip
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _model_names(example: Example) -> list[str]:
    caption = example.meta["caption_spec"]
    names = []
    for spec in example.meta["specs"]:
        wrong = [k for k, v in spec.items() if caption.get(k) != v]
        names.append("synth-match" if not wrong else "synth-wrong-" + "-".join(wrong))
    return names


def _write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path



# ------------------------------------------------------------------------------------ video-understanding benchmark
def _video_items(table: Any) -> list[Any]:
    from unifiedreward.errors import DataError
    from unifiedreward.eval.types import Item

    items = []
    for index, row in enumerate(table.rows()):
        item_id = row.get("id")
        responses = row.get("response")
        ranking = [int(x) for x in row.get("human_ranking") or []]
        if not item_id or not isinstance(responses, list) or len(responses) != 2 or not row.get("video"):
            raise DataError(f"{table.source}: row {index}: needs id, two responses and a video")
        if ranking not in ([0, 1], [1, 0]):
            raise DataError(f"{table.source}: row {index}: human_ranking {ranking!r} is not [0, 1] or [1, 0]")
        gold = "first" if ranking == [0, 1] else "second"
        fields = {"question": row.get("query", ""), "answer1": responses[0], "answer2": responses[1]}
        items.append(Item(str(item_id), gold, gold, fields, (row["video"],), category=None,
                          labels={"human_ranking": ranking}))  # fmt: skip
    return items


def video_understanding_benchmark() -> Any:
    """A :class:`~unifiedreward.eval.runner.Benchmark` for the VL-RewardBench-style video-understanding file.

    There is no public video pair-rank benchmark format in the evaluation runner, so this one reuses VL-RewardBench's
    row format (``id, query, response, human_ranking``) with a ``video`` path, and its metric set (overall
    accuracy; the categories follow the id prefix, all "general" here). Pass it to
    :func:`unifiedreward.eval.runner.run_benchmark`.
    """
    from unifiedreward.eval.types import Benchmark

    return Benchmark(
        name="synth_video_understanding",
        title="Synthetic video understanding (VL-RewardBench-style rows with a video)",
        task="video_understanding",
        media_kind="video",
        metric_set="vl_rewardbench",
        default_split=None,
        candidates=("response[0]", "response[1]"),
        build_items=_video_items,
        notes=("Synthetic world (unifiedreward.synth); categories are not meaningful: read the overall accuracy.",),
        source="unifiedreward.synth.heldout.write_heldout",
    )

