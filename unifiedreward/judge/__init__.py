"""Judging: one interface over several backends (transformers in-process, OpenAI-compatible servers, fakes).

Heavy imports (torch, transformers) happen only when a backend is used.
"""

from unifiedreward.judge.base import Backend, Generation, GenerationConfig, Sampler
from unifiedreward.judge.hf_backend import TransformersBackend
from unifiedreward.judge.judge import JudgeRequest, RewardJudge
from unifiedreward.judge.openai_backend import OpenAIBackend

__all__ = ["Backend", "Generation", "GenerationConfig", "JudgeRequest", "OpenAIBackend", "RewardJudge", "Sampler", "TransformersBackend"]
