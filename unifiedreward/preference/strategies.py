"""Sifting strategies: pick a (chosen, rejected) pair out of a candidate set with any reward judge.

Every strategy takes candidate sets (:class:`~unifiedreward.preference.candidates.CandidateSet`) and a
:class:`~unifiedreward.judge.RewardJudge` (any backend: transformers, OpenAI-compatible server, scripted fake) and
returns one :class:`SiftDecision` per set: chosen / rejected candidate, kept or why not, the evidence behind it and
the judge calls it spent. The ``*_many`` forms judge every set of a chunk in one batched call per stage; the
single-set forms (:func:`upstream`, :func:`tournament`, :func:`pointwise`) wrap them.

**Judge calls** count the prompts the reward model answers: a pair judged in both orders is two calls, a pair or a
point score judged once is one, whether the answer is generated or scored from logits. The extra logits pass behind
an ``expected_score`` re-reads an answer already generated and is not counted. A request that cannot be rendered
never reaches the model and costs nothing.

Strategies (N candidates; cost in judge calls when every answer is valid):

* :func:`upstream` — protocol reference §4.1-4.3: ``N/2`` rounds ``(0, 1), (2, 3), ...``; pair-rank each round into
  a winner and a loser; point-score every winner and loser; chosen = best-scored winner, rejected = worst-scored
  loser; kept when ``chosen_score > rejected_score``. Cost ``N/2 + N`` (5 rounds: 15).
* :func:`tournament` — every pair in both orders (``order="both"``), from answer probabilities where the backend
  gives them (``scoring="probabilities"``); Bradley–Terry strengths (or win rates); chosen = strongest, rejected =
  weakest; kept when the fitted ``P(chosen beats rejected)`` clears ``min_probability``. Cost ``N (N - 1)`` (N = 10:
  90).
* :func:`pointwise` — one point score per candidate (``expected_score`` where the backend gives it); chosen = best,
  rejected = worst; kept when their difference, as a fraction of the template's score range, clears
  ``min_margin``. Cost ``N``.

Every kept decision also needs chosen and rejected to differ in content (``identical_candidates`` otherwise: two
samples of the same text teach DPO nothing).

Drop reasons: ``too_few_candidates``, ``no_decisive_round`` (upstream: every round tied, invalid or inconsistent),
``no_valid_score``, ``not_better`` (upstream: ``chosen_score <= rejected_score``), ``no_valid_comparison``,
``below_margin``, ``identical_candidates``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from unifiedreward.judge.judge import JudgeRequest, RewardJudge
from unifiedreward.preference.bradley_terry import fit_bradley_terry, sigmoid, win_rates
from unifiedreward.preference.candidates import CandidateSet, default_template
from unifiedreward.protocol import PairwiseResult, PointwiseResult, Verdict

logger = logging.getLogger(__name__)

KEPT = "kept"
_DIGITS = 6  # evidence numbers are rounded for readability; decisions use full precision


@dataclass
class SiftDecision:
    """What a strategy decided for one candidate set.

    Attributes:
        kept: whether the pair goes into the preference data.
        reason: ``"kept"`` or the drop reason (module docstring).
        chosen, rejected: candidate indices (``None`` when the strategy could not name one).
        chosen_score, rejected_score: the numbers the choice rests on: point scores (upstream, pointwise),
            Bradley–Terry log-strengths or win rates (tournament).
        judge_calls: prompts the reward model answered for this set.
        evidence: JSON-serialisable record of verdicts / probabilities / scores, invalid and inconsistent counts,
            seeds and templates.
    """

    kept: bool
    reason: str
    chosen: int | None = None
    rejected: int | None = None
    chosen_score: float | None = None
    rejected_score: float | None = None
    judge_calls: int = 0
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class UpstreamConfig:
    """Settings of :func:`upstream`.

    Attributes:
        pair_template, point_template: template ids; ``None`` = upstream's pipeline templates for a LLaVA judge, the
            judge's own family/version templates otherwise (:func:`~.candidates.default_template`).
        order: the judge's pair order; upstream showed each pair once as sampled (``"as_given"``).
        scoring: ``"generate"`` (upstream), ``"probabilities"`` or ``"auto"`` (probabilities if the backend can).
        use_expected_score: rank winners / losers by ``expected_score`` when present (upstream: the parsed score).
    """

    pair_template: str | None = None
    point_template: str | None = None
    order: str = "as_given"
    scoring: str = "generate"
    use_expected_score: bool = False


@dataclass(frozen=True)
class TournamentConfig:
    """Settings of :func:`tournament`.

    Attributes:
        pair_template: template id; ``None`` = the judge's family/version pair-rank template.
        order: ``"both"`` (every pair in both orders, position bias averaged out).
        scoring: ``"auto"`` (answer probabilities if the backend gives them, else generated verdicts),
            ``"probabilities"`` or ``"generate"``.
        fit: ``"bradley_terry"`` or ``"win_rate"``.
        prior: Bradley–Terry virtual wins per side of every pair (keeps strengths finite under perfect separation).
        min_probability: keep when ``P(chosen beats rejected)`` is above this: ``sigmoid(theta_c - theta_r)`` for
            Bradley–Terry; the head-to-head soft win rate for ``win_rate``.
    """

    pair_template: str | None = None
    order: str = "both"
    scoring: str = "auto"
    fit: str = "bradley_terry"
    prior: float = 0.1
    min_probability: float = 0.6


@dataclass(frozen=True)
class PointwiseConfig:
    """Settings of :func:`pointwise`.

    Attributes:
        point_template: template id; ``None`` = the judge's family/version point-score template.
        scoring: ``"auto"`` (expected scores if the backend gives them), ``"probabilities"`` or ``"generate"``.
        use_expected_score: rank by ``expected_score`` when present, else by the parsed score.
        min_margin: keep when ``(chosen_score - rejected_score) / (high - low)`` of the template's score range is
            above this (0: any strict improvement, as upstream's keep test).
    """

    point_template: str | None = None
    scoring: str = "auto"
    use_expected_score: bool = True
    min_margin: float = 0.0


# ----------------------------------------------------------------------------------------------------------------
# judge plumbing


def with_options(judge: RewardJudge, *, order: str | None = None, scoring: str | None = None) -> RewardJudge:
    """``judge`` with another ``order`` / ``scoring`` (same backend, family, version, decoding and seed).

    ``scoring="auto"`` means ``"probabilities"`` when the backend scores answers from logits, else ``"generate"``.
    """
    if scoring == "auto":
        scoring = "probabilities" if hasattr(judge.backend, "score") else "generate"
    order = order or judge.order
    scoring = scoring or judge.scoring
    if order == judge.order and scoring == judge.scoring:
        return judge
    return RewardJudge(judge.backend, family=judge.family, version=judge.version, generation=judge.generation,
                       order=order, seed=judge.seed, scoring=scoring)  # fmt: skip


def _judge_counted(judge: RewardJudge, requests: list[JudgeRequest]) -> tuple[list[Any], list[int]]:
    """Results of ``requests`` and the judge calls each one cost (module docstring)."""
    if not requests:
        return [], []
    results = judge.judge(requests)
    calls = []
    for request, result in zip(requests, results, strict=True):
        if not result.valid and (result.reason or "").startswith("cannot render request"):
            calls.append(0)
        elif request.mode == "pair_rank" and judge.order == "both":
            calls.append(2)
        else:
            calls.append(1)
    return results, calls


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), _DIGITS)


def _point_value(result: PointwiseResult, use_expected: bool) -> float | None:
    if not result.valid:
        return None
    if use_expected and result.expected_score is not None:
        return float(result.expected_score)
    return float(result.score)


def _pair_status(result: PairwiseResult) -> str:
    """``valid`` (a winner), ``tie``, ``inconsistent`` (the orders disagree and nothing decides) or ``invalid``.

    A disagreement between the two orders that the judge resolves from averaged probabilities keeps its verdict
    (``valid``; :func:`unifiedreward.judge.judge.combine_orders`); it is still counted in ``inconsistent`` by
    :func:`_count`.
    """
    if result.verdict is None:
        return "inconsistent" if result.consistent is False else "invalid"
    return "tie" if result.verdict is Verdict.TIE else "valid"


def _count(evidence: dict[str, Any], result: PairwiseResult, status: str) -> None:
    """Add one pair result to the ``ties`` / ``invalid`` / ``inconsistent`` (any order disagreement) counts."""
    evidence["ties"] += status == "tie"
    evidence["invalid"] += status == "invalid"
    evidence["inconsistent"] += result.consistent is False


def _first_best(values: list[tuple[int, float]], best: Callable[[Sequence[float]], float]) -> tuple[int, float]:
    """The first ``(index, value)`` whose value equals ``best`` of all values (upstream's ``list.index`` rule)."""
    target = best([v for _, v in values])
    return next((i, v) for i, v in values if v == target)


def _finish(
    candidate_set: CandidateSet, evidence: dict[str, Any], calls: int, chosen: int, rejected: int,
    chosen_score: float, rejected_score: float, kept: bool, drop_reason: str,
) -> SiftDecision:  # fmt: skip
    reason = KEPT if kept else drop_reason
    if kept and candidate_set.candidates[chosen].output == candidate_set.candidates[rejected].output:
        kept, reason = False, "identical_candidates"
    evidence.update(judge_calls=calls, chosen_score=_r(chosen_score), rejected_score=_r(rejected_score))
    return SiftDecision(kept, reason, chosen, rejected, chosen_score, rejected_score, calls, evidence)


def _dropped(reason: str, evidence: dict[str, Any], calls: int) -> SiftDecision:
    evidence["judge_calls"] = calls
    return SiftDecision(False, reason, judge_calls=calls, evidence=evidence)


def _base_evidence(strategy: str, candidate_set: CandidateSet, **templates: str) -> dict[str, Any]:
    return {"strategy": strategy, "templates": templates, "seeds": [c.seed for c in candidate_set.candidates]}


# ----------------------------------------------------------------------------------------------------------------
# upstream


def upstream_many(
    candidate_sets: Sequence[CandidateSet], judge: RewardJudge, config: UpstreamConfig | None = None
) -> list[SiftDecision]:
    """Upstream's round-then-score sift (protocol reference §4.1-4.3), with its defects fixed.

    Algorithm: rounds are the disjoint pairs ``(0, 1), (2, 3), ...`` of the candidates in sampling order (an odd
    last candidate is unused, counted as ``unpaired``). Each round is pair-ranked into a winner and a loser; the
    winners and losers of decisive rounds are point-scored; chosen = the winner with the highest score, rejected =
    the loser with the lowest (the first one on equal scores, as upstream's ``list.index``); kept iff
    ``chosen_score > rejected_score``. All rounds of all sets go to the judge in one batch, then all point scores.

    Upstream defects fixed here:

    1. Scores are compared as numbers: upstream's video and generation sifts kept them as strings, so ``max`` /
       ``min`` compared text (``"10" < "9"``) and the video pipeline's keep test compared strings.
    2. An unparsed verdict never makes a winner: upstream made candidate 1 the winner of any unreadable round (and
       of ties in DiffusionDPO / VideoDPO). Here a tied, invalid or order-inconsistent round is dropped and counted
       in the evidence (``ties`` / ``invalid`` / ``inconsistent``, ``dropped_rounds``). (With ``order="both"`` and
       ``scoring="probabilities"`` the judge itself decides a disagreement from the averaged probabilities; such a
       round keeps that verdict and is still counted in ``inconsistent``.)
    3. An unparsed point score is not a 0: upstream scored it 0 (an int beside strings in the video pipeline, which
       made ``max`` raise). Here the candidate is left out of the choice and counted (``invalid``).
    4. Every sample's seed is recorded (``evidence["seeds"]``); upstream drew unrecorded random seeds.
    """
    config = config or UpstreamConfig()
    judge = with_options(judge, order=config.order, scoring=config.scoring)
    decisions: dict[int, SiftDecision] = {}
    evidence: dict[int, dict[str, Any]] = {}
    calls: dict[int, int] = {}
    pair_requests, pair_owner = [], []
    point_template: dict[int, str] = {}
    for k, cset in enumerate(candidate_sets):
        pair_t = config.pair_template or default_template(cset.task, "pair_rank", judge.family, judge.version,
                                                          pipeline=True)  # fmt: skip
        point_template[k] = config.point_template or default_template(
            cset.task, "point_score", judge.family, judge.version, pipeline=True
        )
        evidence[k] = _base_evidence("upstream", cset, pair=pair_t, point=point_template[k])
        evidence[k].update(
            rounds=[], scores=[], unpaired=len(cset) % 2, ties=0, invalid=0, inconsistent=0, dropped_rounds=0
        )
        calls[k] = 0
        if len(cset) < 2:
            decisions[k] = _dropped("too_few_candidates", evidence[k], 0)
            continue
        for r in range(len(cset) // 2):
            pair_requests.append(cset.pair_request(2 * r, 2 * r + 1, pair_t))
            pair_owner.append((k, 2 * r, 2 * r + 1))
    pair_results, pair_calls = _judge_counted(judge, pair_requests)
    outcomes: dict[int, list[tuple[int, int]]] = {k: [] for k in evidence}  # (winner, loser) of decisive rounds
    for (k, a, b), result, spent in zip(pair_owner, pair_results, pair_calls, strict=True):
        calls[k] += spent
        status = _pair_status(result)
        _count(evidence[k], result, status)
        entry = {"pair": [a, b], "status": status, "winner": None}
        if status == "valid":
            winner, loser = (a, b) if result.verdict is Verdict.FIRST else (b, a)
            entry["winner"] = winner
            outcomes[k].append((winner, loser))
        else:
            evidence[k]["dropped_rounds"] += 1
            entry["reason"] = result.reason or "tie"
        evidence[k]["rounds"].append(entry)
    point_requests, point_owner = [], []
    for k, cset in enumerate(candidate_sets):
        if k in decisions:
            continue
        if not outcomes[k]:
            decisions[k] = _dropped("no_decisive_round", evidence[k], calls[k])
            continue
        for winner, loser in outcomes[k]:
            for index, role in ((winner, "winner"), (loser, "loser")):
                point_requests.append(cset.point_request(index, point_template[k]))
                point_owner.append((k, index, role))
    point_results, point_calls = _judge_counted(judge, point_requests)
    scored: dict[int, dict[str, list[tuple[int, float]]]] = {k: {"winner": [], "loser": []} for k in evidence}
    for (k, index, role), result, spent in zip(point_owner, point_results, point_calls, strict=True):
        calls[k] += spent
        value = _point_value(result, config.use_expected_score)
        evidence[k]["scores"].append({"candidate": index, "role": role, "score": _r(value),
                                      "expected_score": _r(result.expected_score)})  # fmt: skip
        if value is None:
            evidence[k]["invalid"] += 1
        else:
            scored[k][role].append((index, value))
    for k, cset in enumerate(candidate_sets):
        if k in decisions:
            continue
        winners, losers = scored[k]["winner"], scored[k]["loser"]
        if not winners or not losers:
            decisions[k] = _dropped("no_valid_score", evidence[k], calls[k])
            continue
        chosen, chosen_score = _first_best(winners, max)
        rejected, rejected_score = _first_best(losers, min)
        decisions[k] = _finish(cset, evidence[k], calls[k], chosen, rejected, chosen_score, rejected_score,
                               chosen_score > rejected_score, "not_better")  # fmt: skip
    return [decisions[k] for k in range(len(candidate_sets))]


# ----------------------------------------------------------------------------------------------------------------
# tournament


def _soft_outcome(result: PairwiseResult) -> tuple[float, float] | None:
    """``(wins of first, wins of second)`` from one pair result, ``None`` when it carries no preference.

    With answer probabilities: ``P(first) + P(tie) / 2`` and ``P(second) + P(tie) / 2`` (averaged over both orders
    by the judge, so they are used even when the two orders' argmax verdicts disagree, even when the average is an
    exact 50/50 that gives no verdict). Without: 1/0 for a verdict,
    1/2 each for a tie, nothing for an invalid or order-inconsistent answer.
    """
    if result.probabilities:
        tie = result.probabilities.get(Verdict.TIE, 0.0)
        first = result.probabilities.get(Verdict.FIRST, 0.0) + tie / 2
        second = result.probabilities.get(Verdict.SECOND, 0.0) + tie / 2
        total = first + second
        return (first / total, second / total) if total > 0 else None
    status = _pair_status(result)
    if status == "valid":
        return (1.0, 0.0) if result.verdict is Verdict.FIRST else (0.0, 1.0)
    if status == "tie":
        return 0.5, 0.5
    return None


def tournament_many(
    candidate_sets: Sequence[CandidateSet], judge: RewardJudge, config: TournamentConfig | None = None
) -> list[SiftDecision]:
    """Round-robin sift: every pair judged (in both orders by default), strengths fitted, strongest vs weakest.

    Evidence: ``pairs`` (``[i, j, P(i beats j) or None, status]``), ``strengths``, ``probability`` (``P(chosen
    beats rejected)``), ``invalid`` / ``inconsistent`` / ``ties`` counts. Strength ties go to the lower index.
    """
    config = config or TournamentConfig()
    if config.fit not in ("bradley_terry", "win_rate"):
        raise ValueError(f"fit must be 'bradley_terry' or 'win_rate', got {config.fit!r}")
    judge = with_options(judge, order=config.order, scoring=config.scoring)
    requests, owner, evidence = [], [], []
    for k, cset in enumerate(candidate_sets):
        pair_t = config.pair_template or default_template(cset.task, "pair_rank", judge.family, judge.version)
        evidence.append(_base_evidence("tournament", cset, pair=pair_t))
        evidence[k].update(fit=config.fit, scoring=judge.scoring, pairs=[], ties=0, invalid=0, inconsistent=0)
        for i in range(len(cset)):
            for j in range(i + 1, len(cset)):
                requests.append(cset.pair_request(i, j, pair_t))
                owner.append((k, i, j))
    results, spent = _judge_counted(judge, requests)
    wins = [[[0.0] * len(cset) for _ in range(len(cset))] for cset in candidate_sets]
    calls = [0] * len(candidate_sets)
    for (k, i, j), result, cost in zip(owner, results, spent, strict=True):
        calls[k] += cost
        status = _pair_status(result)
        _count(evidence[k], result, status)
        outcome = _soft_outcome(result)
        if outcome is not None:
            wins[k][i][j] += outcome[0]
            wins[k][j][i] += outcome[1]
        evidence[k]["pairs"].append([i, j, None if outcome is None else _r(outcome[0]), status])
    decisions = []
    for k, cset in enumerate(candidate_sets):
        if len(cset) < 2:
            decisions.append(_dropped("too_few_candidates", evidence[k], calls[k]))
            continue
        w = wins[k]
        if not any(w[i][j] + w[j][i] > 0 for i in range(len(cset)) for j in range(len(cset))):
            decisions.append(_dropped("no_valid_comparison", evidence[k], calls[k]))
            continue
        if config.fit == "bradley_terry":
            strengths = fit_bradley_terry(w, prior=config.prior)
        else:
            strengths = win_rates(w)
        indexed = list(enumerate(strengths))
        chosen, chosen_score = _first_best(indexed, max)
        rejected, rejected_score = _first_best(indexed, min)
        if config.fit == "bradley_terry":
            probability = sigmoid(chosen_score - rejected_score)
        else:
            games = w[chosen][rejected] + w[rejected][chosen]
            probability = w[chosen][rejected] / games if games > 0 else 0.5
        evidence[k].update(strengths=[_r(s) for s in strengths], probability=_r(probability))
        kept = chosen != rejected and probability > config.min_probability
        decisions.append(_finish(cset, evidence[k], calls[k], chosen, rejected, chosen_score, rejected_score,
                                 kept, "below_margin"))  # fmt: skip
    return decisions


# ----------------------------------------------------------------------------------------------------------------
# pointwise


def pointwise_many(
    candidate_sets: Sequence[CandidateSet], judge: RewardJudge, config: PointwiseConfig | None = None
) -> list[SiftDecision]:
    """Score every candidate once; best vs worst, kept when the normalised margin clears ``min_margin``.

    Evidence: ``scores`` (per candidate, ``None`` when invalid), ``expected_scores``, ``margin`` (normalised by the
    template's score range), ``invalid`` count, ``pairs`` (every ``[better, worse]`` index pair whose own margin
    clears ``min_margin``, largest first: what :func:`~unifiedreward.preference.records.expand_pairs` turns into
    records). Equal best scores go to the lower index, as do equal worst.
    """
    config = config or PointwiseConfig()
    judge = with_options(judge, scoring=config.scoring)
    requests, owner, evidence = [], [], []
    for k, cset in enumerate(candidate_sets):
        point_t = config.point_template or default_template(cset.task, "point_score", judge.family, judge.version)
        evidence.append(_base_evidence("pointwise", cset, point=point_t))
        evidence[k].update(scoring=judge.scoring, scores=[], expected_scores=[], invalid=0, inconsistent=0, ties=0)
        for i in range(len(cset) if len(cset) >= 2 else 0):
            requests.append(cset.point_request(i, point_t))
            owner.append((k, i))
    results, spent = _judge_counted(judge, requests)
    values: list[list[tuple[int, float]]] = [[] for _ in candidate_sets]
    ranges: list[tuple[float, float] | None] = [None] * len(candidate_sets)
    calls = [0] * len(candidate_sets)
    for (k, i), result, cost in zip(owner, results, spent, strict=True):
        calls[k] += cost
        value = _point_value(result, config.use_expected_score)
        evidence[k]["scores"].append(_r(value))
        evidence[k]["expected_scores"].append(_r(result.expected_score))
        if value is None:
            evidence[k]["invalid"] += 1
        else:
            values[k].append((i, value))
            ranges[k] = ranges[k] or result.score_range
    decisions = []
    for k, cset in enumerate(candidate_sets):
        if len(cset) < 2:
            decisions.append(_dropped("too_few_candidates", evidence[k], calls[k]))
            continue
        if len(values[k]) < 2:
            decisions.append(_dropped("no_valid_score", evidence[k], calls[k]))
            continue
        chosen, chosen_score = _first_best(values[k], max)
        rejected, rejected_score = _first_best(values[k], min)
        low, high = ranges[k] or (0.0, 1.0)
        width = high - low if high > low else 1.0
        margin = (chosen_score - rejected_score) / width
        evidence[k]["margin"] = _r(margin)
        evidence[k]["pairs"] = _clearing_pairs(cset, values[k], width, config.min_margin)
        decisions.append(_finish(cset, evidence[k], calls[k], chosen, rejected, chosen_score, rejected_score,
                                 margin > config.min_margin, "below_margin"))  # fmt: skip
    return decisions


def _clearing_pairs(cset: CandidateSet, values: list[tuple[int, float]], width: float, min_margin: float
                    ) -> list[list[int]]:  # fmt: skip
    """Every ``[better, worse]`` pair of scored candidates whose normalised score difference clears ``min_margin``
    (and whose outputs differ), by decreasing difference, then by index: the pairs ``--pairs all`` writes."""
    found = []
    for a, (i, u) in enumerate(values):
        for j, v in values[a + 1 :]:
            better, worse = (i, j) if u >= v else (j, i)
            if abs(u - v) / width > min_margin and cset.candidates[i].output != cset.candidates[j].output:
                found.append((-abs(u - v), better, worse))
    return [[better, worse] for _, better, worse in sorted(found)]


# ----------------------------------------------------------------------------------------------------------------
# single-set forms and the registry


def upstream(candidate_set: CandidateSet, judge: RewardJudge, config: UpstreamConfig | None = None) -> SiftDecision:
    """:func:`upstream_many` on one set."""
    return upstream_many([candidate_set], judge, config)[0]


def tournament(
    candidate_set: CandidateSet, judge: RewardJudge, config: TournamentConfig | None = None
) -> SiftDecision:
    """:func:`tournament_many` on one set."""
    return tournament_many([candidate_set], judge, config)[0]


def pointwise(candidate_set: CandidateSet, judge: RewardJudge, config: PointwiseConfig | None = None) -> SiftDecision:
    """:func:`pointwise_many` on one set."""
    return pointwise_many([candidate_set], judge, config)[0]


STRATEGIES: dict[str, tuple[Callable[..., list[SiftDecision]], type]] = {
    "upstream": (upstream_many, UpstreamConfig),
    "tournament": (tournament_many, TournamentConfig),
    "pointwise": (pointwise_many, PointwiseConfig),
}


def sift(
    candidate_sets: Sequence[CandidateSet], judge: RewardJudge, strategy: str = "upstream", config: Any = None
) -> list[SiftDecision]:
    """Run the named strategy (``"upstream"``, ``"tournament"``, ``"pointwise"``) over a batch of sets."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {sorted(STRATEGIES)}, got {strategy!r}")
    function, config_type = STRATEGIES[strategy]
    if config is not None and not isinstance(config, config_type):
        raise TypeError(f"strategy {strategy!r} takes a {config_type.__name__}, got {type(config).__name__}")
    return function(candidate_sets, judge, config)
