"""Pairwise preference accuracy: GenAI-Bench's official 4-way accuracy and the UnifiedReward paper's tau / diff."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unifiedreward.eval.metrics.common import AccuracyResult
from unifiedreward.eval.metrics.common import check_same_length as _check_same_length
from unifiedreward.eval.metrics.common import plain as _plain

__all__ = [
    "GENAIBENCH_PREDICTIONS",
    "GENAIBENCH_VERDICTS",
    "GENAIBENCH_VOTE_TYPES",
    "TauDiffResult",
    "genaibench_accuracy",
    "preference_sign",
    "ur_tau_diff",
]


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
