"""Strengths from pairwise comparisons: Bradley–Terry (MM fit) and win rate.

Bradley–Terry model (Bradley & Terry 1952): candidate ``i`` has strength ``p_i > 0`` and beats ``j`` with probability

    P(i > j) = p_i / (p_i + p_j) = sigmoid(theta_i - theta_j),    theta_i = log p_i.

Input is a matrix of (soft) wins: ``wins[i][j]`` = how many times ``i`` beat ``j``; a comparison judged from answer
probabilities contributes ``P(i > j)`` to ``wins[i][j]`` and ``P(j > i)`` to ``wins[j][i]``.

Fit: maximum likelihood by the MM algorithm (Hunter 2004, "MM algorithms for generalized Bradley-Terry models",
Ann. Statist. 32(1), eq. 3 — Zermelo's iteration):

    p_i <- W_i / sum_{j != i} n_ij / (p_i + p_j),    W_i = sum_j w_ij,    n_ij = w_ij + w_ji,

renormalised each step so that ``mean(theta) = 0``. Under perfect separation (one candidate wins every game) the
likelihood has no maximum; ``prior`` adds that many virtual wins to *both* sides of every pair (``w_ij += prior``
for all ``i != j``), which keeps every strength finite and pulls them towards each other. For two candidates the fit
is closed-form: ``p_1 / p_2 = (w_12 + prior) / (w_21 + prior)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _check_square(wins: Sequence[Sequence[float]]) -> int:
    n = len(wins)
    if any(len(row) != n for row in wins):
        raise ValueError("wins must be a square matrix")
    for i in range(n):
        for j in range(n):
            if wins[i][j] < 0 or (i == j and wins[i][j] != 0):
                raise ValueError(f"wins[{i}][{j}] = {wins[i][j]}: need non-negative wins and a zero diagonal")
    return n


def fit_bradley_terry(
    wins: Sequence[Sequence[float]], *, prior: float = 0.1, tol: float = 1e-10, max_iter: int = 100_000
) -> list[float]:
    """Bradley–Terry log-strengths ``theta`` (mean 0) of ``n`` candidates.

    Args:
        wins: ``(n, n)`` matrix, ``wins[i][j]`` = (soft) wins of ``i`` over ``j``; zero diagonal.
        prior: virtual wins added to both sides of every pair (module docstring); ``0`` fits the raw data, which
            needs every candidate to have at least one win and one loss.
        tol: stop when no ``theta`` moves by more than this.
        max_iter: iteration cap.

    Returns:
        ``theta`` of length ``n``; ``P(i beats j) = sigmoid(theta[i] - theta[j])``.

    Raises:
        ValueError: bad matrix, negative prior, or ``prior == 0`` with a candidate that never won or never lost.
    """
    n = _check_square(wins)
    if prior < 0:
        raise ValueError(f"prior must be >= 0, got {prior}")
    if n == 0:
        return []
    if n == 1:
        return [0.0]
    w = [[(wins[i][j] + prior) if i != j else 0.0 for j in range(n)] for i in range(n)]
    won = [sum(row) for row in w]
    lost = [sum(w[j][i] for j in range(n)) for i in range(n)]
    if any(x <= 0 for x in won) or any(x <= 0 for x in lost):
        raise ValueError("Bradley-Terry strengths are undefined when a candidate never wins or never loses; "
                         "use prior > 0")  # fmt: skip
    games = [[w[i][j] + w[j][i] for j in range(n)] for i in range(n)]
    theta = [0.0] * n
    for _ in range(max_iter):
        p = [math.exp(t) for t in theta]
        new = []
        for i in range(n):
            denominator = sum(games[i][j] / (p[i] + p[j]) for j in range(n) if j != i and games[i][j] > 0)
            new.append(math.log(won[i] / denominator))
        mean = sum(new) / n
        new = [t - mean for t in new]
        delta = max(abs(a - b) for a, b in zip(new, theta, strict=True))
        theta = new
        if delta < tol:
            break
    return theta


def win_rates(wins: Sequence[Sequence[float]]) -> list[float]:
    """Fraction of its (soft) games each candidate won: ``sum_j w_ij / sum_j (w_ij + w_ji)``; 0.5 without games."""
    n = _check_square(wins)
    out = []
    for i in range(n):
        won = sum(wins[i][j] for j in range(n))
        played = won + sum(wins[j][i] for j in range(n))
        out.append(won / played if played > 0 else 0.5)
    return out


def sigmoid(x: float) -> float:
    """``1 / (1 + exp(-x))``, stable for large ``|x|``."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)
