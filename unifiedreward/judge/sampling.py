"""Seeded, batch-invariant sampling for the in-process backend.

``transformers``' own sampling draws every row of a batch from the one global torch generator, so a sample depends
on which other prompts share its batch, on its row, and on everything that used the global RNG before; seeding it
(``torch.manual_seed``) before each batch makes copies of a prompt in different batches identical and changes the
caller's random state. Here instead:

* each output row ``(prompt i, sample j)`` owns a ``torch.Generator`` seeded with :func:`row_seed` ``(seeds[i], j)``;
* :class:`SeededSamplingProcessor`, a ``LogitsProcessor``, turns the row's next-token scores into
  ``softmax(scores / temperature)`` restricted to the ``top_k`` most likely tokens and to the ``top_p`` nucleus,
  draws one token from that distribution with the row's generator (exponential race: ``argmax_v p_v / E_v`` with
  ``E_v ~ Exp(1)``, which picks ``v`` with probability ``p_v``), and returns a score that is ``0`` at the drawn
  token and ``-inf`` elsewhere;
* ``generate`` runs in greedy mode, so its argmax takes exactly that token.

A row consumes its generator once per step whatever the other rows do, so its tokens depend only on its prompt, its
seed, ``j`` and the decoding settings (up to float differences of the batched forward, which the existing
batched-vs-single tests pin to zero on CPU). The global RNG is never touched.

:func:`explicit_generate_kwargs` lists every decoding argument passed to ``generate`` so that the checkpoint's
``generation_config.json`` (e.g. Qwen2.5-VL's ``top_k=1``, ``repetition_penalty=1.05``) cannot leak in:
``transformers`` fills every argument left unset from it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch
from transformers import LogitsProcessor

from unifiedreward.judge.base import GenerationConfig

__all__ = ["SeededSamplingProcessor", "explicit_generate_kwargs", "fresh_seed", "row_seed"]


def row_seed(seed: int, index: int) -> int:
    """The generator seed of sample ``index`` of a request seeded with ``seed`` (a stable 63-bit mix of both)."""
    return random.Random(f"unifiedreward-sample:{int(seed)}:{int(index)}").getrandbits(63)


def fresh_seed() -> int:
    """A seed from OS entropy (for requests without one; the global RNGs are left alone)."""
    return random.SystemRandom().getrandbits(63)


def explicit_generate_kwargs(config: GenerationConfig, pad_token_id: int | None) -> dict[str, Any]:
    """Keyword arguments of ``model.generate`` that fix every decoding setting.

    Greedy search is always used (sampling happens in :class:`SeededSamplingProcessor`), so the checkpoint's
    ``temperature`` / ``top_k`` / ``top_p`` are inert; the processors that also act in greedy search are set to
    their neutral values unless ``config`` asks otherwise.
    """
    return {
        "max_new_tokens": int(config.max_new_tokens),
        "min_new_tokens": 0,
        "do_sample": False,
        "num_beams": 1,
        "num_return_sequences": 1,
        # transformers' neutral values: inert in greedy search, set so the checkpoint's (e.g. top_k=1) are not
        # filled in, which would only trigger "flags are not valid" warnings
        "temperature": 1.0,
        "top_k": 50,
        "top_p": 1.0,
        "repetition_penalty": float(config.repetition_penalty),
        "no_repeat_ngram_size": 0,
        "pad_token_id": pad_token_id,
    }


class SeededSamplingProcessor(LogitsProcessor):
    """Sample each row with its own generator; return one-hot scores for greedy search to follow.

    Args:
        seeds: one generator seed per batch row (see :func:`row_seed`).
        temperature: ``> 0``.
        top_k: keep the ``top_k`` highest scores (``0``: all).
        top_p: keep the smallest set of most likely tokens whose probability reaches ``top_p`` (``1.0``: all).
        device: where the scores live (the generators must be on the same device).
    """

    def __init__(
        self, seeds: Sequence[int], *, temperature: float, top_k: int = 0, top_p: float = 1.0, device: Any = "cpu"
    ):
        if not temperature > 0:
            raise ValueError(f"sampling needs temperature > 0, got {temperature}")
        self.temperature = float(temperature)
        self.top_k = int(top_k)
        self.top_p = float(top_p)
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    def filtered_logits(self, scores: torch.Tensor) -> torch.Tensor:
        """``(B, V)`` float32 logits after temperature, top-k and top-p (removed tokens at ``-inf``)."""
        logits = scores.float() / self.temperature
        if 0 < self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[:, -1:]  # (B, 1)
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
            cumulative = sorted_logits.softmax(-1).cumsum(-1)
            # drop a token when the tokens before it already reach top_p (the most likely token always stays)
            remove_sorted = (cumulative - sorted_logits.softmax(-1)) >= self.top_p
            remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
            logits = logits.masked_fill(remove, float("-inf"))
        return logits

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Draw one token per row.

        Args:
            input_ids: ``(B, L)`` tokens so far (unused).
            scores: ``(B, V)`` next-token scores.

        Returns:
            ``(B, V)`` float: 0 at each row's drawn token, ``-inf`` elsewhere.
        """
        if scores.shape[0] != len(self.generators):
            raise ValueError(f"{scores.shape[0]} rows but {len(self.generators)} sampling generators")
        probs = self.filtered_logits(scores).softmax(-1)  # (B, V)
        noise = torch.empty_like(probs)
        for row, generator in enumerate(self.generators):
            noise[row].exponential_(generator=generator)  # E_v ~ Exp(1), one draw per vocabulary entry and step
        noise.clamp_(min=torch.finfo(noise.dtype).tiny)  # an exact 0 would make 0 / 0
        tokens = (probs / noise).argmax(-1)  # (B,): exponential race, P(token = v) = p_v
        out = torch.full_like(scores, float("-inf"))
        return out.scatter(-1, tokens[:, None], 0.0)
