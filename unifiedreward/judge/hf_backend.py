"""In-process transformers backend: batched greedy generation on a loaded VLM.

Batching (what upstream's one-sample-at-a-time ``generate`` loops lack):

* prompts are sorted by an estimate of their token length and cut into batches of ``batch_size``, so a batch holds
  prompts of similar length and little padding; answers are returned in the caller's order;
* left padding, so every row's answer starts at the same column;
* ``torch.inference_mode`` and greedy decoding with a bounded ``max_new_tokens``.

A batch that the processor rejects (e.g. a placeholder/media mismatch in one prompt) is retried prompt by prompt,
so one bad prompt is reported in its own :class:`~unifiedreward.judge.base.Generation` and the others still run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from unifiedreward.chat import ChatPrompt
from unifiedreward.errors import UnifiedRewardError
from unifiedreward.inputs import prepare_inputs
from unifiedreward.judge.base import Generation, GenerationConfig

logger = logging.getLogger(__name__)


def estimate_prompt_cost(prompt: ChatPrompt) -> float:
    """A cheap proxy for a prompt's token count, used only to group prompts of similar length.

    Text counts ~1 token per 4 characters; an image ~1 token per 28x28 pixels; a video frame likewise.
    """
    cost = len(prompt.text()) / 4
    for image in prompt.images:
        size = getattr(image, "size", None)
        if size is not None:
            cost += size[0] * size[1] / 784
    for video in prompt.videos:
        frames = getattr(video, "frames", video)
        cost += frames.shape[0] * frames.shape[1] * frames.shape[2] / 784
    return cost


class TransformersBackend:
    """Generate answers with a Hugging Face VLM held in this process.

    Args:
        model: a loaded ``...ForConditionalGeneration`` (see :func:`unifiedreward.modeling.load_reward_model`).
        processor: its processor.
        batch_size: prompts per forward; bounded by GPU memory (7B + two 448px images: 16-32 on an 80 GB GPU).
        sort_by_length: group prompts of similar estimated length into batches.
        show_progress: a tqdm bar over batches.
        fast_vision: for Qwen-VL towers under sdpa/eager attention, run the vision tower's windowed and per-image
            attention as one batched call per window length (:func:`unifiedreward.judge.vision.patch_vision_attention`;
            numerically equal to stock). The model's attention modules are patched in place; undo with
            :func:`unifiedreward.judge.vision.unpatch_vision_attention`.
        reuse_vision_features: within one :meth:`generate` / :meth:`score` call, encode each distinct image or video
            once and reuse its features wherever it appears again (both orders of a pair, tournaments).
    """

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        batch_size: int = 8,
        sort_by_length: bool = True,
        show_progress: bool = False,
        fast_vision: bool = True,
        reuse_vision_features: bool = True,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.processor = processor
        self.batch_size = batch_size
        self.sort_by_length = sort_by_length
        self.show_progress = show_progress
        self.reuse_vision_features = reuse_vision_features
        self.vision_patch = None
        if fast_vision and model is not None:
            from unifiedreward.judge.vision import patch_vision_attention

            patch = patch_vision_attention(model, strict=False)
            self.vision_patch = patch if patch.modules else None

    def _vision_cache(self) -> contextlib.AbstractContextManager:
        """A fresh per-call vision feature cache, where the model supports one (else a no-op)."""
        if not self.reuse_vision_features or self.model is None:
            return contextlib.nullcontext()
        from unifiedreward.judge.vision import supports_vision_feature_cache, vision_feature_cache

        if not supports_vision_feature_cache(self.model):
            return contextlib.nullcontext()
        return vision_feature_cache(self.model)

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, batch_size: int = 8, **load_kwargs: Any) -> TransformersBackend:
        """Load a checkpoint with :func:`unifiedreward.modeling.load_reward_model` and wrap it."""
        from unifiedreward.modeling import load_reward_model

        model, processor = load_reward_model(name_or_path, **load_kwargs)
        return cls(model, processor, batch_size=batch_size)

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)

    def batches(self, prompts: Sequence[ChatPrompt]) -> list[list[int]]:
        """Indices of ``prompts`` grouped into batches (longest first when sorting, so OOM shows up early)."""
        order = list(range(len(prompts)))
        if self.sort_by_length:
            order.sort(key=lambda i: -estimate_prompt_cost(prompts[i]))
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def generate(self, prompts: Sequence[ChatPrompt], config: GenerationConfig | None = None) -> list[Generation]:
        """Answer every prompt; results are in the order of ``prompts``."""
        config = config or GenerationConfig()
        results: list[Generation | None] = [None] * len(prompts)
        batches = self.batches(prompts)
        iterator: Any = batches
        if self.show_progress:
            from tqdm.auto import tqdm

            iterator = tqdm(batches, desc="judging", unit="batch")
        with self._vision_cache():
            for batch in iterator:
                try:
                    outputs = self._generate_batch([prompts[i] for i in batch], config)
                except UnifiedRewardError as err:
                    if len(batch) == 1:
                        outputs = [Generation(None, error=str(err))]
                    else:
                        logger.warning("batch failed (%s); retrying its %d prompts one by one", err, len(batch))
                        outputs = [self._generate_one(prompts[i], config) for i in batch]
                for index, output in zip(batch, outputs, strict=True):
                    results[index] = output
        return results  # type: ignore[return-value]

    def score(
        self,
        prompts: Sequence[ChatPrompt],
        candidates: Sequence[str],
        *,
        assistant_prefixes: Sequence[str] | None = None,
    ) -> Any:
        """``(B, K)`` log-likelihoods of each full candidate answer after each prompt (see :mod:`.scoring`).

        Batches are formed as in :meth:`generate`; each costs one prompt forward plus one batched candidate forward.
        """
        import torch

        from unifiedreward.judge.scoring import candidate_token_ids, score_candidates

        ids = candidate_token_ids(self.tokenizer, candidates)
        out = torch.empty((len(prompts), len(candidates)), dtype=torch.float32)
        with self._vision_cache():
            for batch in self.batches(prompts):
                prefixes = None if assistant_prefixes is None else [assistant_prefixes[i] for i in batch]
                out[batch] = score_candidates(
                    self.model, self.processor, [prompts[i] for i in batch], ids, assistant_prefixes=prefixes
                )
        return out

    def _generate_one(self, prompt: ChatPrompt, config: GenerationConfig) -> Generation:
        try:
            return self._generate_batch([prompt], config)[0]
        except UnifiedRewardError as err:
            return Generation(None, error=str(err))

    def _generate_batch(self, prompts: list[ChatPrompt], config: GenerationConfig) -> list[Generation]:
        import torch

        inputs = prepare_inputs(self.processor, prompts, padding_side="left").to(self.model.device)
        tokenizer = self.tokenizer
        eos_ids = self.model.generation_config.eos_token_id
        eos_ids = {eos_ids} if isinstance(eos_ids, int) else set(eos_ids or [])
        kwargs: dict[str, Any] = {"max_new_tokens": config.max_new_tokens, "pad_token_id": tokenizer.pad_token_id}
        if config.temperature > 0:
            if config.seed is not None:
                torch.manual_seed(config.seed)
            kwargs.update(do_sample=True, temperature=config.temperature, top_p=config.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            sequences = self.model.generate(**inputs, **kwargs)
        prompt_len = inputs["input_ids"].shape[1]
        new_tokens = sequences[:, prompt_len:].tolist()
        prompt_lengths = inputs["attention_mask"].sum(dim=1).tolist()
        outputs = []
        for row, n_prompt in zip(new_tokens, prompt_lengths, strict=True):
            answer = _cut_at_eos(row, eos_ids, tokenizer.pad_token_id)
            finished = len(answer) < len(row)  # an end-of-sequence token was generated
            text = tokenizer.decode(answer, skip_special_tokens=True)
            meta = {"finish_reason": "stop" if finished else "length"}
            outputs.append(Generation(text, None, int(n_prompt), len(answer), meta))
        return outputs


def _cut_at_eos(tokens: list[int], eos_ids: set[int], pad_id: int | None) -> list[int]:
    """The answer tokens before the first end-of-sequence (or padding) token."""
    for position, token in enumerate(tokens):
        if token in eos_ids or (pad_id is not None and token == pad_id):
            return tokens[:position]
    return tokens
