"""Tie-aware pairwise accuracy over margins: "Ties Matter" (Deutsch et al. 2023) and VideoAlign's variant."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from unifiedreward.eval.metrics.common import NAN as _NAN
from unifiedreward.eval.metrics.common import AccuracyResult
from unifiedreward.eval.metrics.common import check_same_length as _check_same_length
from unifiedreward.eval.metrics.common import ratio as _ratio

__all__ = [
    "TieCalibrationResult",
    "TieStats",
    "accuracy_without_ties",
    "tie_calibrated_accuracy",
    "tie_sufficient_stats",
]


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
