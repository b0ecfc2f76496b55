"""Judging a chunk of requests into output records: media loading, the ``RewardJudge`` call, the record layout.

:func:`judge_chunk` is the ``process`` step of ``unifiedreward judge`` on the resumable-job engine
(:func:`unifiedreward.io.run_resumable`), and :meth:`MediaLoader.load` its ``load`` step (run one chunk ahead in a
thread pool). A request whose media cannot be loaded gets an *invalid* record whose ``reason`` starts with
``media error:`` and names the file; it is never sent to the model and never stops the run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unifiedreward.errors import MediaError, TemplateError, UnifiedRewardError
from unifiedreward.io.files import to_jsonable
from unifiedreward.judge.judge import invalid_result
from unifiedreward.judge.requests import InputRecord, template_of

logger = logging.getLogger(__name__)

__all__ = ["RECORD_KEYS", "MediaLoader", "judge_chunk", "result_record"]

#: The fixed leading keys of every output record, in order; the result's other fields follow.
RECORD_KEYS: tuple[str, ...] = ("id", "task", "mode", "template", "status", "verdict", "score", "reason", "raw")


def result_record(record: InputRecord, template_id: str | None, result: Any) -> dict[str, Any]:
    """The output line of one request.

    Keys, in order: ``id``, ``task``, ``mode``, ``template`` (the id used), ``status`` (``"valid"`` / ``"invalid"``),
    ``verdict`` (``"first"`` / ``"second"`` / ``"tie"`` or ``null``; ``null`` for point scores), ``score`` (a float
    or ``null``; ``null`` for pairwise results), ``reason`` (why it is invalid, else ``null``), ``raw`` (the model's
    answer); then every other field of the result dataclass (e.g. ``think``, ``dimension_scores``, ``scores``,
    ``probabilities``, ``score_range``, ...; new result fields appear automatically), then ``meta`` when the input
    line had one.
    """
    data = to_jsonable(result)
    out: dict[str, Any] = {
        "id": record.id,
        "task": record.task,
        "mode": record.mode,
        "template": template_id,
        "status": getattr(result, "status", "valid" if getattr(result, "valid", False) else "invalid"),
        "verdict": data.pop("verdict", None),
        "score": data.pop("score", None),
        "reason": data.pop("reason", None),
        "raw": data.pop("raw", None),
    }
    for key, value in data.items():
        out.setdefault(key, value)
    if record.meta is not None:
        out["meta"] = to_jsonable(record.meta)
    return out


@dataclass(frozen=True)
class MediaLoader:
    """Loads a request's media with :func:`unifiedreward.media.resolve_media` (``MediaError`` -> a reason string).

    Attributes:
        root: the media root relative paths start from (``--media_root``; a missing file is also looked up by name
            in ``root``, ``root/videos`` and ``root/images``, as :func:`~unifiedreward.media.resolve_path` does).
        num_frames: frames per video unless the request sets its own ``num_frames``.
        fps: sample video files at this rate (capped at the frame count); ``None``: uniform sampling.
        max_pixels: downsize images and frames to at most this many pixels.
    """

    root: Path
    num_frames: int
    fps: float | None = None
    max_pixels: int | None = None

    def load(self, record: InputRecord) -> tuple[list[Any], list[Any], str | None]:
        """``(images, videos, None)``, or ``([], [], "media error: ...")`` naming the file if any fails to load."""
        from unifiedreward.media import resolve_media

        try:
            images = [resolve_media(p, "image", root=self.root, max_pixels=self.max_pixels) for p in record.images]
            frames = record.num_frames or self.num_frames
            videos = [
                resolve_media(p, "video", root=self.root, num_frames=frames, fps=self.fps, max_pixels=self.max_pixels)
                for p in record.videos
            ]
        except MediaError as exc:
            return [], [], f"media error: {exc}"
        return images, videos, None


def judge_chunk(judge: Any, chunk: Sequence[InputRecord], loaded: Sequence[tuple]) -> list[dict[str, Any]]:
    """Judge one chunk of requests: the output records, one per request, in order.

    Args:
        judge: a :class:`~unifiedreward.judge.judge.RewardJudge` (or anything with its ``judge``, ``template_for``,
            ``family`` and ``version``).
        chunk: the requests.
        loaded: :meth:`MediaLoader.load` of each request: ``(images, videos, error)``.

    Returns:
        :func:`result_record` of each request. Requests with a media error are not sent to the judge; their record
        is :func:`~unifiedreward.judge.judge.invalid_result` with the error as ``reason``.

    Raises:
        UnifiedRewardError: the judge returned a different number of results than requests (a broken backend).
    """
    from unifiedreward.judge.judge import JudgeRequest

    requests: list[JudgeRequest] = []
    live: list[int] = []
    for position, (record, (images, videos, error)) in enumerate(zip(chunk, loaded, strict=True)):
        if error is None:
            live.append(position)
            requests.append(
                JudgeRequest(record.task, record.mode, images=images, videos=videos, fields=dict(record.fields),
                             template=record.template, id=record.id)
            )  # fmt: skip
    results = judge.judge(requests) if requests else []
    if len(results) != len(requests):
        raise UnifiedRewardError(f"the judge returned {len(results)} results for {len(requests)} requests")
    by_position = dict(zip(live, zip(requests, results, strict=True), strict=True))
    lines = []
    for position, record in enumerate(chunk):
        if position in by_position:
            request, result = by_position[position]
            try:
                template_id = judge.template_for(request).id
            except TemplateError:
                template_id = record.template
        else:
            try:
                spec = template_of(record, judge.family, judge.version)
            except TemplateError:
                spec = None
            template_id = spec.id if spec is not None else record.template
            result = invalid_result(spec if spec is not None else record.mode, loaded[position][2])
        lines.append(result_record(record, template_id, result))
    return lines
