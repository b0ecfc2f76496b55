"""Video QA (MSRVTT / MSVD / TGIF-QA): aggregation of the GPT judge's yes/no + score grades."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from unifiedreward.eval.metrics.common import NAN as _NAN
from unifiedreward.eval.metrics.common import ratio as _ratio

__all__ = ["VideoQAJudgeResult", "videoqa_judge_summary"]


@dataclass(frozen=True)
class VideoQAJudgeResult:
    """Aggregated GPT-judge grades for MSRVTT-QA / MSVD-QA / TGIF-QA.

    Attributes:
        n: all items.
        n_valid: items with a parsed yes/no and a parsed score (= n_yes + n_no).
        n_invalid: items whose grade could not be parsed (n - n_valid).
        n_yes: valid items judged "yes".
        n_no: valid items judged "no".
        accuracy: n_yes / n_valid = yes / (yes + no), the upstream "Accuracy" (``nan`` if n_valid == 0).
        accuracy_invalid_as_wrong: n_yes / n, a conservative figure counting unparsed grades as "no"
            (``nan`` if n == 0).
        mean_score: mean judge score (0-5) over the valid items, the upstream "Average score" (``nan`` if none).
    """

    n: int
    n_valid: int
    n_invalid: int
    n_yes: int
    n_no: int
    accuracy: float
    accuracy_invalid_as_wrong: float
    mean_score: float


def videoqa_judge_summary(grades: Sequence[Any], *, truncate_scores: bool = False) -> VideoQAJudgeResult:
    """Aggregate the Video-ChatGPT-style GPT judge's per-item ``{'pred': yes|no, 'score': 0-5}`` grades.

    Definition (UR ``benchmark_evaluation/DPO_eval/eval_gpt.py``; protocol §2.4 and §6.7):

    * Accuracy = yes / (yes + no) and Average score = sum(score) / count, both **over the items whose grade was
      parsed** (``n_valid``). Upstream silently drops unparsed grades; here they are counted in ``n_invalid`` and
      ``accuracy_invalid_as_wrong = n_yes / n`` is reported next to the upstream number, so the denominator is
      always explicit.
    * An item is valid iff both the yes/no decision and the score were parsed (upstream also averages the score
      of a parsed dict whose ``pred`` is neither yes nor no; such an item is invalid here).
    * Scores are kept as floats by default; ``truncate_scores=True`` applies upstream's ``int(score)`` (4.8 -> 4)
      for comparability.

    Args:
        grades: per item, either an object with ``correct`` (bool or None) and ``score`` (float or None)
            attributes, such as ``unifiedreward.protocol.GradeResult`` from ``parse_gpt_grade``; or a
            ``(correct, score)`` tuple; or ``None`` for an item with no usable grade.
        truncate_scores: apply ``int()`` to each score, as upstream does.

    Raises:
        ValueError: an item of another type, or a parsed score that is not finite.
    """
    n = len(grades)
    n_yes = n_no = 0
    score_sum = 0.0
    for grade in grades:
        if grade is None:
            continue
        if isinstance(grade, tuple) and len(grade) == 2:
            correct, score = grade
        elif hasattr(grade, "correct") and hasattr(grade, "score"):
            correct, score = grade.correct, grade.score
        else:
            raise ValueError(f"a grade must be a GradeResult-like object, a (correct, score) tuple or None: {grade!r}")
        if correct is None or score is None:
            continue
        score = float(score)
        if not math.isfinite(score):
            raise ValueError(f"non-finite judge score {score!r}")
        if correct:
            n_yes += 1
        else:
            n_no += 1
        score_sum += int(score) if truncate_scores else score
    n_valid = n_yes + n_no
    return VideoQAJudgeResult(
        n=n,
        n_valid=n_valid,
        n_invalid=n - n_valid,
        n_yes=n_yes,
        n_no=n_no,
        accuracy=_ratio(n_yes, n_valid),
        accuracy_invalid_as_wrong=_ratio(n_yes, n),
        mean_score=score_sum / n_valid if n_valid else _NAN,
    )
