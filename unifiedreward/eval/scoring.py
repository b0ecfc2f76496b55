"""Metric sets: prediction records -> the metrics of one benchmark (computed by :mod:`unifiedreward.eval.metrics`).

Each benchmark names its metric set (:attr:`~unifiedreward.eval.types.Benchmark.metric_set`); :data:`METRIC_SETS`
maps it to a function returning ``(metrics, headline)``, and :data:`METRIC_DEFINITIONS` holds the definitions written
into ``results.json``. Nothing here reimplements a metric.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from unifiedreward.eval.types import MEDIA_ERROR, Benchmark
from unifiedreward.judge.summary import reason_group

__all__ = ["METRIC_DEFINITIONS", "METRIC_SETS", "compute_metrics", "margin_metrics"]


def _acc(result: Any) -> dict[str, Any]:
    """An :class:`~unifiedreward.eval.metrics.AccuracyResult` as JSON (fraction, percent rounded to 2, counts)."""
    return {
        "accuracy": result.accuracy,
        "percent": None if math.isnan(result.accuracy) else round(result.percent, 2),
        "n": result.n,
        "n_correct": result.n_correct,
        "n_invalid": result.n_invalid,
        "denominator": result.denominator,
    }


def margin_metrics(gold_signs: Sequence[int], margins: Sequence[float | None]) -> dict[str, dict[str, Any]]:
    """Tie-calibrated accuracy (Ties Matter and VideoAlign modes) and accuracy without ties over margins.

    Items without a margin (unparsed) are counted **wrong** in every denominator: the calibration runs on the
    others (an unparsed item is wrong at every threshold, so the best threshold is the same), and its correct count
    is divided by all items.
    """
    from unifiedreward.eval.metrics import AccuracyResult, accuracy_without_ties, tie_calibrated_accuracy

    pairs = [(h, m) for h, m in zip(gold_signs, margins, strict=True) if m is not None]
    h, m = [p[0] for p in pairs], [p[1] for p in pairs]
    n, n_invalid = len(gold_signs), len(gold_signs) - len(pairs)
    out: dict[str, dict[str, Any]] = {}
    for name, mode in (("with_ties", "ties_matter"), ("with_ties_videoalign", "videoalign")):
        calibrated = tie_calibrated_accuracy(h, m, mode=mode)
        correct = calibrated.stats.concordant + calibrated.stats.ties_both
        entry = _acc(AccuracyResult.from_counts(n, correct, n_invalid, n))
        entry.update(epsilon=calibrated.epsilon, mode=mode)
        out[name] = entry
    nontie = sum(1 for g in gold_signs if g != 0)
    invalid_nontie = sum(1 for g, mm in zip(gold_signs, margins, strict=True) if g != 0 and mm is None)
    without = accuracy_without_ties(h, m)
    out["without_ties"] = _acc(AccuracyResult.from_counts(nontie, without.n_correct, invalid_nontie, nontie))
    return out


_GENAI_PREDICTION = {"first": "left", "second": "right", "tie": "tie"}

METRIC_DEFINITIONS: dict[str, dict[str, str]] = {
    "genai_bench": {
        "official_4way": "GenAI-Bench official accuracy (TIGER-AI-Lab/GenAI-Bench inference.py/show_results.py): "
        "correct iff leftvote<->first, rightvote<->second, tievote or bothbad_vote<->tie; over ALL items, unparsed "
        "= wrong. UnifiedReward prompts offer one tie verdict ('equally good'), mapped to the official [[A=B]], "
        "which the official rule accepts for both tie kinds (metrics.genaibench_accuracy).",
        "tau": "UnifiedReward paper 'tau': 3-way accuracy over all pairs, tievote and bothbad_vote both 'tie'; "
        "unparsed = wrong, never a tie (metrics.ur_tau_diff).",
        "diff": "UnifiedReward paper 'diff': accuracy over the pairs whose gold is not a tie; a tie prediction is "
        "wrong; unparsed = wrong (metrics.ur_tau_diff).",
        "with_ties": "--scoring probabilities only: tie-calibrated pairwise accuracy ('Ties Matter', Deutsch et al. "
        "2023; margins P(first)-P(second); best threshold over {0} and every |margin|; unparsed = wrong) "
        "(metrics.tie_calibrated_accuracy, mode ties_matter).",
        "with_ties_videoalign": "--scoring probabilities only: the same with VideoAlign calc_accuracy.py's "
        "search (metrics.tie_calibrated_accuracy, mode videoalign).",
        "without_ties": "--scoring probabilities only: C/(C+D) over non-tie gold pairs from the margins, margin 0 "
        "= wrong, unparsed = wrong (metrics.accuracy_without_ties).",
    },
    "videogen_rewardbench": {
        "with_ties": "VideoGen-RewardBench 'w/ Ties' on the Overall label: tie-calibrated accuracy over margins m "
        "(P(first)-P(second) with --scoring probabilities, else +1/0/-1 from the verdict), Ties Matter algorithm "
        "(threshold 0 state included, equal |m| grouped); unparsed = wrong (metrics.tie_calibrated_accuracy).",
        "with_ties_videoalign": "The same computed like KwaiVGI/VideoAlign calc_accuracy.py (what the leaderboard "
        "reports; no 'no new ties' state, splits equal |m|) (metrics.tie_calibrated_accuracy, mode videoalign).",
        "without_ties": "VideoGen-RewardBench 'w/o Ties' on Overall: C/(C+D) over non-tie gold pairs, margin 0 (a "
        "tie verdict) = wrong, unparsed = wrong (metrics.accuracy_without_ties).",
        "tau": "UnifiedReward paper 'tau': 3-way accuracy (A/B/same) over all pairs; unparsed = wrong, never a tie "
        "(metrics.ur_tau_diff).",
        "diff": "UnifiedReward paper 'diff': accuracy over non-tie gold pairs; unparsed = wrong (metrics.ur_tau_diff).",
        "per_dimension": "VQ/MQ/TA: the same one overall judgment scored against each dimension's human label "
        "(the leaderboard scores a per-dimension reward instead).",
    },
    "vl_rewardbench": {
        "overall": "VL-RewardBench official (cal.py): sum agree / sum (agree + reject) over all items; unparsed "
        "(and --order both disagreements) are EXCLUDED from the denominator and reported as n_invalid "
        "(metrics.vlrewardbench_accuracy, unparsed='exclude').",
        "general/hallucination/reasoning": "Official categories from the item id (General = VLFeedback + "
        "WildVision 183, Hallucination = POVID + RLAIF-V + RLHF-V 749, Reasoning = MathVerse + MMMU 318), same "
        "rule per category (metrics.vlrewardbench_category).",
        "macro": "Unweighted mean of the three official category accuracies.",
        "ur_*": "UnifiedReward scripts' variant: unparsed counted wrong and the pre-fix category map that puts the "
        "448 POVID items under General (metrics.vlrewardbench_category_upstream_ur, unparsed='wrong'); only for "
        "comparison with UR's own table.",
    },
}


def _metrics_genai_bench(records: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, float | None]]:
    from unifiedreward.eval.metrics import genaibench_accuracy, preference_sign, ur_tau_diff

    gold = [r["gold"] for r in records]
    verdicts = [r.get("verdict") for r in records]
    official = genaibench_accuracy(gold, [None if v is None else _GENAI_PREDICTION[v] for v in verdicts])
    taudiff = ur_tau_diff(gold, verdicts)
    metrics: dict[str, Any] = {"official_4way": _acc(official), "tau": _acc(taudiff.tau), "diff": _acc(taudiff.diff)}
    if any(r.get("probabilities") for r in records):
        metrics.update(margin_metrics([preference_sign(g) for g in gold], [r.get("margin") for r in records]))
    headline = {key: metrics[key]["percent"] for key in metrics}
    return metrics, headline


def _metrics_videogen(records: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, float | None]]:
    from unifiedreward.eval.metrics import preference_sign, ur_tau_diff

    gold = [r["gold"] for r in records]
    margins = [r.get("margin") for r in records]
    metrics: dict[str, Any] = margin_metrics([preference_sign(g) for g in gold], margins)
    taudiff = ur_tau_diff(gold, [r.get("verdict") for r in records])
    metrics.update(tau=_acc(taudiff.tau), diff=_acc(taudiff.diff))
    per_dimension: dict[str, Any] = {}
    for dim in ("VQ", "MQ", "TA"):
        labels = [(r.get("labels") or {}).get(dim) for r in records]
        if records and all(label in ("A", "B", "same") for label in labels):
            per_dimension[dim] = margin_metrics([preference_sign(x) for x in labels], margins)
    if per_dimension:
        metrics["per_dimension"] = per_dimension
    headline = {key: metrics[key]["percent"] for key in ("with_ties", "with_ties_videoalign", "without_ties", "tau",
                                                          "diff")}  # fmt: skip
    for dim, values in per_dimension.items():
        headline[f"{dim}_with_ties"] = values["with_ties"]["percent"]
        headline[f"{dim}_without_ties"] = values["without_ties"]["percent"]
    return metrics, headline


def _metrics_vl_rewardbench(records: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, float | None]]:
    from unifiedreward.eval.metrics import vlrewardbench_accuracy, vlrewardbench_category_upstream_ur

    ids = [str(r["id"]) for r in records]
    outcomes = [None if r.get("verdict") in (None, "tie") else r["verdict"] == r["gold_pref"] for r in records]
    metrics: dict[str, Any] = {}
    headline: dict[str, float | None] = {}
    variants = (("", {}), ("ur_", {"category_fn": vlrewardbench_category_upstream_ur, "unparsed": "wrong"}))
    for prefix, options in variants:
        result = vlrewardbench_accuracy(ids, outcomes, **options)
        block = {"overall": _acc(result.overall), "macro": result.macro,
                 "macro_percent": None if math.isnan(result.macro) else round(100 * result.macro, 2)}  # fmt: skip
        block.update({c: _acc(v) for c, v in result.per_category.items()})
        metrics["official" if not prefix else "ur_scripts"] = block
        for category, value in result.per_category.items():
            headline[prefix + category] = _acc(value)["percent"]
        headline[prefix + "overall"] = block["overall"]["percent"]
        headline[prefix + "macro"] = block["macro_percent"]
    return metrics, headline


METRIC_SETS: dict[str, Callable[[Sequence[Mapping[str, Any]]], tuple[dict[str, Any], dict[str, float | None]]]] = {
    "genai_bench": _metrics_genai_bench,
    "videogen_rewardbench": _metrics_videogen,
    "vl_rewardbench": _metrics_vl_rewardbench,
}


def compute_metrics(bench: Benchmark, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Metrics and counts from prediction records (media errors left out of the metrics, counted).

    Returns:
        ``{"metrics": ..., "headline": {key: percent}, "counts": ...}``.
    """
    scored = [r for r in records if r.get("status") != MEDIA_ERROR]
    metrics, headline = METRIC_SETS[bench.metric_set](scored)
    statuses = Counter(str(r.get("status")) for r in records)
    reasons: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for record in records:
        if record.get("status") != "valid":
            reason = str(record.get("reason") or "(no reason)")
            reasons[reason_group(reason)] += 1
            examples.setdefault(reason_group(reason), reason[:300])
    counts = {
        "items": len(records),
        "scored": len(scored),
        "valid": statuses.get("valid", 0),
        "invalid": statuses.get("invalid", 0),
        "inconsistent": statuses.get("inconsistent", 0),
        "media_errors": statuses.get(MEDIA_ERROR, 0),
        "swapped": sum(1 for r in records if r.get("swapped")),
        "verdicts": dict(Counter(str(r.get("verdict")) for r in scored)),
        "gold": dict(Counter(str(r.get("gold")) for r in scored)),
        "not_valid_reasons": [{"reason": k, "count": c, "example": examples[k]} for k, c in reasons.most_common(10)],
    }
    return {"metrics": metrics, "headline": headline, "counts": counts}
