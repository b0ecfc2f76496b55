"""Judging: one interface over several backends (transformers in-process, OpenAI-compatible servers, fakes)."""

from unifiedreward.judge.base import Backend, Generation, GenerationConfig

__all__ = ["Backend", "Generation", "GenerationConfig"]
