"""Evaluation metrics for the reward benchmarks UnifiedReward reports on, with their exact official definitions.

Every function states its definition (formula, tie handling, what happens to unparsed predictions) and the source
it follows. The sources and the ways upstream scripts deviate from the benchmarks' official metrics are summarised in
``/work/shared/reference/benchmarks.md`` (§1) and ``unifiedreward-protocol.md`` (§6). Nothing here is copied from
upstream code; everything is implemented from those written definitions.

Conventions used throughout:

* A *pair* is (first, second) in the benchmark's canonical order (GenAI-Bench left/right, VideoGen-RewardBench A/B,
  VL-RewardBench response[0]/response[1]). Callers that swapped the presentation order must undo the swap before
  scoring; predictions here are always relative to the canonical order.
* ``None`` as a prediction means "the judge's answer could not be parsed". It is never silently turned into a tie:
  it is counted wrong (or excluded, where the official rule says so) and always reported in ``n_invalid``.
* Accuracies are fractions in [0, 1] at full precision; ``AccuracyResult.percent`` / ``rounded_percent`` give the
  percent forms the leaderboards print. A ratio whose denominator is 0 is ``nan`` (documented per function).

Public API:

* :func:`genaibench_accuracy`: GenAI-Bench official 4-way accuracy.
* :func:`ur_tau_diff`: the UnifiedReward paper's "tau" (3-way accuracy, ties as one class) and "diff" (non-tie).
* :func:`tie_sufficient_stats`, :func:`tie_calibrated_accuracy`, :func:`accuracy_without_ties`: tie-aware pairwise
  accuracy ("Ties Matter", Deutsch et al. 2023) and VideoGen-RewardBench's ``calc_accuracy.py`` variant.
* :func:`vlrewardbench_source`, :func:`vlrewardbench_category`, :func:`vlrewardbench_category_upstream_ur`,
  :func:`majority_vote`, :func:`vlrewardbench_accuracy`: VL-RewardBench.
* :func:`average_ranks`, :func:`pearson`, :func:`spearman`: correlation of pointwise scores with ground truth.
* :func:`videoqa_judge_summary`: MSRVTT/MSVD/TGIF-QA GPT-judge aggregation.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np

__all__ = [
    "GENAIBENCH_PREDICTIONS",
    "GENAIBENCH_VERDICTS",
    "GENAIBENCH_VOTE_TYPES",
    "VLREWARDBENCH_CATEGORIES",
    "AccuracyResult",
    "TauDiffResult",
    "TieCalibrationResult",
    "TieStats",
    "VLRewardBenchResult",
    "VideoQAJudgeResult",
    "accuracy_without_ties",
    "average_ranks",
    "genaibench_accuracy",
    "majority_vote",
    "pearson",
    "preference_sign",
    "spearman",
    "tie_calibrated_accuracy",
    "tie_sufficient_stats",
    "ur_tau_diff",
    "videoqa_judge_summary",
    "vlrewardbench_accuracy",
    "vlrewardbench_category",
    "vlrewardbench_category_upstream_ur",
    "vlrewardbench_source",
]

_NAN = float("nan")
T = TypeVar("T", bound=Hashable)


def _ratio(num: int, den: int) -> float:
    return num / den if den else _NAN


def _check_same_length(a: Sequence[Any], b: Sequence[Any], names: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{names} must have the same length, got {len(a)} and {len(b)}")


def _plain(label: Any) -> Any:
    """An Enum member (e.g. ``unifiedreward.protocol.Verdict.FIRST``) becomes its value; anything else is unchanged."""
    return getattr(label, "value", label)


# ---------------------------------------------------------------------------------------------------- result types
@dataclass(frozen=True)
class AccuracyResult:
    """An accuracy with the counts behind it.

    Attributes:
        n: items considered (after any subsetting the metric defines, e.g. non-tie gold only for "diff").
        n_correct: items scored correct.
        n_invalid: items among the ``n`` whose prediction was unparsed (``None``). Always reported, whether the
            metric counts them wrong (then they are in ``denominator``) or excludes them (then they are not).
        denominator: the number the accuracy divides by (``n``, or ``n - n_invalid`` where unparsed is excluded).
        accuracy: ``n_correct / denominator`` as a fraction in [0, 1], full precision; ``nan`` when the
            denominator is 0.
    """

    n: int
    n_correct: int
    n_invalid: int
    denominator: int
    accuracy: float

    @classmethod
    def from_counts(cls, n: int, n_correct: int, n_invalid: int, denominator: int) -> AccuracyResult:
        return cls(n, n_correct, n_invalid, denominator, _ratio(n_correct, denominator))

    @property
    def percent(self) -> float:
        """``100 * accuracy``, full precision."""
        return 100.0 * self.accuracy

    def rounded_percent(self, ndigits: int = 2) -> float:
        """``round(100 * n_correct / denominator, ndigits)``: the number leaderboards print (GenAI-Bench: 2 digits)."""
        return round(self.percent, ndigits)


# ------------------------------------------------------------------------------------------ GenAI-Bench (official)
GENAIBENCH_VOTE_TYPES = ("leftvote", "rightvote", "tievote", "bothbad_vote")
"""Gold ``vote_type`` values of TIGER-Lab/GenAI-Bench."""

GENAIBENCH_PREDICTIONS = ("left", "right", "tie_good", "tie_bad", "tie")
"""Prediction labels accepted by :func:`genaibench_accuracy` (plus ``None`` = unparsed)."""

GENAIBENCH_VERDICTS: dict[str, str] = {
    "[[A>B]]": "left",
    "[[A>>B]]": "left",
    "[[B>A]]": "right",
    "[[B>>A]]": "right",
    "[[A=B]]": "tie",
    "[[A=B=Good]]": "tie_good",
    "[[A=B=Bad]]": "tie_bad",
}
"""The official judge's bracketed verdict tokens mapped to prediction labels. Any other token is unparsed (``None``).

Source: ``TIGER-AI-Lab/GenAI-Bench/inference.py::parse_response`` (first match of ``\\[\\[.*\\]\\]`` in the answer)."""

_GENAIBENCH_CORRECT: dict[str, frozenset[str]] = {
    "leftvote": frozenset({"left"}),
    "rightvote": frozenset({"right"}),
    "tievote": frozenset({"tie", "tie_good"}),
    "bothbad_vote": frozenset({"tie", "tie_bad"}),
}


def genaibench_accuracy(gold_votes: Sequence[str], predictions: Sequence[str | None]) -> AccuracyResult:
    """GenAI-Bench's official 4-way pairwise accuracy.

    Definition (``TIGER-AI-Lab/GenAI-Bench/inference.py::parse_response`` and ``show_results.py``; benchmarks.md
    §1.1). An item is correct iff:

    * ``leftvote`` and prediction ``left`` (official verdicts ``[[A>B]]`` / ``[[A>>B]]``);
    * ``rightvote`` and ``right`` (``[[B>A]]`` / ``[[B>>A]]``);
    * ``tievote`` and ``tie_good`` (``[[A=B=Good]]``) or ``tie`` (``[[A=B]]``, which the official rule accepts for
      both tie kinds);
    * ``bothbad_vote`` and ``tie_bad`` (``[[A=B=Bad]]``) or ``tie``.

    accuracy = n_correct / n over **all** items; an unparsed prediction (``None``) is wrong and counted in
    ``n_invalid``. The random baseline is about 25%. The leaderboard prints ``round(100 * accuracy, 2)``; this
    function keeps full precision in ``accuracy`` and that rounding is ``result.rounded_percent(2)``.

    Note the official split is ``test_v1``; UnifiedReward's own scripts use ``test`` (benchmarks.md §1.1).

    Args:
        gold_votes: per item, one of :data:`GENAIBENCH_VOTE_TYPES`.
        predictions: per item, one of :data:`GENAIBENCH_PREDICTIONS` or ``None`` (see :data:`GENAIBENCH_VERDICTS`
            for mapping the official bracketed tokens).

    Returns:
        AccuracyResult with ``denominator == n``.

    Raises:
        ValueError: lengths differ, or an unknown gold or prediction label.
    """
    _check_same_length(gold_votes, predictions, "gold_votes and predictions")
    n_correct = n_invalid = 0
    for gold, pred in zip(gold_votes, predictions, strict=True):
        if gold not in _GENAIBENCH_CORRECT:
            raise ValueError(f"unknown GenAI-Bench vote_type {gold!r}; expected one of {GENAIBENCH_VOTE_TYPES}")
        if pred is None:
            n_invalid += 1
            continue
        if pred not in GENAIBENCH_PREDICTIONS:
            raise ValueError(f"unknown prediction {pred!r}; expected one of {GENAIBENCH_PREDICTIONS} or None")
        n_correct += pred in _GENAIBENCH_CORRECT[gold]
    n = len(gold_votes)
    return AccuracyResult.from_counts(n, n_correct, n_invalid, n)


# --------------------------------------------------------------------------------- UnifiedReward paper tau / diff
_PREFERENCE_ALIASES: dict[Any, int] = {
    # +1: the first (left / A) candidate is preferred
    "first": 1,
    "left": 1,
    "leftvote": 1,
    "A": 1,
    # -1: the second (right / B) candidate is preferred
    "second": -1,
    "right": -1,
    "rightvote": -1,
    "B": -1,
    # 0: tie (either GenAI-Bench tie kind, VideoGen-RewardBench "same")
    "tie": 0,
    "tievote": 0,
    "bothbad_vote": 0,
    "same": 0,
}


def preference_sign(label: Any) -> int:
    """Map a pairwise label to +1 (first preferred), -1 (second preferred) or 0 (tie).

    Accepted labels: ``first``/``left``/``leftvote``/``A`` -> +1; ``second``/``right``/``rightvote``/``B`` -> -1;
    ``tie``/``tievote``/``bothbad_vote``/``same`` -> 0; the integers +1/-1/0; and Enum members whose value is one
    of these (e.g. ``unifiedreward.protocol.Verdict``). Case-sensitive, as the datasets' labels are.

    Raises:
        ValueError: any other label (including ``None``: unparsed predictions are handled by the callers).
    """
    value = _plain(label)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and int(value) in (-1, 0, 1):
        return int(value)
    if isinstance(value, str) and value in _PREFERENCE_ALIASES:
        return _PREFERENCE_ALIASES[value]
    raise ValueError(f"unknown pairwise label {label!r}")


@dataclass(frozen=True)
class TauDiffResult:
    """The UnifiedReward paper's two pairwise numbers.

    Attributes:
        tau: 3-way accuracy over all pairs (ties as one class).
        diff: accuracy over the pairs whose gold label is not a tie.
    """

    tau: AccuracyResult
    diff: AccuracyResult


def ur_tau_diff(gold: Sequence[Any], predictions: Sequence[Any]) -> TauDiffResult:
    """UnifiedReward's "tau" and "diff" (GenAI-Bench image/video and VideoGen-RewardBench tables).

    Definition (UR's ``benchmark_evaluation/*/test_*_genAI_bench_*.py`` / ``test_*_videogen_reward_bench.py``
    printouts ``Acc.`` and ``Acc. w/o tie``; protocol §6.1, benchmarks.md §1.1-1.2):

    * Labels are 3-way: first / second / tie. Gold GenAI-Bench ``tievote`` and ``bothbad_vote`` both become "tie";
      VideoGen-RewardBench ``same`` is "tie" (see :func:`preference_sign` for all accepted labels).
    * **tau** = #(pred == gold) / N_all over all pairs. A gold tie is correct only for a tie prediction.
    * **diff** = #(pred == gold, gold not tie) / #(gold not tie) = (correct - correct_tie) / (N_all - N_tie).
      A tie prediction on a non-tie gold pair is wrong.
    * An unparsed prediction (``None``) is **wrong** in both and counted in ``n_invalid``; it is never treated as
      a tie prediction. (Upstream's video scripts turn unparseable output into a tie prediction, protocol §8.2
      item 11; to reproduce that, map ``None`` to ``"tie"`` before calling.)

    This is *not* the tie-calibrated accuracy of VideoAlign / "Ties Matter" (see :func:`tie_calibrated_accuracy`).

    Args:
        gold: per pair, a gold label accepted by :func:`preference_sign`.
        predictions: per pair, a label accepted by :func:`preference_sign` or ``None`` (unparsed).

    Returns:
        TauDiffResult; ``diff.n`` is the number of non-tie gold pairs, ``diff.accuracy`` is ``nan`` when all gold
        labels are ties. Both denominators include the unparsed items.
    """
    _check_same_length(gold, predictions, "gold and predictions")
    n = len(gold)
    n_correct = n_invalid = n_nontie = n_correct_nontie = n_invalid_nontie = 0
    for g_label, p_label in zip(gold, predictions, strict=True):
        g = preference_sign(g_label)
        nontie = g != 0
        n_nontie += nontie
        if p_label is None:
            n_invalid += 1
            n_invalid_nontie += nontie
            continue
        if preference_sign(p_label) == g:
            n_correct += 1
            n_correct_nontie += nontie
    return TauDiffResult(
        tau=AccuracyResult.from_counts(n, n_correct, n_invalid, n),
        diff=AccuracyResult.from_counts(n_nontie, n_correct_nontie, n_invalid_nontie, n_nontie),
    )


# ------------------------------------------------------------------------------------ tie-aware accuracy (margins)
@dataclass(frozen=True)
class TieStats:
    """Sufficient statistics of pairwise agreement at a tie threshold epsilon ("Ties Matter", Deutsch et al. 2023).

    For a pair with gold h in {+1, 0, -1} and model margin m (a model tie means |m| <= epsilon):

    * ``ties_both`` (T_hm): h == 0 and |m| <= epsilon;
    * ``ties_human`` (T_h): h == 0 and |m| > epsilon;
    * ``ties_model`` (T_m): h != 0 and |m| <= epsilon;
    * ``concordant`` (C): h != 0, |m| > epsilon and h * m > 0;
    * ``discordant`` (D): h != 0, |m| > epsilon and h * m <= 0 (with epsilon < 0, m == 0 lands here).
    """

    concordant: int = 0
    discordant: int = 0
    ties_human: int = 0
    ties_model: int = 0
    ties_both: int = 0

    @property
    def n(self) -> int:
        return self.concordant + self.discordant + self.ties_human + self.ties_model + self.ties_both

    @property
    def accuracy(self) -> float:
        """acc_eq / acc_23 = (C + T_hm) / (C + D + T_h + T_m + T_hm); ``nan`` when there are no pairs."""
        return _ratio(self.concordant + self.ties_both, self.n)


@dataclass(frozen=True)
class TieCalibrationResult:
    """Result of :func:`tie_calibrated_accuracy`.

    Attributes:
        accuracy: the best accuracy over the candidate states (``nan`` for no pairs).
        epsilon: the threshold of the best state (a pair is a model tie iff |m| <= epsilon); the smallest such
            threshold when several states reach the best accuracy; ``nan`` for no pairs.
        n: number of pairs.
        mode: ``"ties_matter"`` or ``"videoalign"``.
        stats: the sufficient statistics of the best state.
        thresholds: the candidate thresholds in evaluation order.
        accuracies: the accuracy of each candidate state, aligned with ``thresholds``.
    """

    accuracy: float
    epsilon: float
    n: int
    mode: str
    stats: TieStats
    thresholds: tuple[float, ...] = field(default=(), repr=False)
    accuracies: tuple[float, ...] = field(default=(), repr=False)


def _validate_margins(gold: Sequence[float], margins: Sequence[float]) -> tuple[list[int], list[float]]:
    _check_same_length(gold, margins, "gold and margins")
    h: list[int] = []
    for g in gold:
        gi = int(g) if isinstance(g, (int, float, np.integer, np.floating)) and g in (-1, 0, 1) else None
        if gi is None:
            raise ValueError(f"gold preferences must be +1, -1 or 0, got {g!r}")
        h.append(gi)
    m = [float(x) for x in margins]
    if not all(math.isfinite(x) for x in m):
        raise ValueError("margins must be finite real numbers (map a failed score to a margin yourself)")
    return h, m


def tie_sufficient_stats(gold: Sequence[float], margins: Sequence[float], epsilon: float) -> TieStats:
    """Count C, D, T_h, T_m, T_hm (see :class:`TieStats`) at a fixed tie threshold ``epsilon``.

    ``tie_sufficient_stats(h, m, eps).accuracy`` is the tie-aware accuracy at a given threshold, e.g. one calibrated
    on a dev split. ``epsilon = 0`` makes only exact ``m == 0`` model ties; a negative ``epsilon`` (VideoAlign uses
    -1) makes no model ties at all, so ``m == 0`` on a non-tie gold pair is discordant.

    Args:
        gold: per pair, +1 (first preferred), -1 (second preferred) or 0 (tie). See :func:`preference_sign`.
        margins: per pair, m = score(first) - score(second) (or P(first) - P(second)); finite.
        epsilon: tie threshold.
    """
    h, m = _validate_margins(gold, margins)
    c = d = th = tm = thm = 0
    for hi, mi in zip(h, m, strict=True):
        is_model_tie = abs(mi) <= epsilon
        if hi == 0:
            if is_model_tie:
                thm += 1
            else:
                th += 1
        elif is_model_tie:
            tm += 1
        elif hi * mi > 0:
            c += 1
        else:
            d += 1
    return TieStats(c, d, th, tm, thm)


def tie_calibrated_accuracy(
    gold: Sequence[float],
    margins: Sequence[float],
    *,
    mode: Literal["ties_matter", "videoalign"] = "ties_matter",
) -> TieCalibrationResult:
    """Pairwise accuracy with ties and tie calibration: acc* = max over epsilon of (C + T_hm) / N.

    Each pair has a gold h in {+1, -1, 0} and a model margin m; the model predicts a tie iff |m| <= epsilon, and
    acc(epsilon) = (C + T_hm) / N (:class:`TieStats`). Tie calibration picks the epsilon that maximises it.

    ``mode="ties_matter"`` (default; Deutsch, Foster & Freitag 2023, "Ties Matter", EMNLP, arXiv 2305.14324,
    Algorithm 1; reference implementation ``google-research/mt-metrics-eval/mt_metrics_eval/tau_optimization.py``;
    benchmarks.md §1.4). Candidates are epsilon in {0} ∪ {|m_i|}:

    1. The first candidate is epsilon = 0, the "no new ties" state: only exact ``m == 0`` are model ties. It is
       always evaluated, even when no margin is 0.
    2. Pairs are then moved to "tie" in increasing |m|. All pairs sharing one |m| move together (a threshold cannot
       split equal |m|); one state is recorded per distinct |m| > 0.
    3. The best accuracy is returned with its epsilon; among equal accuracies the smallest epsilon wins (first
       maximum). The result does not depend on row order. Equality of |m| is exact float equality; round the
       margins first if they carry float noise.

    ``mode="videoalign"`` reproduces ``KwaiVGI/VideoAlign/calc_accuracy.py::calc_accuracy_with_ties``, the
    metric VideoGen-RewardBench's leaderboard calls official, with both of its deviations (benchmarks.md §1.4):

    a. It starts from epsilon = -1 (no model ties; ``m == 0`` on a non-tie gold pair is discordant) and moves the
       first pair to a tie *before* recording anything, so the no-new-ties state is never a candidate (unless
       some m == 0, whose moves lead to it). E.g. 3 correct pairs with distinct |m| and no ties score 2/3.
    b. It records a state after every single pair, also inside a group of equal |m|, in a stable sort by |m|
       (Python ``sorted``), so the result can depend on row order and can exceed every achievable epsilon.

    The reported epsilon is |m| of the last pair moved in the best state (first strict maximum, as upstream).

    Feed each benchmark pair as one row; the average of per-row acc_23 in the reference implementation then equals
    this global accuracy.

    Args:
        gold: per pair, +1 (first preferred), -1 (second preferred) or 0 (tie). Use :func:`preference_sign` to map
            dataset labels (``A``/``B``/``same``, ``leftvote``/...).
        margins: per pair, m = score(first) - score(second) (or P(first) - P(second)); finite reals.
        mode: ``"ties_matter"`` or ``"videoalign"``.

    Returns:
        TieCalibrationResult (accuracy, epsilon, stats of the best state, the whole search curve). With no pairs,
        ``accuracy`` and ``epsilon`` are ``nan``.

    Raises:
        ValueError: lengths differ, a gold value outside {+1, 0, -1}, a non-finite margin, or an unknown mode.
    """
    if mode not in ("ties_matter", "videoalign"):
        raise ValueError(f"mode must be 'ties_matter' or 'videoalign', got {mode!r}")
    h, m = _validate_margins(gold, margins)
    n = len(h)
    if n == 0:
        return TieCalibrationResult(_NAN, _NAN, 0, mode, TieStats())

    order = sorted(range(n), key=lambda i: abs(m[i]))  # stable: equal |m| keep row order
    start = tie_sufficient_stats(h, m, 0.0 if mode == "ties_matter" else -1.0)
    c, d, th, tm, thm = start.concordant, start.discordant, start.ties_human, start.ties_model, start.ties_both
    thresholds: list[float] = []
    states: list[tuple[int, int, int, int, int]] = []
    if mode == "ties_matter":
        thresholds.append(0.0)
        states.append((c, d, th, tm, thm))
    for i in order:
        a = abs(m[i])
        if mode == "ties_matter" and a == 0.0:
            continue  # already a model tie in the epsilon = 0 state
        # move pair i from its non-tie class to its tie class
        if h[i] == 0:
            th, thm = th - 1, thm + 1
        elif h[i] * m[i] > 0:
            c, tm = c - 1, tm + 1
        else:
            d, tm = d - 1, tm + 1
        if mode == "ties_matter" and thresholds[-1] == a:
            states[-1] = (c, d, th, tm, thm)  # same threshold: keep only the state after the whole group
        else:
            thresholds.append(a)
            states.append((c, d, th, tm, thm))
    accuracies = [(s[0] + s[4]) / n for s in states]
    best = max(range(len(accuracies)), key=lambda k: (accuracies[k], -k))  # first maximum
    return TieCalibrationResult(
        accuracy=accuracies[best],
        epsilon=thresholds[best],
        n=n,
        mode=mode,
        stats=TieStats(*states[best]),
        thresholds=tuple(thresholds),
        accuracies=tuple(accuracies),
    )


def accuracy_without_ties(gold: Sequence[float], margins: Sequence[float]) -> AccuracyResult:
    """Pairwise accuracy without ties: C / (C + D) over the pairs whose gold is not a tie.

    Definition (``KwaiVGI/VideoAlign/calc_accuracy.py::calc_accuracy_without_ties``, VideoGen-RewardBench
    "w/o Ties"; benchmarks.md §1.2 and §1.4): sufficient statistics at epsilon = -1, so the model never ties;
    gold-tie pairs are dropped; a pair is correct iff h * m > 0. **A margin of exactly 0 on a non-tie gold pair
    counts as wrong (discordant)**, since it expresses no preference.

    Args:
        gold: per pair, +1, -1 or 0 (see :func:`tie_calibrated_accuracy`).
        margins: per pair, m = score(first) - score(second); finite.

    Returns:
        AccuracyResult with ``n`` = number of non-tie gold pairs = ``denominator``, ``n_correct`` = C,
        ``n_invalid = 0``; ``accuracy`` is ``nan`` when every gold label is a tie.
    """
    stats = tie_sufficient_stats(gold, margins, -1.0)
    n = stats.concordant + stats.discordant + stats.ties_model
    return AccuracyResult.from_counts(n, stats.concordant, 0, n)


# ---------------------------------------------------------------------------------------------------- VL-RewardBench
VLREWARDBENCH_CATEGORIES = ("general", "hallucination", "reasoning")
"""VL-RewardBench's three categories, in the order the paper's tables use."""

_VLRB_SOURCE_TO_CATEGORY = {
    "vlfeedback": "general",
    "wildvision-battle": "general",
    "povid": "hallucination",
    "rlaif-v": "hallucination",
    "rlhf-v": "hallucination",
    "reasoning_tasks": "reasoning",
}

# id prefix (text before the first "_" or "-", compared case-insensitively) -> source, per the official map
_VLRB_PREFIX_TO_SOURCE = {
    "hallucination": "povid",  # POVID ids look like "hallucination_pair-1003"
    "rlaif": "rlaif-v",
    "rlhf": "rlhf-v",
    "mathverse": "reasoning_tasks",
    "mmmu": "reasoning_tasks",
    "wildvision": "wildvision-battle",
}


def _vlrb_prefix(item_id: str) -> str:
    cut = [k for k in (item_id.find("_"), item_id.find("-")) if k >= 0]
    return (item_id[: min(cut)] if cut else item_id).lower()


def vlrewardbench_source(item_id: str) -> str:
    """The source data set of a VL-RewardBench item, from its id (official map).

    The id prefix is the text before the first ``_`` or ``-``, compared case-insensitively:
    ``hallucination`` -> ``povid``; ``RLAIF`` -> ``rlaif-v``; ``RLHF`` -> ``rlhf-v``; ``mathverse`` / ``mmmu`` ->
    ``reasoning_tasks``; ``wildvision`` -> ``wildvision-battle``; anything else (the 10 VLFeedback items have
    ``jailbreak`` / ``LRVInstruction`` / ``politics`` / ``svit`` ids) -> ``vlfeedback``.

    Source: ``vl-rewardbench/VL_RewardBench`` ``cal.py`` after the "Fix povid bug" commits (7918386, 91b241e);
    benchmarks.md §1.3. On the 1,250 items the sources are povid 448, reasoning_tasks 318, rlaif-v 233,
    wildvision-battle 173, rlhf-v 68, vlfeedback 10.
    """
    return _VLRB_PREFIX_TO_SOURCE.get(_vlrb_prefix(item_id), "vlfeedback")


def vlrewardbench_category(item_id: str) -> str:
    """The official VL-RewardBench category of an item: ``general``, ``hallucination`` or ``reasoning``.

    General = vlfeedback + wildvision-battle (183 items), Hallucination = povid + rlaif-v + rlhf-v (749),
    Reasoning = mathverse + mmmu (318), with the source from :func:`vlrewardbench_source`. Source: VL-RewardBench
    (arXiv 2411.17451) and the fixed ``cal.py``; benchmarks.md §1.3.
    """
    return _VLRB_SOURCE_TO_CATEGORY[vlrewardbench_source(item_id)]


def vlrewardbench_category_upstream_ur(item_id: str) -> str:
    """The category UnifiedReward's own VL-RewardBench scripts assign: the pre-fix map **with the POVID bug**.

    Identical to :func:`vlrewardbench_category` except that the prefix ``hallucination`` is unmapped, so the 448
    POVID items (``hallucination_pair-*``) fall through to vlfeedback and count as **general**. Groups become
    general 631 / hallucination 301 / reasoning 318 instead of the official 183 / 749 / 318. Use only to
    reproduce UR's published per-category numbers; they are not comparable to the VL-RewardBench paper's.

    Source: UR ``benchmark_evaluation/{LLaVA,Qwen,vLLM}_evaluation/test_*_vlrewardbench.py``; protocol §6.5,
    benchmarks.md §1.3.
    """
    prefix = _vlrb_prefix(item_id)
    source = "vlfeedback" if prefix == "hallucination" else _VLRB_PREFIX_TO_SOURCE.get(prefix, "vlfeedback")
    return _VLRB_SOURCE_TO_CATEGORY[source]


def majority_vote(votes: Sequence[T | None]) -> T | None:
    """Strict-majority vote over k samples, VL-RewardBench's official aggregation.

    Returns the value that received **more than k / 2** of the k votes, else ``None``. ``None`` votes (unparsed
    samples, official ``doesntMatch``) count in k and can themselves be the majority, which also returns ``None``.
    There is no tie-break: with no strict majority (e.g. 2-2 for k = 4, or 2-2-1 for k = 5) the item is
    undecided (official ``other``) and returns ``None``, which :func:`vlrewardbench_accuracy` excludes under the
    official rule. For k odd and two possible outcomes with no unparsed votes a majority always exists.

    Source: ``vl-rewardbench/VL_RewardBench/cal.py`` (agree if #agree > n/2, reject if #reject > n/2,
    doesntMatch if #doesntMatch > n/2, else other; k = 1, 3, 5, 7, 9 of 10 samples); benchmarks.md §1.3.

    Args:
        votes: the k per-sample outcomes, e.g. ``True`` (agree with the human preference) / ``False`` (reject) /
            ``None`` (unparsed). Take the first k of the samples to report accuracy at k.

    Raises:
        ValueError: no votes.
    """
    if len(votes) == 0:
        raise ValueError("majority_vote needs at least one vote")
    value, count = Counter(votes).most_common(1)[0]
    return value if 2 * count > len(votes) else None


@dataclass(frozen=True)
class VLRewardBenchResult:
    """VL-RewardBench metrics.

    Attributes:
        overall: accuracy over all items (per the chosen unparsed rule).
        per_category: the three categories of :data:`VLREWARDBENCH_CATEGORIES`, always all present (an empty one
            has ``nan`` accuracy).
        macro: unweighted mean of the three per-category accuracies; ``nan`` if any of them is ``nan``.
    """

    overall: AccuracyResult
    per_category: dict[str, AccuracyResult]
    macro: float


def vlrewardbench_accuracy(
    item_ids: Sequence[str],
    outcomes: Sequence[bool | None],
    *,
    category_fn: Callable[[str], str] = vlrewardbench_category,
    unparsed: Literal["exclude", "wrong"] = "exclude",
) -> VLRewardBenchResult:
    """VL-RewardBench overall and macro accuracy.

    Definition (official ``vl-rewardbench/VL_RewardBench/cal.py``; benchmarks.md §1.3):

    * Per item, an outcome: ``True`` = the judge agrees with the human preference (official ``agree``),
      ``False`` = it picks the other response (``reject``), ``None`` = unparsed or no majority (``doesntMatch`` /
      ``other``). With k samples per item, reduce them with :func:`majority_vote` first.
    * Per category: acc = #agree / #(agree + reject). **Officially (``unparsed="exclude"``) ``None`` items are
      excluded from the denominator**, not counted wrong; they are reported in ``n_invalid``.
    * Overall = sum of agree / sum of (agree + reject) over all categories (i.e. weighted by category size).
    * Macro = unweighted mean of the three category accuracies.

    ``unparsed="wrong"`` instead counts ``None`` as wrong (denominator = all items): UnifiedReward's scripts'
    rule (overall = correct / 1250; protocol §6.1/§6.5). Combine with ``category_fn=vlrewardbench_category_upstream_ur``
    to reproduce UR's printed numbers.

    Args:
        item_ids: per item, the VL-RewardBench ``id``.
        outcomes: per item, ``True`` / ``False`` / ``None`` as above.
        category_fn: id -> category in :data:`VLREWARDBENCH_CATEGORIES`.
        unparsed: ``"exclude"`` (official) or ``"wrong"`` (UR scripts).

    Raises:
        ValueError: lengths differ, unknown ``unparsed``, or ``category_fn`` returns an unknown category.
    """
    if unparsed not in ("exclude", "wrong"):
        raise ValueError(f"unparsed must be 'exclude' or 'wrong', got {unparsed!r}")
    _check_same_length(item_ids, outcomes, "item_ids and outcomes")
    counts = {c: [0, 0, 0] for c in VLREWARDBENCH_CATEGORIES}  # n, correct, invalid
    for item_id, outcome in zip(item_ids, outcomes, strict=True):
        category = category_fn(item_id)
        if category not in counts:
            raise ValueError(f"category_fn returned {category!r} for {item_id!r}; expected {VLREWARDBENCH_CATEGORIES}")
        row = counts[category]
        row[0] += 1
        if outcome is None:
            row[2] += 1
        elif outcome:
            row[1] += 1

    def result(n: int, correct: int, invalid: int) -> AccuracyResult:
        return AccuracyResult.from_counts(n, correct, invalid, n - invalid if unparsed == "exclude" else n)

    per_category = {c: result(*counts[c]) for c in VLREWARDBENCH_CATEGORIES}
    totals = [sum(counts[c][k] for c in VLREWARDBENCH_CATEGORIES) for k in range(3)]
    accs = [per_category[c].accuracy for c in VLREWARDBENCH_CATEGORIES]
    macro = _NAN if any(math.isnan(a) for a in accs) else sum(accs) / len(accs)
    return VLRewardBenchResult(overall=result(*totals), per_category=per_category, macro=macro)


# ------------------------------------------------------------------------------------------------------ correlations
def _as_float_vector(x: Sequence[float], name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of the ranks they span ("average" / fractional ranking).

    E.g. ``[10, 20, 20, 30] -> [1, 2.5, 2.5, 4]``. Equivalent to ``scipy.stats.rankdata(method="average")`` for
    finite inputs; pure numpy.
    """
    x = _as_float_vector(values, "values")
    n = x.size
    ranks = np.empty(n, dtype=float)
    if n == 0:
        return ranks
    order = np.argsort(x, kind="stable")
    xs = x[order]
    # group boundaries of equal sorted values
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], n]  # exclusive
    group_rank = (starts + 1 + ends) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks[order] = np.repeat(group_rank, ends - starts)
    return ranks


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's r = sum((x - mean x)(y - mean y)) / sqrt(sum (x - mean x)^2 * sum (y - mean y)^2).

    Returns ``nan`` when undefined: fewer than 2 pairs, either input constant (zero variance), or any non-finite
    value. The result is clipped to [-1, 1] against rounding. Pure numpy.

    Raises:
        ValueError: lengths differ or inputs are not one-dimensional.
    """
    a = _as_float_vector(x, "x")
    b = _as_float_vector(y, "y")
    if a.size != b.size:
        raise ValueError(f"x and y must have the same length, got {a.size} and {b.size}")
    if a.size < 2 or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return _NAN
    da = a - a.mean()
    db = b - b.mean()
    sxx = float(np.dot(da, da))
    syy = float(np.dot(db, db))
    if np.all(a == a[0]) or np.all(b == b[0]) or sxx == 0.0 or syy == 0.0:
        return _NAN
    r = float(np.dot(da, db)) / math.sqrt(sxx * syy)
    return max(-1.0, min(1.0, r))


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho = Pearson's r of the average ranks (:func:`average_ranks`), so ties are handled exactly.

    Returns ``nan`` when undefined: fewer than 2 pairs, either input constant, or any non-finite value. Matches
    ``scipy.stats.spearmanr`` on finite data. Pure numpy.

    Raises:
        ValueError: lengths differ or inputs are not one-dimensional.
    """
    a = _as_float_vector(x, "x")
    b = _as_float_vector(y, "y")
    if a.size != b.size:
        raise ValueError(f"x and y must have the same length, got {a.size} and {b.size}")
    if a.size < 2 or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return _NAN
    return pearson(average_ranks(a), average_ranks(b))


# ------------------------------------------------------------------------------------------- video QA (GPT judge)
@dataclass(frozen=True)
class VideoQAJudgeResult:
    """Aggregated GPT-judge grades for MSRVTT-QA / MSVD-QA / TGIF-QA.

    Attributes:
        n: all items.
        n_valid: items with a parsed yes/no and a parsed score (= n_yes + n_no).
        n_invalid: items whose grade could not be parsed (n - n_valid).
        n_yes: valid items judged "yes".
        n_no: valid items judged "no".
        accuracy: n_yes / n_valid = yes / (yes + no), the upstream "Accuracy" (``nan`` if n_valid == 0).
        accuracy_invalid_as_wrong: n_yes / n, a conservative figure counting unparsed grades as "no"
            (``nan`` if n == 0).
        mean_score: mean judge score (0-5) over the valid items, the upstream "Average score" (``nan`` if none).
    """

    n: int
    n_valid: int
    n_invalid: int
    n_yes: int
    n_no: int
    accuracy: float
    accuracy_invalid_as_wrong: float
    mean_score: float


def videoqa_judge_summary(grades: Sequence[Any], *, truncate_scores: bool = False) -> VideoQAJudgeResult:
    """Aggregate the Video-ChatGPT-style GPT judge's per-item ``{'pred': yes|no, 'score': 0-5}`` grades.

    Definition (UR ``benchmark_evaluation/DPO_eval/eval_gpt.py``; protocol §2.4 and §6.7):

    * Accuracy = yes / (yes + no) and Average score = sum(score) / count, both **over the items whose grade was
      parsed** (``n_valid``). Upstream silently drops unparsed grades; here they are counted in ``n_invalid`` and
      ``accuracy_invalid_as_wrong = n_yes / n`` is reported next to the upstream number, so the denominator is
      always explicit.
    * An item is valid iff both the yes/no decision and the score were parsed (upstream also averages the score
      of a parsed dict whose ``pred`` is neither yes nor no; such an item is invalid here).
    * Scores are kept as floats by default; ``truncate_scores=True`` applies upstream's ``int(score)`` (4.8 -> 4)
      for comparability.

    Args:
        grades: per item, either an object with ``correct`` (bool or None) and ``score`` (float or None)
            attributes, such as ``unifiedreward.protocol.GradeResult`` from ``parse_gpt_grade``; or a
            ``(correct, score)`` tuple; or ``None`` for an item with no usable grade.
        truncate_scores: apply ``int()`` to each score, as upstream does.

    Raises:
        ValueError: an item of another type, or a parsed score that is not finite.
    """
    n = len(grades)
    n_yes = n_no = 0
    score_sum = 0.0
    for grade in grades:
        if grade is None:
            continue
        if isinstance(grade, tuple) and len(grade) == 2:
            correct, score = grade
        elif hasattr(grade, "correct") and hasattr(grade, "score"):
            correct, score = grade.correct, grade.score
        else:
            raise ValueError(f"a grade must be a GradeResult-like object, a (correct, score) tuple or None: {grade!r}")
        if correct is None or score is None:
            continue
        score = float(score)
        if not math.isfinite(score):
            raise ValueError(f"non-finite judge score {score!r}")
        if correct:
            n_yes += 1
        else:
            n_no += 1
        score_sum += int(score) if truncate_scores else score
    n_valid = n_yes + n_no
    return VideoQAJudgeResult(
        n=n,
        n_valid=n_valid,
        n_invalid=n - n_valid,
        n_yes=n_yes,
        n_no=n_no,
        accuracy=_ratio(n_yes, n_valid),
        accuracy_invalid_as_wrong=_ratio(n_yes, n),
        mean_score=score_sum / n_valid if n_valid else _NAN,
    )
