"""Decisions every rank must take together (stop for bad data, stop for time), by all-reduce over the ranks.

A rank that stops alone leaves the others waiting in the next collective (a hang, not an error), so a stop is
decided from values reduced over all ranks, and every rank reaches the same decision at the same step. Without an
initialised :mod:`torch.distributed` process group (one process) the reductions are the identity.

Import-light: only torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

__all__ = ["COUNT_KEYS", "agree_on_bad_fraction", "all_reduce", "any_rank"]

#: Order of the dropped-sample counts in the reduced vector (then the per-rank ``min_samples``).
COUNT_KEYS = ("tried", "ok", "dropped", "media", "over-length", "invalid")

Reducer = Callable[[Sequence[int], str], list[int]]


def all_reduce(values: Sequence[int], op: str = "sum", *, device: Any = None) -> list[int]:
    """Reduce integers over all ranks (``op``: ``"sum"`` or ``"max"``); the identity without a process group.

    Args:
        values: this rank's integers.
        op: the reduction.
        device: where the tensor lives for the collective (NCCL needs the rank's CUDA device; gloo the CPU).
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [int(v) for v in values]
    tensor = torch.tensor(list(values), dtype=torch.int64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return [int(v) for v in tensor.tolist()]


def any_rank(flag: bool, *, device: Any = None, reduce: Reducer | None = None) -> bool:
    """Whether ``flag`` is true on at least one rank (the same answer on every rank)."""
    if reduce is None:
        return bool(all_reduce([int(flag)], "max", device=device)[0])
    return bool(reduce([int(flag)], "max")[0])


def agree_on_bad_fraction(
    dataset: Any, *, final: bool = False, device: Any = None, reduce: Reducer | None = None
) -> str | None:
    """Judge the dropped-sample limit on the counts of all ranks; the same verdict and message on every rank.

    The counts of :meth:`~unifiedreward.data.sft.SupervisedDataset.counts` and each rank's ``min_samples`` are
    summed over the ranks; the limit is exceeded when ``sum(dropped) / sum(tried) > max_bad_fraction`` with
    ``sum(tried) >= sum(min_samples)`` (any number when ``final``).

    Args:
        dataset: a :class:`~unifiedreward.data.sft.SupervisedDataset` (``counts``, ``min_samples``,
            ``max_bad_fraction``, ``bad_fraction_exceeded``).
        final: the check at the end of training.
        device: the collective's device (see :func:`all_reduce`).
        reduce: replaces :func:`all_reduce` (tests): ``reduce(values, op) -> values``.

    Returns:
        The :class:`~unifiedreward.data.sft.BadDataError` message, or ``None`` when within the limit.
    """
    from unifiedreward.data.sft import bad_fraction_message

    counts = dataset.counts()
    local = [counts[key] for key in COUNT_KEYS] + [int(dataset.min_samples)]
    summed = reduce(local, "sum") if reduce is not None else all_reduce(local, "sum", device=device)
    total = dict(zip(COUNT_KEYS, summed[:-1], strict=True))
    if not dataset.bad_fraction_exceeded(total, min_samples=summed[-1], final=final):
        return None
    return bad_fraction_message(total, dataset.max_bad_fraction) + " (counts summed over all ranks)"
