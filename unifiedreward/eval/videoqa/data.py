"""The video-QA questions, read from the files as upstream ships them (``--data_dir``; videos in ``--video_dir``,
default ``<data_dir>/videos``):

* MSRVTT-QA: ``test_qa.json``: ``[{"video_id", "question", "answer", "id"}]``; video ``video{video_id}.mp4``.
* MSVD-QA: ``test_qa.json`` (same keys, 13,157 records) and ``youtube_mapping.txt`` (lines ``<clip name> vid<N>``);
  video ``<clip name>.avi`` (upstream strips a leading ``-`` from the clip name; both spellings are tried).
* TGIF-QA: ``test_q.json`` (``question``, ``video_name``, ``question_id``) with ``test_a.json`` (``answer``,
  ``type``, ``question_id``), joined by ``question_id`` (by position where a file has none); video
  ``<video_name>.mp4``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unifiedreward.errors import DataError

__all__ = ["DATASETS", "QAItem", "load_qa_items"]

DATASETS: tuple[str, ...] = ("msrvtt", "msvd", "tgif")


@dataclass(frozen=True)
class QAItem:
    """One question: ``id``, ``question``, the reference ``answer`` and the video file."""

    id: str
    question: str
    answer: str
    video: Path


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise DataError(f"{path} does not exist (see docs/evaluation.md for the video-QA layout)")
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from exc


def _records(path: Path, keys: Sequence[str]) -> list[dict[str, Any]]:
    data = _read_json(path)
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a list of records")
    for number, record in enumerate(data):
        missing = [k for k in keys if not isinstance(record, dict) or k not in record]
        if missing:
            raise DataError(f"{path}: record {number} lacks {missing}")
    return data


def _msvd_mapping(path: Path) -> dict[str, str]:
    """``youtube_mapping.txt``: ``<clip name> vid<N>`` per line -> ``{"<N>": "<clip name>"}``."""
    if not path.is_file():
        raise DataError(f"{path} does not exist (MSVD-QA maps video ids to clip names with it)")
    mapping = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].startswith("vid"):
            raise DataError(f"{path}:{number}: expected '<clip name> vid<N>', got {line!r}")
        mapping[parts[1][3:]] = parts[0]
    return mapping


def _msvd_video(video_dir: Path, clip: str) -> Path:
    for name in (clip, clip.lstrip("-")):
        candidate = video_dir / f"{name}.avi"
        if candidate.exists():
            return candidate
    return video_dir / f"{clip}.avi"  # missing: reported when loaded


def load_qa_items(
    dataset: str, data_dir: str | os.PathLike, video_dir: str | os.PathLike | None = None
) -> list[QAItem]:
    """The questions of ``dataset`` in file order (see the module docstring for the layouts).

    Raises:
        DataError: a missing or malformed file, an MSVD video id without a clip name, TGIF question and answer files
            that do not line up, or a duplicate id.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    root = Path(data_dir)
    videos = Path(video_dir) if video_dir else root / "videos"
    items: list[QAItem] = []
    if dataset == "msrvtt":
        for r in _records(root / "test_qa.json", ("video_id", "question", "answer", "id")):
            items.append(
                QAItem(str(r["id"]), str(r["question"]), str(r["answer"]), videos / f"video{r['video_id']}.mp4")
            )
    elif dataset == "msvd":
        mapping = _msvd_mapping(root / "youtube_mapping.txt")
        for r in _records(root / "test_qa.json", ("video_id", "question", "answer", "id")):
            clip = mapping.get(str(r["video_id"]))
            if clip is None:
                raise DataError(f"{root / 'youtube_mapping.txt'}: no clip for video id vid{r['video_id']}")
            items.append(QAItem(str(r["id"]), str(r["question"]), str(r["answer"]), _msvd_video(videos, clip)))
    else:
        questions = _records(root / "test_q.json", ("question", "video_name"))
        answers = _records(root / "test_a.json", ("answer",))
        if all("question_id" in q for q in questions) and all("question_id" in a for a in answers):
            by_id = {str(a["question_id"]): a for a in answers}
            missing = [q["question_id"] for q in questions if str(q["question_id"]) not in by_id]
            if missing:
                raise DataError(f"{root / 'test_a.json'}: no answer for question_id {missing[:5]}")
            pairs = [(q, by_id[str(q["question_id"])]) for q in questions]
        elif len(questions) == len(answers):
            pairs = list(zip(questions, answers, strict=True))
        else:
            raise DataError(f"{root}: {len(questions)} questions but {len(answers)} answers and no question_id")
        for k, (q, a) in enumerate(pairs):
            qid = str(q.get("question_id", a.get("question_id", k)))
            items.append(QAItem(qid, str(q["question"]), str(a["answer"]), videos / f"{q['video_name']}.mp4"))
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise DataError(f"{dataset}: question id {item.id!r} occurs twice")
        seen.add(item.id)
    return items
