"""Benchmark evaluation for UnifiedReward reward models.

Only :mod:`unifiedreward.eval.metrics` (numpy + stdlib) is imported here; heavier evaluation submodules (data
loading, model runners) must be imported explicitly so that ``import unifiedreward.eval`` stays light.
"""

from unifiedreward.eval import metrics
from unifiedreward.eval.metrics import (
    AccuracyResult,
    TauDiffResult,
    TieCalibrationResult,
    TieStats,
    VideoQAJudgeResult,
    VLRewardBenchResult,
    accuracy_without_ties,
    average_ranks,
    genaibench_accuracy,
    majority_vote,
    pearson,
    preference_sign,
    spearman,
    tie_calibrated_accuracy,
    tie_sufficient_stats,
    ur_tau_diff,
    videoqa_judge_summary,
    vlrewardbench_accuracy,
    vlrewardbench_category,
    vlrewardbench_category_upstream_ur,
    vlrewardbench_source,
)

__all__ = [
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
    "metrics",
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
