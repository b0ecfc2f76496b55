"""The judge: render requests with the protocol, answer them with a backend, parse answers into typed results.

    >>> backend = TransformersBackend.from_pretrained("CodeGoat24/UnifiedReward-qwen-7b")  # doctest: +SKIP
    >>> judge = RewardJudge(backend, order="both", scoring="probabilities")               # doctest: +SKIP
    >>> judge.judge([JudgeRequest("image_generation", "pair_rank", images=[a, b], fields={"prompt": "a red cube"})])

Options:

* ``order`` — position-bias control for pairwise requests. ``"as_given"``; ``"random"``: each pair is shown swapped
  on a seeded coin flip (keyed by the request id, so shards and resumed runs agree) and the result is mapped back;
  ``"both"``: each pair is judged in both orders in the same batch and the two results are combined
  (:func:`combine_orders`): agreeing verdicts are kept (``consistent=True``); probabilities and scores are averaged
  after swapping back. When the verdicts disagree:

  - with probabilities (``scoring="probabilities"``), the verdict is the argmax of the **averaged** probabilities,
    with ``consistent=False``. Rule: averaging the two orders is the position-debiased estimate (the model's
    preference with the order effect cancelled, as in balanced position calibration, Wang et al. 2023,
    arXiv:2305.17926); a disagreement only means the order effect was larger than the preference margin, and the
    average still says which way, and how weakly, the model leans. ``consistent=False`` keeps that visible, and the
    as-given verdict is kept in ``details["as_given_order"]``. When the two largest averages tie (a judge that
    only follows position averages to ``P(first) == P(second)``), there is no verdict (``"inconsistent"``).
  - with text answers only, there is nothing to average: no verdict, ``consistent=False``
    (``status == "inconsistent"``).
* ``scoring`` — ``"generate"`` (decode text and parse it, as upstream) or ``"probabilities"`` (pair rank: score the
  template's fixed answer sentences from the logits, :mod:`unifiedreward.judge.scoring`, giving ``P(first)``,
  ``P(second)``, ``P(tie)`` and the argmax verdict; point score: generate, then the expected value of the number
  after ``Final Score:`` under the model's distribution over the allowed integers, when the answer ends with it).

Failures are per request: a request that cannot be rendered, whose generation or scoring fails (an image the
processor rejects, an HTTP error, a NaN score row, even an exception from the whole backend call) gets an invalid
result (:func:`invalid_result`) whose ``reason`` says why, and the failure is logged with the request id; the other
requests are judged as usual. Only :class:`~unifiedreward.judge.scoring.ScoringUnsupportedError` (the model cannot
be scored from logits at all) and non-``Exception`` interrupts propagate.
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
from unifiedreward.judge.base import Backend, Generation, GenerationConfig
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
# Averaged probabilities closer than this count as tied in combine_orders (float noise of two equal sums).
_AVERAGE_TIE = 1e-9


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
        answers = self._answer(jobs, [requests[job[0]].id for job in jobs])
        per_request: dict[int, list[Result]] = defaultdict(list)
        for (index, swapped, _, _), result in zip(jobs, answers, strict=True):
            per_request[index].append(result.unswapped() if swapped else result)
        results: list[Result] = []
        for index, request in enumerate(requests):
            if index in failures:
                results.append(invalid_result(request.mode, failures[index]))
            elif len(per_request[index]) == 2:
                results.append(combine_orders(*per_request[index]))
            else:
                results.append(per_request[index][0])
        return results

    def _answer(self, jobs: list[tuple[int, bool, TemplateSpec, ChatPrompt]], ids: list[Any]) -> list[Result]:
        """Parsed results of every job, in order: scored from logits where asked and possible, else generated.

        A job whose backend call fails (a per-item error reported by the backend, a NaN score row, or an exception
        from the whole call) gets an invalid result with the reason; the failure is logged with the request id.
        """
        results: list[Result | None] = [None] * len(jobs)

        def fail(position: int, reason: str) -> None:
            logger.warning("request %s failed: %s", _name(ids[position], jobs[position][0]), reason)
            results[position] = invalid_result(jobs[position][2], reason)

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
            rows, errors = self._score([jobs[p][3] for p in positions], texts)
            for position, row, error in zip(positions, rows, errors, strict=True):
                if error is not None:
                    fail(position, f"scoring failed: {error}")
                else:
                    results[position] = _result_from_logliks(verdicts, texts, row)
        if generate:
            try:
                generations = self.backend.generate([jobs[p][3] for p in generate], self.generation)
            except Exception as err:  # a backend should report per item; never lose the run
                logger.exception("backend.generate raised for %d prompts", len(generate))
                generations = [Generation(None, error=f"{type(err).__name__}: {err}") for _ in generate]
            for position, generation in zip(generate, generations, strict=True):
                if not generation.ok:
                    fail(position, f"backend error: {generation.error}")
                else:
                    results[position] = parse_answer(jobs[position][2], generation.text)
            if self.scoring == "probabilities":
                self._add_expected_scores(jobs, generate, results, fail)
        return results  # type: ignore[return-value]

    def _score(
        self, prompts: list[ChatPrompt], texts: list[str], prefixes: list[str] | None = None
    ) -> tuple[list[list[float]], list[str | None]]:
        """Per prompt: the candidates' log-likelihoods and an error (``None`` when scored).

        Uses the backend's ``score_with_errors`` where it has one; else ``score``, whose NaN rows count as failed.
        An exception from the whole call fails every prompt of it, except
        :class:`~unifiedreward.judge.scoring.ScoringUnsupportedError` (the model cannot be scored), which is raised.
        """
        from unifiedreward.judge.scoring import ScoringUnsupportedError

        kwargs = {} if prefixes is None else {"assistant_prefixes": prefixes}
        try:
            if hasattr(self.backend, "score_with_errors"):
                scores, errors = self.backend.score_with_errors(prompts, texts, **kwargs)
            else:
                scores, errors = self.backend.score(prompts, texts, **kwargs), [None] * len(prompts)
        except ScoringUnsupportedError:
            raise
        except Exception as err:  # a backend should report per item; never lose the run
            logger.exception("backend scoring raised for %d prompts", len(prompts))
            return [[] for _ in prompts], [f"{type(err).__name__}: {err}"] * len(prompts)
        rows = scores.tolist() if hasattr(scores, "tolist") else [list(r) for r in scores]
        errors = [
            error if error is not None or all(math.isfinite(v) for v in row) else "no finite log-likelihood"
            for row, error in zip(rows, errors, strict=True)
        ]
        return rows, errors

    def _add_expected_scores(self, jobs, positions: list[int], results: list[Result | None], fail) -> None:
        """Attach ``expected_score`` to valid ``Final Score`` answers that end with the score.

        A scoring failure makes the result invalid (``fail``): the caller asked for the expected score.
        """
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
            rows, errors = self._score([jobs[p][3] for p, _ in items], texts, [x for _, x in items])
            for (position, _), row, error in zip(items, rows, errors, strict=True):
                if error is not None:
                    raw = results[position].raw
                    fail(position, f"expected-score scoring failed: {error}")
                    results[position] = replace(results[position], raw=raw)
                    continue
                probs = _softmax(row)
                expected = sum(p * v for p, v in zip(probs, values, strict=True))
                results[position] = replace(results[position], expected_score=expected)


def _name(request_id: Any, index: int) -> str:
    """How a log line names a request: its id, else its position."""
    return repr(request_id) if request_id is not None else f"#{index}"


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

    Rules (see the module docstring):

    * either answer invalid: invalid, the reason says which order failed;
    * verdicts agree: that verdict, ``consistent=True``;
    * verdicts disagree and both orders have probabilities: the verdict is the argmax of the averaged
      probabilities, ``consistent=False``; if the two largest averages tie (a purely positional judge averages
      to ``P(first) == P(second)``), there is no verdict (``status == "inconsistent"``);
    * verdicts disagree, text answers only: no verdict, ``consistent=False`` (``status == "inconsistent"``).

    Probabilities and scores, when both orders have them, are averaged.
    """
    probabilities = None
    if as_given.probabilities is not None and swapped.probabilities is not None:
        keys = [v for v in Verdict if v in as_given.probabilities or v in swapped.probabilities]
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
    if probabilities is not None:
        ranked = sorted(probabilities.values(), reverse=True)
        if len(ranked) < 2 or ranked[0] - ranked[1] > _AVERAGE_TIE:
            details["as_given_order"] = {"verdict": as_given.verdict.value}
            return replace(base, verdict=max(probabilities, key=probabilities.__getitem__), consistent=False)
        reason += "; the averaged probabilities tie"
    return replace(base, verdict=None, reason=reason, consistent=False)


def invalid_result(spec_or_mode: TemplateSpec | Mode | str, reason: str) -> Result:
    """An invalid result (no verdict / no score) of the right kind, carrying ``reason``.

    Args:
        spec_or_mode: the request's template (a point-score template also sets ``score_range``), or its mode
            (``"point_score"`` / :class:`~unifiedreward.protocol.Mode` gives a :class:`PointwiseResult`, any other
            mode a :class:`PairwiseResult`).
        reason: why there is no answer (e.g. ``"cannot load media: ..."``, ``"backend error: HTTP 500"``).
    """
    if isinstance(spec_or_mode, TemplateSpec):
        if spec_or_mode.mode is Mode.POINT_SCORE:
            return PointwiseResult(None, "", reason=reason, score_range=spec_or_mode.answer.score_range)
        return PairwiseResult(None, "", reason=reason)
    mode = spec_or_mode.value if isinstance(spec_or_mode, Mode) else str(spec_or_mode)
    if mode == Mode.POINT_SCORE.value:
        return PointwiseResult(None, "", reason=reason)
    return PairwiseResult(None, "", reason=reason)
