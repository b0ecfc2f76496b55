"""Evaluation metrics of the reward benchmarks UnifiedReward reports on, with their exact official definitions.

Every function states its definition (formula, tie handling, what happens to unparsed predictions) and the source it
follows; the conventions shared by all of them (canonical pair order, ``None`` = unparsed and never a tie, fractions at
full precision, ``nan`` for an empty denominator) and the metric sets per benchmark are in ``docs/evaluation.md``
(section 5). Nothing here is copied from upstream code. Only numpy and the standard library are imported.

Modules: :mod:`~unifiedreward.eval.metrics.pairwise` (GenAI-Bench 4-way, UnifiedReward tau / diff),
:mod:`~unifiedreward.eval.metrics.ties` (tie-calibrated accuracy, accuracy without ties),
:mod:`~unifiedreward.eval.metrics.vl_rewardbench`, :mod:`~unifiedreward.eval.metrics.correlation` (ranks, Pearson,
Spearman) and :mod:`~unifiedreward.eval.metrics.videoqa` (GPT-judge summary); every public name is re-exported here.
"""

from unifiedreward.eval.metrics.common import AccuracyResult
from unifiedreward.eval.metrics.correlation import average_ranks, pearson, spearman
from unifiedreward.eval.metrics.pairwise import (
    GENAIBENCH_PREDICTIONS,
    GENAIBENCH_VERDICTS,
    GENAIBENCH_VOTE_TYPES,
    TauDiffResult,
    genaibench_accuracy,
    preference_sign,
    ur_tau_diff,
)
from unifiedreward.eval.metrics.ties import (
    TieCalibrationResult,
    TieStats,
    accuracy_without_ties,
    tie_calibrated_accuracy,
    tie_sufficient_stats,
)
from unifiedreward.eval.metrics.videoqa import VideoQAJudgeResult, videoqa_judge_summary
from unifiedreward.eval.metrics.vl_rewardbench import (
    VLREWARDBENCH_CATEGORIES,
    VLRewardBenchResult,
    majority_vote,
    vlrewardbench_accuracy,
    vlrewardbench_category,
    vlrewardbench_category_upstream_ur,
    vlrewardbench_source,
)

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
