"""The interface every judging backend implements.

A backend turns rendered prompts (:class:`unifiedreward.chat.ChatPrompt`) into answer texts. It knows nothing about
templates or parsing: :mod:`unifiedreward.protocol` renders and parses, the judge in between batches requests and
combines results. Backends: in-process transformers, an OpenAI-compatible server (vLLM / SGLang), and a scripted
fake for tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from unifiedreward.chat import ChatPrompt


@dataclass(frozen=True)
class GenerationConfig:
    """Decoding settings shared by all backends.

    Attributes:
        max_new_tokens: hard cap on answer length (CoT answers need ~1-2k; plain verdicts a few dozen).
        temperature: 0 means greedy decoding (the default: judging must be deterministic).
        top_p: nucleus sampling mass, used only when ``temperature > 0``.
        seed: sampling seed, where the backend supports one.
    """

    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None


@dataclass(frozen=True)
class Generation:
    """One backend answer: ``text`` on success, else ``error`` says what went wrong (never a default answer).

    Attributes:
        text: the generated answer, or ``None`` when the request failed.
        error: a human-readable failure description (HTTP status, timeout, malformed response, ...).
        num_prompt_tokens: prompt length in tokens, when the backend reports it.
        num_generated_tokens: answer length in tokens, when the backend reports it.
        meta: backend-specific extras (request id, finish reason, ...).
    """

    text: str | None
    error: str | None = None
    num_prompt_tokens: int | None = None
    num_generated_tokens: int | None = None
    meta: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.text is not None and self.error is None


@runtime_checkable
class Backend(Protocol):
    """Anything that answers chat prompts. Results are returned in the order of ``prompts``."""

    def generate(self, prompts: Sequence[ChatPrompt], config: GenerationConfig) -> list[Generation]:
        """Answer each prompt. A failure of one prompt is reported in its :class:`Generation`, not raised."""
        ...
