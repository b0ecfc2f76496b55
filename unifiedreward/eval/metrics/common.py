"""Shared pieces of the metric modules: :class:`AccuracyResult` and small validation helpers.

See ``docs/evaluation.md`` (section "What the metrics mean") for the conventions every metric follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["AccuracyResult"]

NAN = float("nan")


def ratio(num: int, den: int) -> float:
    """``num / den``, or ``nan`` when ``den`` is 0."""
    return num / den if den else NAN


def check_same_length(a: Sequence[Any], b: Sequence[Any], names: str) -> None:
    """Raise ``ValueError`` naming ``names`` when ``a`` and ``b`` differ in length."""
    if len(a) != len(b):
        raise ValueError(f"{names} must have the same length, got {len(a)} and {len(b)}")


def plain(label: Any) -> Any:
    """An Enum member (e.g. ``unifiedreward.protocol.Verdict.FIRST``) becomes its value; anything else is unchanged."""
    return getattr(label, "value", label)


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
        return cls(n, n_correct, n_invalid, denominator, ratio(n_correct, denominator))

    @property
    def percent(self) -> float:
        """``100 * accuracy``, full precision."""
        return 100.0 * self.accuracy

    def rounded_percent(self, ndigits: int = 2) -> float:
        """``round(100 * n_correct / denominator, ndigits)``: the number leaderboards print (GenAI-Bench: 2 digits)."""
        return round(self.percent, ndigits)
