"""Candidate sets: what a sifting strategy chooses from, and the judge requests that compare its members.

A :class:`CandidateSet` is N candidates for one prompt:

* **understanding** (``image_understanding`` / ``video_understanding``): N text answers sampled from a policy VLM for
  one question about one image or video. The context medium is shown in every judge request; the candidates are
  the ``answer1`` / ``answer2`` (pairwise) or ``response`` (pointwise) fields.
* **generation** (``image_generation`` / ``video_generation``): N images or videos generated for one caption
  (DiffusionDPO / VideoDPO). The candidates *are* the media: a pair request shows two of them, a point request one.

Each :class:`Candidate` keeps what goes into the output record (``output``: the answer text, or the generated
file's path) apart from what the judge is shown (``media``: the decoded image / video of a generated candidate),
and the seed it was sampled with, so every sample is reproducible and recorded.

Templates (:func:`default_template`): by default the judge's own family/version templates
(:func:`unifiedreward.protocol.select_template`); with ``pipeline=True`` and a LLaVA judge, the templates upstream's
preference pipelines used (protocol reference §4 and §1.9): ``T-PREF-IU-PAIR`` + ``T-IU-POINT-LLAVA``,
``T-PREF-VU-PAIR`` + ``T-VU-POINT``, ``T-IG-PAIR-LLAVA`` + ``T-IG-POINT-10``, ``T-VG-PAIR-VDPO`` + ``T-VG-POINT-VDPO``.
Those texts are LLaVA-only, so a Qwen judge always gets its own templates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from unifiedreward.judge.judge import JudgeRequest
from unifiedreward.protocol import select_template

UNDERSTANDING_TASKS = ("image_understanding", "video_understanding")
GENERATION_TASKS = ("image_generation", "video_generation")
TASKS = UNDERSTANDING_TASKS + GENERATION_TASKS

# Upstream's preference pipelines (protocol reference §4): task -> (pair-rank template, point-score template).
PIPELINE_TEMPLATES: dict[str, tuple[str, str]] = {
    "image_understanding": ("T-PREF-IU-PAIR", "T-IU-POINT-LLAVA"),
    "video_understanding": ("T-PREF-VU-PAIR", "T-VU-POINT"),
    "image_generation": ("T-IG-PAIR-LLAVA", "T-IG-POINT-10"),
    "video_generation": ("T-VG-PAIR-VDPO", "T-VG-POINT-VDPO"),
}


@dataclass(frozen=True)
class Candidate:
    """One member of a candidate set.

    Attributes:
        output: what the output record holds for this candidate: the answer text (understanding) or the generated
            file's path or reference (generation).
        media: the decoded image (PIL) or :class:`unifiedreward.media.Video` shown to the judge for a generated
            candidate; ``None`` for text answers.
        seed: the seed this candidate was sampled with (``None``: unknown or greedy).
        meta: sampling details (finish reason, token count, ...), JSON-serialisable.
    """

    output: Any
    media: Any = None
    seed: int | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class CandidateSet:
    """N candidates for one prompt.

    Attributes:
        id: the input record's id (string key).
        task: one of :data:`TASKS`.
        prompt: the question (understanding) or the caption (generation).
        candidates: the candidates, in sampling order (upstream pairs them as ``(0, 1), (2, 3), ...``).
        image: the decoded context image of an ``image_understanding`` set.
        video: the decoded context :class:`~unifiedreward.media.Video` of a ``video_understanding`` set.
        source: the input record, carried into the output record.
    """

    id: str
    task: str
    prompt: str
    candidates: list[Candidate]
    image: Any = None
    video: Any = None
    source: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")

    @property
    def understanding(self) -> bool:
        """True for text answers about a context image / video, False for generated media."""
        return self.task in UNDERSTANDING_TASKS

    def __len__(self) -> int:
        return len(self.candidates)

    def _context(self) -> dict[str, list[Any]]:
        if self.task == "image_understanding":
            return {"images": [self.image]}
        return {"videos": [self.video]}

    def _media_of(self, indices: tuple[int, ...]) -> dict[str, list[Any]]:
        key = "images" if self.task == "image_generation" else "videos"
        return {key: [self.candidates[i].media for i in indices]}

    def pair_request(self, first: int, second: int, template: str) -> JudgeRequest:
        """The pair-rank request comparing candidate ``first`` (shown as 1) with ``second`` (shown as 2).

        The request id ``"<set id>:<first>-<second>"`` keys the judge's ``order="random"`` coin, so a resumed or
        sharded run shows every pair in the same order.
        """
        request_id = f"{self.id}:{first}-{second}"
        if self.understanding:
            fields = {
                "question": self.prompt,
                "answer1": self.candidates[first].output,
                "answer2": self.candidates[second].output,
            }
            return JudgeRequest(self.task, "pair_rank", fields=fields, template=template, id=request_id,
                                **self._context())  # fmt: skip
        return JudgeRequest(self.task, "pair_rank", fields={"prompt": self.prompt}, template=template, id=request_id,
                            **self._media_of((first, second)))  # fmt: skip

    def point_request(self, index: int, template: str) -> JudgeRequest:
        """The point-score request for candidate ``index``."""
        request_id = f"{self.id}:{index}"
        if self.understanding:
            fields = {"question": self.prompt, "response": self.candidates[index].output}
            return JudgeRequest(self.task, "point_score", fields=fields, template=template, id=request_id,
                                **self._context())  # fmt: skip
        return JudgeRequest(self.task, "point_score", fields={"prompt": self.prompt}, template=template,
                            id=request_id, **self._media_of((index,)))  # fmt: skip


def default_template(task: str, mode: str, family: str, version: str = "1.0", *, pipeline: bool = False) -> str:
    """The template id for judging ``task`` candidates in ``mode`` (``"pair_rank"`` / ``"point_score"``).

    Args:
        task: one of :data:`TASKS`.
        mode: ``"pair_rank"`` or ``"point_score"``.
        family: the judge's family, ``"qwen"`` or ``"llava"``.
        version: the judge's template version (:data:`unifiedreward.protocol.VERSIONS`).
        pipeline: use upstream's preference-pipeline templates (:data:`PIPELINE_TEMPLATES`) when the judge is a
            LLaVA checkpoint (they exist only in the LLaVA form).

    Raises:
        TemplateError: the judge's version has no such template (e.g. a point score for ``"think"``).
    """
    if mode not in ("pair_rank", "point_score"):
        raise ValueError(f"mode must be 'pair_rank' or 'point_score', got {mode!r}")
    if pipeline and family == "llava":
        return PIPELINE_TEMPLATES[task][0 if mode == "pair_rank" else 1]
    return select_template(task, mode, family, version).id
