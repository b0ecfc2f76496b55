"""In-process transformers backend: batched generation, seeded sampling and answer scoring on a loaded VLM.

Batching (what upstream's one-sample-at-a-time ``generate`` loops lack):

* prompts are sorted by an estimate of their token length and cut into batches of ``batch_size`` rows (a row is
  one sample of one prompt), so a batch holds prompts of similar length and little padding; answers are returned
  in the caller's order;
* left padding, so every row's answer starts at the same column;
* ``torch.inference_mode``, a bounded ``max_new_tokens`` and every decoding setting passed explicitly.

Public API:

* :meth:`TransformersBackend.generate` ``(prompts, config, *, seeds=None) -> list[Generation]``: one answer per
  prompt (greedy by default);
* :meth:`TransformersBackend.sample` ``(prompts, config, *, seeds=None) -> list[list[Generation]]``: ``config.n``
  seeded samples per prompt, batch-invariant (:mod:`unifiedreward.judge.sampling`);
* :meth:`TransformersBackend.score` / :meth:`~TransformersBackend.score_with_errors`: log-likelihoods of fixed
  candidate answers (:mod:`unifiedreward.judge.scoring`).

Failures are per item: a batch that raises (processor ``ValueError`` on an image with an extreme aspect ratio, a
placeholder/media mismatch, an error in the forward) is retried row by row, so the bad row is reported in its own
:class:`~unifiedreward.judge.base.Generation` (``error``) or NaN score row and the others still run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
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
        return [[i for i, _ in batch] for batch in self._row_batches(prompts, 1)]

    def _row_batches(self, prompts: Sequence[ChatPrompt], n: int) -> list[list[tuple[int, int]]]:
        """Rows ``(prompt index, sample index)`` grouped into batches of ``batch_size`` rows."""
        order = list(range(len(prompts)))
        if self.sort_by_length:
            order.sort(key=lambda i: -estimate_prompt_cost(prompts[i]))
        rows = [(i, j) for i in order for j in range(n)]
        return [rows[k : k + self.batch_size] for k in range(0, len(rows), self.batch_size)]

    def generate(
        self,
        prompts: Sequence[ChatPrompt],
        config: GenerationConfig | None = None,
        *,
        seeds: Sequence[int] | None = None,
    ) -> list[Generation]:
        """One answer per prompt, in the order of ``prompts`` (``config.n`` must be 1; see :meth:`sample`).

        A prompt that fails (processor error, e.g. an image with an extreme aspect ratio; a bad placeholder count;
        an error in the forward) gets ``Generation(None, error=...)``; the other prompts are answered.
        """
        config = config or GenerationConfig()
        if config.n != 1:
            raise ValueError(f"generate returns one answer per prompt; use sample() for n={config.n} samples")
        return [row[0] for row in self.sample(prompts, config, seeds=seeds)]

    def sample(
        self,
        prompts: Sequence[ChatPrompt],
        config: GenerationConfig,
        *,
        seeds: Sequence[int] | None = None,
    ) -> list[list[Generation]]:
        """``config.n`` answers per prompt: ``out[i][j]`` is sample ``j`` of ``prompts[i]``.

        Sampling (``config.temperature > 0``) is seeded per request and batch-invariant
        (:mod:`unifiedreward.judge.sampling`): sample ``j`` of prompt ``i`` uses a generator seeded with
        ``row_seed(seeds[i], j)``, so its tokens depend only on the prompt, ``seeds[i]``, ``j`` and ``config``, not
        on the batch it lands in, and the global torch RNG is untouched. Greedy decoding (``temperature == 0``)
        ignores seeds. Every decoding setting is passed explicitly
        (:func:`~unifiedreward.judge.sampling.explicit_generate_kwargs`).

        Args:
            prompts: ``P`` rendered prompts.
            config: decoding settings; ``config.n`` samples per prompt.
            seeds: one seed per prompt; default ``config.seed`` for every prompt, or a fresh random seed per prompt
                when that is ``None`` too. The seed used is in each sample's ``meta["seed"]``.

        Returns:
            ``P`` lists of ``config.n`` :class:`Generation` objects. ``meta`` holds ``finish_reason``
            (``"stop"`` / ``"length"``), ``sample_index`` and, when sampling, ``seed``. A failed row has
            ``text=None`` and ``error`` (the batch is retried row by row to isolate it).

        Raises:
            ValueError: ``seeds`` does not have one entry per prompt.
        """
        if seeds is not None and len(seeds) != len(prompts):
            raise ValueError(f"got {len(seeds)} seeds for {len(prompts)} prompts")
        if seeds is None:
            from unifiedreward.judge.sampling import fresh_seed

            seeds = [config.seed if config.seed is not None else fresh_seed() for _ in prompts]
        results: list[list[Generation | None]] = [[None] * config.n for _ in prompts]
        batches = self._row_batches(prompts, config.n)
        iterator: Any = batches
        if self.show_progress:
            from tqdm.auto import tqdm

            iterator = tqdm(batches, desc="judging", unit="batch")
        with self._vision_cache():
            for batch in iterator:
                outputs = _isolating(
                    batch,
                    lambda rows: self._generate_rows([prompts[i] for i, _ in rows], rows, seeds, config),
                    lambda err: Generation(None, error=_describe(err)),
                )
                for (i, j), output in zip(batch, outputs, strict=True):
                    results[i][j] = output
        return results  # type: ignore[return-value]

    def score(
        self,
        prompts: Sequence[ChatPrompt],
        candidates: Sequence[str],
        *,
        assistant_prefixes: Sequence[str] | None = None,
    ) -> Any:
        """``(B, K)`` log-likelihoods of each full candidate answer after each prompt (see :mod:`.scoring`).

        A prompt that cannot be scored gets a row of NaN; :meth:`score_with_errors` also says why.
        """
        return self.score_with_errors(prompts, candidates, assistant_prefixes=assistant_prefixes)[0]

    def score_with_errors(
        self,
        prompts: Sequence[ChatPrompt],
        candidates: Sequence[str],
        *,
        assistant_prefixes: Sequence[str] | None = None,
    ) -> tuple[Any, list[str | None]]:
        """:meth:`score` plus one error message per prompt (``None`` where the row was scored).

        Batches are formed as in :meth:`generate`; each costs one prompt forward plus bounded candidate forwards
        (:func:`~unifiedreward.judge.scoring.score_candidates`). A batch that fails is retried prompt by prompt, so
        one bad prompt (e.g. an image the processor rejects) gives one NaN row and an error, not a crash.

        Returns:
            ``(scores, errors)``: ``scores`` is a ``(B, K)`` float32 tensor, NaN in failed rows.
        """
        import torch

        from unifiedreward.judge.scoring import candidate_token_ids, score_candidates

        ids = candidate_token_ids(self.tokenizer, candidates)
        out = torch.full((len(prompts), len(candidates)), float("nan"), dtype=torch.float32)
        errors: list[str | None] = [None] * len(prompts)

        def run(rows: list[tuple[int, int]]) -> list[Any]:
            indices = [i for i, _ in rows]
            prefixes = None if assistant_prefixes is None else [assistant_prefixes[i] for i in indices]
            return list(score_candidates(self.model, self.processor, [prompts[i] for i in indices], ids,
                                         assistant_prefixes=prefixes))  # fmt: skip

        with self._vision_cache():
            for batch in self._row_batches(prompts, 1):
                for (i, _), row in zip(batch, _isolating(batch, run, _describe), strict=True):
                    if isinstance(row, str):
                        errors[i] = row
                    else:
                        out[i] = row
        return out, errors

    def _generate_rows(
        self,
        prompts: list[ChatPrompt],
        rows: list[tuple[int, int]],
        seeds: Sequence[int],
        config: GenerationConfig,
    ) -> list[Generation]:
        """Generate one batch; ``rows[k] = (prompt index, sample index)`` of ``prompts[k]``."""
        import torch
        from transformers import LogitsProcessorList

        from unifiedreward.judge.sampling import SeededSamplingProcessor, explicit_generate_kwargs, row_seed

        inputs = prepare_inputs(self.processor, prompts, padding_side="left").to(self.model.device)
        tokenizer = self.tokenizer
        eos_ids = self.model.generation_config.eos_token_id
        eos_ids = {eos_ids} if isinstance(eos_ids, int) else set(eos_ids or [])
        kwargs = explicit_generate_kwargs(config, tokenizer.pad_token_id)
        row_seeds: list[int | None] = [None] * len(rows)
        if config.do_sample:
            row_seeds = [row_seed(seeds[i], j) for i, j in rows]
            sampler = SeededSamplingProcessor(
                row_seeds, temperature=config.temperature, top_k=config.top_k, top_p=config.top_p,
                device=self.model.device,
            )  # fmt: skip
            kwargs["logits_processor"] = LogitsProcessorList([sampler])
        with torch.inference_mode():
            sequences = self.model.generate(**inputs, **kwargs)
        prompt_len = inputs["input_ids"].shape[1]
        new_tokens = sequences[:, prompt_len:].tolist()
        prompt_lengths = inputs["attention_mask"].sum(dim=1).tolist()
        outputs = []
        for (i, j), tokens, n_prompt in zip(rows, new_tokens, prompt_lengths, strict=True):
            answer = _cut_at_eos(tokens, eos_ids, tokenizer.pad_token_id)
            finished = len(answer) < len(tokens)  # an end-of-sequence token was generated
            text = tokenizer.decode(answer, skip_special_tokens=True)
            meta: dict[str, Any] = {"finish_reason": "stop" if finished else "length", "sample_index": j}
            if config.do_sample:
                meta["seed"] = int(seeds[i])
            outputs.append(Generation(text, None, int(n_prompt), len(answer), meta))
        return outputs


def _describe(err: BaseException) -> str:
    """An error message for a failed item: our own errors speak for themselves, others carry their type."""
    if isinstance(err, UnifiedRewardError):
        return str(err)
    return f"{type(err).__name__}: {err}"


def _isolating(
    rows: list[tuple[int, int]],
    run: Callable[[list[tuple[int, int]]], list[Any]],
    on_error: Callable[[Exception], Any],
) -> list[Any]:
    """``run(rows)``; if it raises, ``run`` each row alone, and a row that still fails gets ``on_error(exc)``.

    Any ``Exception`` counts as a per-item failure (processor ``ValueError`` on an odd image, a forward error, an
    out-of-memory error on a huge item); ``KeyboardInterrupt`` and other ``BaseException`` propagate, and so does
    :class:`~unifiedreward.judge.scoring.ScoringUnsupportedError` (a model-level limit).
    """
    from unifiedreward.judge.scoring import ScoringUnsupportedError

    try:
        return run(rows)
    except ScoringUnsupportedError:
        raise  # the model, not an item, is the problem
    except Exception as err:  # noqa: BLE001 - isolated below, one item at a time
        if len(rows) == 1:
            logger.warning("prompt %d failed: %s", rows[0][0], _describe(err))
            return [on_error(err)]
        logger.warning("batch of %d failed (%s); retrying its rows one by one", len(rows), _describe(err))
    out = []
    for row in rows:
        try:
            out.extend(run([row]))
        except Exception as err:  # noqa: BLE001 - this item fails alone; the rest of the batch goes on
            logger.warning("prompt %d failed: %s", row[0], _describe(err))
            out.append(on_error(err))
    return out


def _cut_at_eos(tokens: list[int], eos_ids: set[int], pad_id: int | None) -> list[int]:
    """The answer tokens before the first end-of-sequence (or padding) token."""
    for position, token in enumerate(tokens):
        if token in eos_ids or (pad_id is not None and token == pad_id):
            return tokens[:position]
    return tokens
