"""The judge: render requests with the protocol, answer them with a backend, parse answers into typed results.

    >>> judge = RewardJudge(TransformersBackend.from_pretrained("CodeGoat24/UnifiedReward-qwen-7b"))  # doctest: +SKIP
    >>> judge.judge([JudgeRequest("image_generation", "pair_rank", images=[a, b], fields={"prompt": "a red cube"})])
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from unifiedreward.chat import ChatPrompt
from unifiedreward.errors import UnifiedRewardError
from unifiedreward.judge.base import Backend, GenerationConfig
from unifiedreward.protocol import (
    PairwiseResult,
    PointwiseResult,
    TemplateSpec,
    get_template,
    parse_answer,
    render_prompt,
    select_template,
)

logger = logging.getLogger(__name__)


@dataclass
class JudgeRequest:
    """One thing to judge.

    Attributes:
        task: ``image_generation``, ``image_understanding``, ``video_generation`` or ``video_understanding``.
        mode: ``pair_rank``, ``point_score`` or ``pair_score``.
        images: decoded images (PIL) in template order, e.g. ``[image_1, image_2]``.
        videos: decoded :class:`unifiedreward.media.Video` objects in template order.
        fields: the template's text fields: ``prompt`` (a caption), or ``question`` with ``answer1``/``answer2``
            (pairwise) or ``response`` (pointwise).
        template: an explicit template id; by default the judge's family/version picks upstream's template.
        id: the caller's identifier, carried through unchanged.
    """

    task: str
    mode: str
    images: list[Any] = field(default_factory=list)
    videos: list[Any] = field(default_factory=list)
    fields: Mapping[str, Any] = field(default_factory=dict)
    template: str | None = None
    id: str | None = None


Result = PairwiseResult | PointwiseResult


class RewardJudge:
    """Judge requests with one backend and one prompt family.

    Args:
        backend: anything implementing :class:`unifiedreward.judge.base.Backend`.
        family: ``"qwen"`` or ``"llava"`` — must match the checkpoint (see :func:`unifiedreward.modeling.model_family`).
        version: template generation: ``"1.0"``, ``"2.0"``, ``"think"``, ... (see :data:`unifiedreward.protocol.VERSIONS`).
        generation: decoding settings (greedy by default).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        family: str = "qwen",
        version: str = "1.0",
        generation: GenerationConfig | None = None,
    ):
        self.backend = backend
        self.family = family
        self.version = version
        self.generation = generation or GenerationConfig()

    def template_for(self, request: JudgeRequest) -> TemplateSpec:
        """The template a request is rendered with."""
        if request.template is not None:
            return get_template(request.template)
        return select_template(request.task, request.mode, self.family, self.version)

    def render(self, request: JudgeRequest) -> ChatPrompt:
        """The chat prompt of one request (raises :class:`~unifiedreward.errors.TemplateError` on bad input)."""
        spec = self.template_for(request)
        return render_prompt(spec, family=self.family, images=request.images, videos=request.videos, **request.fields)

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Result]:
        """Render, answer and parse every request. Results keep the order of ``requests``.

        A request that cannot be rendered or whose backend call fails gets an *invalid* result whose ``reason`` says
        why; it never gets a default verdict or score.
        """
        prompts: list[ChatPrompt | None] = []
        specs: list[TemplateSpec | None] = []
        failures: dict[int, str] = {}
        for index, request in enumerate(requests):
            try:
                spec = self.template_for(request)
                prompts.append(self.render(request))
                specs.append(spec)
            except UnifiedRewardError as err:
                failures[index] = f"cannot render request: {err}"
                prompts.append(None)
                specs.append(None)
        live = [i for i, prompt in enumerate(prompts) if prompt is not None]
        generations = self.backend.generate([prompts[i] for i in live], self.generation) if live else []
        answers = dict(zip(live, generations, strict=True))
        results: list[Result] = []
        for index, request in enumerate(requests):
            if index in failures:
                results.append(_invalid(request, failures[index]))
                continue
            generation = answers[index]
            if not generation.ok:
                results.append(_invalid(request, f"backend error: {generation.error}"))
                continue
            results.append(parse_answer(specs[index], generation.text))
        return results


def _invalid(request: JudgeRequest, reason: str) -> Result:
    if request.mode == "point_score":
        return PointwiseResult(None, "", reason=reason)
    return PairwiseResult(None, "", reason=reason)
