"""VL-RewardBench: item categories, majority vote over samples, overall / per-category / macro accuracy."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from unifiedreward.eval.metrics.common import NAN as _NAN
from unifiedreward.eval.metrics.common import AccuracyResult
from unifiedreward.eval.metrics.common import check_same_length as _check_same_length

__all__ = [
    "VLREWARDBENCH_CATEGORIES",
    "VLRewardBenchResult",
    "majority_vote",
    "vlrewardbench_accuracy",
    "vlrewardbench_category",
    "vlrewardbench_category_upstream_ur",
    "vlrewardbench_source",
]

T = TypeVar("T", bound=Hashable)


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
