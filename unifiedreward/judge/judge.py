"""The judge: render requests with the protocol, answer them with a backend, parse answers into typed results.

    >>> backend = TransformersBackend.from_pretrained("CodeGoat24/UnifiedReward-qwen-7b")  # doctest: +SKIP
    >>> judge = RewardJudge(backend, order="both", scoring="probabilities")               # doctest: +SKIP
    >>> judge.judge([JudgeRequest("image_generation", "pair_rank", images=[a, b], fields={"prompt": "a red cube"})])

Options:

* ``order`` — position-bias control for pairwise requests. ``"as_given"``; ``"random"``: each pair is shown swapped
  on a seeded coin flip (keyed by the request id, so shards and resumed runs agree) and the result is mapped back;
  ``"both"``: each pair is judged in both orders in the same batch; agreeing verdicts are kept (``consistent=True``),
  disagreeing ones are reported with ``status == "inconsistent"`` and no verdict, and probabilities (if any) are
  averaged after swapping back.
* ``scoring`` — ``"generate"`` (decode text and parse it, as upstream) or ``"probabilities"`` (pair rank: score the
  template's fixed answer sentences from the logits, :mod:`unifiedreward.judge.scoring`, giving ``P(first)``,
  ``P(second)``, ``P(tie)`` and the argmax verdict; point score: generate, then the expected value of the number
  after ``Final Score:`` under the model's distribution over the allowed integers, when the answer ends with it).
"""

from __future__ import annotations

import logging
import math
import random
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from unifiedreward.chat import ChatPrompt
from unifiedreward.errors import UnifiedRewardError
from unifiedreward.judge.base import Backend, GenerationConfig
from unifiedreward.protocol import (
    AnswerKind,
    Mode,
    PairwiseResult,
    PointwiseResult,
    TemplateSpec,
    Verdict,
    get_template,
    parse_answer,
    render_prompt,
    select_template,
)
from unifiedreward.protocol.render import FIELD_ALIASES

logger = logging.getLogger(__name__)

ORDERS = ("as_given", "random", "both")
SCORINGS = ("generate", "probabilities")


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
        id: the caller's identifier, carried through unchanged (and the key of the ``order="random"`` coin).
    """

    task: str
    mode: str
    images: list[Any] = field(default_factory=list)
    videos: list[Any] = field(default_factory=list)
    fields: Mapping[str, Any] = field(default_factory=dict)
    template: str | None = None
    id: str | None = None


Result = PairwiseResult | PointwiseResult


def swap_request(request: JudgeRequest, spec: TemplateSpec) -> JudgeRequest | None:
    """The same pairwise request with its two candidates exchanged, or ``None`` if it has no two candidates.

    Candidates are the two images / videos (generation), the two answers (understanding), or the two edited images
    after the source image (editing).
    """
    if spec.mode not in (Mode.PAIR_RANK, Mode.PAIR_SCORE):
        return None
    if spec.media == ("image", "image"):
        return replace(request, images=list(request.images)[::-1])
    if spec.media == ("video", "video"):
        return replace(request, videos=list(request.videos)[::-1])
    if spec.media == ("image", "image", "image"):
        source, first, second = request.images
        return replace(request, images=[source, second, first])
    if "R1" in spec.fields and "R2" in spec.fields:
        swap = {"R1": "R2", "R2": "R1"}
        fields = {}
        for key, value in request.fields.items():
            name = key if key in spec.fields else FIELD_ALIASES.get(key, key)
            fields[swap.get(name, name)] = value
        return replace(request, fields=fields)
    return None


class RewardJudge:
    """Judge requests with one backend and one prompt family.

    Args:
        backend: anything implementing :class:`unifiedreward.judge.base.Backend`; ``scoring="probabilities"``
            also needs a ``score`` method (:class:`~unifiedreward.judge.hf_backend.TransformersBackend`).
        family: ``"qwen"`` or ``"llava"`` — must match the checkpoint (see :func:`unifiedreward.modeling.model_family`).
        version: template generation: ``"1.0"``, ``"2.0"``, ``"think"``, ... (see :data:`unifiedreward.protocol.VERSIONS`).
        generation: decoding settings (greedy by default).
        order: ``"as_given"``, ``"random"`` or ``"both"`` (module docstring).
        seed: seed of the ``order="random"`` coin flips.
        scoring: ``"generate"`` or ``"probabilities"`` (module docstring).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        family: str = "qwen",
        version: str = "1.0",
        generation: GenerationConfig | None = None,
        order: str = "as_given",
        seed: int = 0,
        scoring: str = "generate",
    ):
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        if scoring not in SCORINGS:
            raise ValueError(f"scoring must be one of {SCORINGS}, got {scoring!r}")
        if scoring == "probabilities" and not hasattr(backend, "score"):
            raise UnifiedRewardError(
                f"scoring='probabilities' needs a backend that scores answers from logits (TransformersBackend); "
                f"{type(backend).__name__} only generates text"
            )
        self.backend = backend
        self.family = family
        self.version = version
        self.generation = generation or GenerationConfig()
        self.order = order
        self.seed = seed
        self.scoring = scoring

    def template_for(self, request: JudgeRequest) -> TemplateSpec:
        """The template a request is rendered with."""
        if request.template is not None:
            return get_template(request.template)
        return select_template(request.task, request.mode, self.family, self.version)

    def render(self, request: JudgeRequest) -> ChatPrompt:
        """The chat prompt of one request (raises :class:`~unifiedreward.errors.TemplateError` on bad input)."""
        spec = self.template_for(request)
        return render_prompt(spec, family=self.family, images=request.images, videos=request.videos, **request.fields)

    def _coin(self, request: JudgeRequest, index: int) -> bool:
        key = request.id if request.id is not None else index
        return random.Random(f"{self.seed}:{key}").random() < 0.5

    def _plan(self, request: JudgeRequest, index: int, spec: TemplateSpec) -> list[tuple[bool, JudgeRequest]]:
        """``(swapped, request_as_shown)`` for each time the request is judged."""
        swapped = swap_request(request, spec) if self.order != "as_given" else None
        if swapped is None:
            return [(False, request)]
        if self.order == "both":
            return [(False, request), (True, swapped)]
        return [(True, swapped)] if self._coin(request, index) else [(False, request)]

    def judge_one(self, request: JudgeRequest) -> Result:
        """Judge a single request (see :meth:`judge`)."""
        return self.judge([request])[0]

    def judge(self, requests: Sequence[JudgeRequest]) -> list[Result]:
        """Render, answer and parse every request. Results keep the order of ``requests``.

        A request that cannot be rendered or whose backend call fails gets an *invalid* result whose ``reason`` says
        why; it never gets a default verdict or score.
        """
        jobs: list[tuple[int, bool, TemplateSpec, ChatPrompt]] = []
        failures: dict[int, str] = {}
        for index, request in enumerate(requests):
            try:
                spec = self.template_for(request)
                for swapped, shown in self._plan(request, index, spec):
                    jobs.append((index, swapped, spec, self.render(shown)))
            except UnifiedRewardError as err:
                failures[index] = f"cannot render request: {err}"
        jobs = [job for job in jobs if job[0] not in failures]
        answers = self._answer(jobs)
        per_request: dict[int, list[Result]] = defaultdict(list)
        for (index, swapped, _, _), result in zip(jobs, answers, strict=True):
            per_request[index].append(result.unswapped() if swapped else result)
        results: list[Result] = []
        for index, request in enumerate(requests):
            if index in failures:
                results.append(_invalid(request, failures[index]))
            elif len(per_request[index]) == 2:
                results.append(combine_orders(*per_request[index]))
            else:
                results.append(per_request[index][0])
        return results

    def _answer(self, jobs: list[tuple[int, bool, TemplateSpec, ChatPrompt]]) -> list[Result]:
        """Parsed results of every job, in order: scored from logits where asked and possible, else generated."""
        results: list[Result | None] = [None] * len(jobs)
        by_template: dict[str, list[int]] = defaultdict(list)
        generate: list[int] = []
        for position, (_, _, spec, _) in enumerate(jobs):
            if self.scoring == "probabilities" and spec.answer.kind is AnswerKind.VERDICT and spec.answer.candidates:
                by_template[spec.id].append(position)
            else:
                generate.append(position)
        for template_id, positions in by_template.items():
            spec = get_template(template_id)
            verdicts = list(spec.answer.candidates)
            texts = [spec.answer.candidates[v] for v in verdicts]
            logliks = self.backend.score([jobs[p][3] for p in positions], texts)
            for position, row in zip(positions, logliks.tolist(), strict=True):
                results[position] = _result_from_logliks(verdicts, texts, row)
        if generate:
            generations = self.backend.generate([jobs[p][3] for p in generate], self.generation)
            for position, generation in zip(generate, generations, strict=True):
                spec = jobs[position][2]
                if not generation.ok:
                    reason = f"backend error: {generation.error}"
                    results[position] = _invalid_for(spec, reason)
                else:
                    results[position] = parse_answer(spec, generation.text)
            if self.scoring == "probabilities":
                self._add_expected_scores(jobs, generate, results)
        return results  # type: ignore[return-value]

    def _add_expected_scores(self, jobs, positions: list[int], results: list[Result | None]) -> None:
        """Attach ``expected_score`` to valid ``Final Score`` answers that end with the score."""
        groups: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
        for position in positions:
            spec, result = jobs[position][2], results[position]
            if spec.answer.kind is not AnswerKind.FINAL_SCORE or not isinstance(result, PointwiseResult):
                continue
            if not result.valid or spec.answer.score_range is None:
                continue
            split = _split_final_score(result.raw)
            if split is not None:
                prefix, spacing = split
                groups[(spec.id, spacing)].append((position, prefix))
        for (template_id, spacing), items in groups.items():
            low, high = get_template(template_id).answer.score_range
            values = list(range(math.ceil(low), math.floor(high) + 1))
            texts = [f"{spacing}{v}" for v in values]
            logliks = self.backend.score(
                [jobs[p][3] for p, _ in items], texts, assistant_prefixes=[x for _, x in items]
            )
            for (position, _), row in zip(items, logliks.tolist(), strict=True):
                probs = _softmax(row)
                expected = sum(p * v for p, v in zip(probs, values, strict=True))
                results[position] = replace(results[position], expected_score=expected)


def _softmax(values: Sequence[float]) -> list[float]:
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def _result_from_logliks(verdicts: list[Verdict], texts: list[str], logliks: Sequence[float]) -> PairwiseResult:
    probs = _softmax(logliks)
    best = max(range(len(verdicts)), key=lambda k: probs[k])
    details = {"log_likelihoods": {v.value: ll for v, ll in zip(verdicts, logliks, strict=True)}}
    return PairwiseResult(
        verdicts[best], texts[best], probabilities=dict(zip(verdicts, probs, strict=True)), details=details
    )


_FINAL_SCORE_TAIL = re.compile(r"Final\s*Score\s*:(\s*)[-+]?\d+(?:\.\d+)?\s*$", re.IGNORECASE)


def _split_final_score(raw: str) -> tuple[str, str] | None:
    """``(text up to 'Final Score:', spacing before the number)`` if the answer ends with ``Final Score: N``."""
    match = _FINAL_SCORE_TAIL.search(raw)
    if match is None:
        return None
    return raw[: match.start(1)], match.group(1)


def combine_orders(as_given: PairwiseResult, swapped: PairwiseResult) -> PairwiseResult:
    """Combine a pair judged in both orders (``swapped`` already mapped back to the request's order).

    Agreeing verdicts give that verdict with ``consistent=True``; disagreeing ones give no verdict and
    ``consistent=False`` (``status == "inconsistent"``); if either answer is invalid the result is invalid and says
    which order failed. Probabilities and scores, when both orders have them, are averaged.
    """
    probabilities = None
    if as_given.probabilities is not None and swapped.probabilities is not None:
        keys = set(as_given.probabilities) | set(swapped.probabilities)
        probabilities = {k: (as_given.probabilities.get(k, 0.0) + swapped.probabilities.get(k, 0.0)) / 2 for k in keys}
    scores = None
    if as_given.scores is not None and swapped.scores is not None:
        scores = ((as_given.scores[0] + swapped.scores[0]) / 2, (as_given.scores[1] + swapped.scores[1]) / 2)
    details = dict(as_given.details or {})
    details["swapped_order"] = {
        "verdict": None if swapped.verdict is None else swapped.verdict.value,
        "raw": swapped.raw,
        "reason": swapped.reason,
    }
    base = replace(as_given, probabilities=probabilities, scores=scores, details=details, swapped=False)
    if not as_given.valid or not swapped.valid:
        which = "as-given" if not as_given.valid else "swapped"
        reason = as_given.reason if not as_given.valid else swapped.reason
        return replace(base, verdict=None, reason=f"{which} order invalid: {reason}", consistent=None)
    if as_given.verdict is swapped.verdict:
        return replace(base, consistent=True)
    reason = f"order-inconsistent: as given -> {as_given.verdict.value}, swapped -> {swapped.verdict.value}"
    return replace(base, verdict=None, reason=reason, consistent=False)


def _invalid_for(spec: TemplateSpec, reason: str) -> Result:
    if spec.mode is Mode.POINT_SCORE:
        return PointwiseResult(None, "", reason=reason, score_range=spec.answer.score_range)
    return PairwiseResult(None, "", reason=reason)


def _invalid(request: JudgeRequest, reason: str) -> Result:
    if request.mode == "point_score":
        return PointwiseResult(None, "", reason=reason)
    return PairwiseResult(None, "", reason=reason)
