"""Text embeddings computed once, cached on disk, and the text encoder released before training.

Wan 2.1's UMT5-XXL encoder has 5.7B parameters (≈ 11 GB in bf16): more than the 1.3B transformer it conditions.
Keeping it on the GPU during training would waste that memory for a result that never changes, so
:class:`TextEmbeddingCache` encodes every caption of the data set (and ``""`` for caption dropout) once, writes one
``.pt`` file per caption under ``<cache_dir>/<key>.pt`` (``key = sha1(model | max_length | caption)``), and the
training loop only reads those files. A second epoch, a resumed run or another run on the same data set encodes
nothing (:attr:`TextEmbeddingCache.hits` / :attr:`~TextEmbeddingCache.misses` count it). The encoder is loaded on
first need, on ``device``, and dropped by :meth:`TextEmbeddingCache.release`.

Embeddings are what the pipeline itself feeds its denoiser (``pipeline.encode_prompt``): Wan: UMT5 last hidden
states ``[L, 4096]`` with the positions after the caption zeroed, ``L = max_sequence_length`` (512 upstream);
AnimateDiff: CLIP last hidden states ``[77, 768]``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

__all__ = ["TextEmbeddingCache"]


class TextEmbeddingCache:
    """Disk cache of per-caption text embeddings of one pipeline.

    Args:
        model: the pipeline (path or hub id) whose ``tokenizer`` / ``text_encoder`` encode the captions.
        cache_dir: where the ``.pt`` files go.
        family: ``"wan"`` or ``"animatediff"``.
        max_sequence_length: Wan's text length (tokens); ignored for AnimateDiff (the tokenizer's own length).
        device: where the encoder runs while encoding.
        dtype: dtype of the encoder and of the stored embeddings.
        batch_size: captions per encoder call.
    """

    def __init__(self, model: str, cache_dir: str | Path, *, family: str, max_sequence_length: int = 512,
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 batch_size: int = 16) -> None:  # fmt: skip
        self.model, self.family = model, family
        self.cache_dir = Path(cache_dir)
        self.max_sequence_length = max_sequence_length
        self.device, self.dtype, self.batch_size = torch.device(device), dtype, batch_size
        self.hits = 0
        self.misses = 0
        self._pipe: Any = None
        self._memory: dict[str, torch.Tensor] = {}

    def key(self, caption: str) -> str:
        """The file stem of ``caption``'s embedding."""
        text = f"{self.model}|{self.family}|{self.max_sequence_length}|{caption}"
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def path(self, caption: str) -> Path:
        """The ``.pt`` file of ``caption``."""
        return self.cache_dir / f"{self.key(caption)}.pt"

    def _encoder(self) -> Any:
        if self._pipe is None:
            from diffusers import DiffusionPipeline

            logger.info("loading the text encoder of %s on %s", self.model, self.device)
            components = {"vae": None, "scheduler": None, "transformer": None, "unet": None, "motion_adapter": None}
            config = DiffusionPipeline.load_config(self.model)
            pipe = DiffusionPipeline.from_pretrained(
                self.model, dtype=self.dtype, **{k: v for k, v in components.items() if k in config}
            )
            self._pipe = pipe.to(self.device)
        return self._pipe

    @torch.no_grad()
    def _encode(self, captions: Sequence[str]) -> torch.Tensor:
        pipe = self._encoder()
        if self.family == "wan":
            embeds, _ = pipe.encode_prompt(list(captions), do_classifier_free_guidance=False,
                                           max_sequence_length=self.max_sequence_length, device=self.device)  # fmt: skip
        else:
            embeds, _ = pipe.encode_prompt(list(captions), self.device, 1, False)
        return embeds.to(self.dtype).cpu()

    def precompute(self, captions: Iterable[str]) -> int:
        """Encode and store every caption without a file yet; returns how many were encoded."""
        todo = sorted({c for c in captions if not self.path(c).exists()})
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            for caption, embed in zip(chunk, self._encode(chunk), strict=True):
                tmp = self.path(caption).with_suffix(".tmp")
                torch.save({"caption": caption, "embeds": embed.clone()}, tmp)
                tmp.replace(self.path(caption))
        self.misses += len(todo)
        if todo:
            logger.info("encoded %d caption(s) into %s", len(todo), self.cache_dir)
        return len(todo)

    def release(self) -> None:
        """Drop the text encoder (and free its accelerator memory)."""
        if self._pipe is not None:
            self._pipe = None
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    def get(self, captions: Sequence[str]) -> torch.Tensor:
        """Stacked embeddings ``[B, L, D]`` of ``captions`` (encoding any that are missing)."""
        missing = [c for c in captions if c not in self._memory and not self.path(c).exists()]
        if missing:
            self.precompute(missing)
        out = []
        for caption in captions:
            if caption not in self._memory:
                stored = torch.load(self.path(caption), map_location="cpu", weights_only=True)
                if stored["caption"] != caption:
                    raise ValueError(f"{self.path(caption)}: cache holds another caption ({stored['caption']!r})")
                self._memory[caption] = stored["embeds"]
            if caption not in missing:
                self.hits += 1
            out.append(self._memory[caption])
        return torch.stack(out)
