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
    """Decoding settings shared by all backends. Every field is sent explicitly, so a checkpoint's own
    ``generation_config.json`` (or a server's defaults taken from it) never changes how we decode.

    Attributes:
        max_new_tokens: hard cap on answer length (CoT answers need ~1-2k; plain verdicts a few dozen).
        temperature: 0 means greedy decoding (the default: judging must be deterministic); ``> 0`` samples from
            ``softmax(logits / temperature)`` restricted by ``top_k`` and ``top_p``.
        top_p: nucleus sampling mass (keep the smallest set of most likely tokens whose probability reaches
            ``top_p``), used only when sampling. ``1.0`` keeps everything.
        top_k: keep only the ``top_k`` most likely tokens when sampling; ``0`` disables the filter.
        repetition_penalty: CTRL-style penalty on already generated / prompt tokens (``1.0`` = none); applied in
            greedy decoding too. Upstream's HF scripts inherited the checkpoint's value (Qwen2.5-VL ships 1.05);
            set it here to reproduce that.
        seed: default sampling seed of every request (``None``: fresh entropy per request, recorded in
            ``Generation.meta["seed"]``). Backends also take per-request ``seeds``.
        n: samples per prompt (``sample`` returns ``n`` generations per prompt; ``generate`` needs ``n == 1``).
    """

    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    top_k: int = 0
    repetition_penalty: float = 1.0
    n: int = 1

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 disables it), got {self.top_k}")
        if not self.repetition_penalty > 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")

    @property
    def do_sample(self) -> bool:
        """Whether decoding samples (``temperature > 0``) rather than taking the argmax."""
        return self.temperature > 0


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


@runtime_checkable
class Sampler(Protocol):
    """A backend that draws ``n`` seeded samples per prompt (both in-process and OpenAI backends implement it).

    ``sample(prompts, config, seeds=seeds)[i][j]`` is sample ``j`` (``0 <= j < config.n``) of ``prompts[i]``
    under ``seeds[i]`` (``config.seed`` when ``seeds`` is ``None``). The in-process backend guarantees that a
    sample's tokens depend only on its prompt, its seed, ``j`` and the decoding settings; a server may only honour
    the seed on a best-effort basis.
    """

    def sample(
        self, prompts: Sequence[ChatPrompt], config: GenerationConfig, *, seeds: Sequence[int] | None = None
    ) -> list[list[Generation]]:
        """``config.n`` generations per prompt, in the order of ``prompts``; failures reported, not raised."""
        ...
