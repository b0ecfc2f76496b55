"""Video question answering (MSRVTT-QA, MSVD-QA, TGIF-QA): answer with a policy VLM, grade with an LLM judge.

This re-creates UnifiedReward's ``benchmark_evaluation/DPO_eval`` (protocol §6.7, §2.4), used to compare a policy
before and after DPO: ``--stage answer`` asks the policy each question about its video, ``--stage grade`` has an
OpenAI-compatible judge grade the answers (``T-GPT-JUDGE-SYSTEM`` / ``T-GPT-JUDGE-USER``), and the report gives
Accuracy = yes / (yes + no) and the mean score beside the paper's DPO table. Both stages resume by id; failed items
are recorded, counted and tried again. Details: ``docs/evaluation.md``.

Modules: :mod:`~unifiedreward.eval.videoqa.data` (the three upstream file layouts),
:mod:`~unifiedreward.eval.videoqa.arguments` (the flags), :mod:`~unifiedreward.eval.videoqa.run` (prompts, answering,
grading, the CLI) and :mod:`~unifiedreward.eval.videoqa.report`. ``python -m unifiedreward.eval.videoqa [flags]``.
"""

from unifiedreward.eval.videoqa.arguments import VideoQAArguments
from unifiedreward.eval.videoqa.data import DATASETS, QAItem, load_qa_items
from unifiedreward.eval.videoqa.run import answer_prompt, grade_prompt, main, run_videoqa

__all__ = [
    "DATASETS",
    "QAItem",
    "VideoQAArguments",
    "answer_prompt",
    "grade_prompt",
    "load_qa_items",
    "main",
    "run_videoqa",
]
