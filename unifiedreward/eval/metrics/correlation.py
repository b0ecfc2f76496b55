"""Correlation of pointwise scores with ground truth: average ranks, Pearson, Spearman."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from unifiedreward.eval.metrics.common import NAN as _NAN

__all__ = ["average_ranks", "pearson", "spearman"]


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
