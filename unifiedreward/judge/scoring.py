"""Answer probabilities from logits: score a few fixed candidate answers with one forward over the shared prompt.

Where a template's answer is one of a few fixed strings (pair rank: ``Image 1 is better.`` / ``Image 2 is
better.`` / ``Both images are equally good.``), generating text and string-matching it wastes the model's
information. Instead, for every prompt in a batch:

1. one forward over the (left-padded) prompts fills the KV cache (vision tower and language model run once);
2. the cache is repeated ``K`` times (one copy per candidate) and all candidates' tokens go through the language
   model in one batched forward;
3. ``log P(candidate | prompt) = sum_j log p(c_j | prompt, c_<j)`` over the candidate's tokens, including the
   end-of-turn token that closes the answer (so ``Image 1 is better.`` means exactly that, nothing more).

The result equals scoring each full ``prompt + candidate`` sequence separately (tested against that brute force).
Probabilities normalised over the candidate set, ``softmax(log P)``, are a soft reward usable for RL and sifting.

Positions: the cached continuation needs the position ids the model would have used had it seen the whole
sequence. Qwen-VL models use 3-D rotary positions (``get_rope_index``): text after the prompt continues at
``text position + rope delta``. Other models use ``cumsum(attention_mask) - 1``, which is also passed for the prompt
forward so left padding does not shift positions.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from typing import Any

from unifiedreward.chat import ChatPrompt
from unifiedreward.errors import UnifiedRewardError
from unifiedreward.inputs import prepare_inputs

#: Default bound on cache rows per candidate forward in :func:`score_candidates`.
DEFAULT_MAX_ROWS = 64


def candidate_token_ids(
    tokenizer: Any, candidates: Sequence[str], end_token: str | None = "<|im_end|>"
) -> list[list[int]]:
    """Token ids of each candidate answer, followed by the end-of-turn token (if the tokenizer has it)."""
    end_id = tokenizer.convert_tokens_to_ids(end_token) if end_token else None
    if end_id is not None and end_id == getattr(tokenizer, "unk_token_id", object()):
        end_id = None
    out = []
    for text in candidates:
        ids = list(tokenizer(text, add_special_tokens=False).input_ids)
        if end_id is not None:
            ids.append(end_id)
        if not ids:
            raise ValueError(f"candidate {text!r} tokenizes to nothing")
        out.append(ids)
    return out


def _uses_mrope(model: Any, inputs: Any) -> bool:
    inner = getattr(model, "model", None)
    return hasattr(inner, "get_rope_index") and "mm_token_type_ids" in inputs


def _rope_deltas(model: Any, inputs: Any) -> Any:
    """Per-row offset between 3-D rotary positions and plain text positions, shape ``(B, 1)``."""
    inner = model.model
    accepted = inspect.signature(inner.get_rope_index).parameters
    keys = ("image_grid_thw", "video_grid_thw", "second_per_grid_ts", "attention_mask", "mm_token_type_ids")
    kwargs = {k: inputs[k] for k in keys if k in inputs and (k in accepted or "kwargs" in accepted)}
    _, deltas = inner.get_rope_index(inputs["input_ids"], **kwargs)
    return deltas


class ScoringUnsupportedError(UnifiedRewardError):
    """The model cannot be scored from logits (its cache cannot be expanded per candidate): a property of the model,
    not of one item, so it is raised rather than reported per item."""


def _expanded_cache(cache: Any, index: Any) -> Any:
    """A new cache whose row ``r`` is row ``index[r]`` of ``cache``; ``cache`` itself is left untouched.

    Layers are copied shallowly (their dicts of per-state tensors too) and then re-indexed with ``reorder_cache``,
    which replaces each tensor by an ``index_select`` of it, so the prefix cache can be expanded again for the next
    chunk of candidates.
    """
    if not callable(getattr(cache, "reorder_cache", None)) or not hasattr(cache, "layers"):
        raise ScoringUnsupportedError(
            f"scoring='probabilities' cannot expand a {type(cache).__name__} cache (no per-layer reorder_cache); "
            "use scoring='generate' for this model"
        )
    expanded = copy.copy(cache)
    expanded.layers = []
    for layer in cache.layers:
        clone = copy.copy(layer)
        for name, value in vars(layer).items():
            if isinstance(value, dict):
                setattr(clone, name, dict(value))
        if not callable(getattr(clone, "reorder_cache", None)):
            raise ScoringUnsupportedError(
                f"scoring='probabilities' cannot expand cache layer {type(layer).__name__} (no reorder_cache); "
                "use scoring='generate' for this model"
            )
        clone.reorder_cache(index)
        expanded.layers.append(clone)
    return expanded


def _prefill_kwargs(model: Any, mask: Any, mrope: bool) -> dict[str, Any]:
    """Extra prefill arguments: plain positions (non-mrope models) and ``logits_to_keep=1`` where supported."""
    kwargs: dict[str, Any] = {}
    if not mrope:
        kwargs["position_ids"] = (mask.long().cumsum(-1) - 1).clamp(min=0)
    parameters = inspect.signature(type(model).forward).parameters  # the class: wrappers hide the signature
    if "logits_to_keep" in parameters:
        kwargs["logits_to_keep"] = 1  # only the last position's logits: (B, 1, V), not (B, P, V)
    return kwargs


def score_candidates(
    model: Any,
    processor: Any,
    prompts: Sequence[ChatPrompt],
    candidates: Sequence[Sequence[int]],
    *,
    assistant_prefixes: Sequence[str] | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> Any:
    """Sequence log-likelihood of each candidate answer after each prompt, with bounded memory.

    Memory: the prefill keeps only the last position's logits (``logits_to_keep=1``); candidates are then scored
    in chunks of ``c = max(1, max_rows // B)``: each chunk expands the prompt cache to ``B*c`` rows (one copy per
    candidate of the chunk), so at most ``max(max_rows, B)`` cache rows plus ``B*c*Lc*V`` logits exist at a time,
    whatever ``K`` is (the 0-100 image-understanding scale has ``K = 101``).

    Args:
        model: a loaded VLM (``...ForConditionalGeneration``).
        processor: its processor.
        prompts: ``B`` prompts (rendered with a generation prompt).
        candidates: ``K`` token-id sequences (see :func:`candidate_token_ids`), the same for every prompt.
        assistant_prefixes: optional text the assistant already said before the candidates, per prompt.
        max_rows: cache rows per candidate forward (``B`` rows are always allowed).

    Returns:
        ``(B, K)`` float32 tensor of ``log P(candidate_k | prompt_b)``.
    """
    import torch

    if not candidates:
        raise ValueError("score_candidates needs at least one candidate")
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}")
    inputs = prepare_inputs(processor, prompts, padding_side="left", assistant_prefixes=assistant_prefixes)
    inputs = inputs.to(model.device)
    mask = inputs["attention_mask"]
    batch = inputs["input_ids"].shape[0]
    pad_id = processor.tokenizer.pad_token_id or 0
    mrope = _uses_mrope(model, inputs)
    scores = torch.empty((batch, len(candidates)), dtype=torch.float32)
    with torch.inference_mode():
        out = model(**inputs, **_prefill_kwargs(model, mask, mrope), use_cache=True)
        first_logp = out.logits[:, -1].float().log_softmax(-1)  # (B, V)
        cache = out.past_key_values
        del out
        deltas = _rope_deltas(model, inputs) if mrope else None  # (B, 1)
        per_chunk = max(1, max_rows // batch)
        for start in range(0, len(candidates), per_chunk):
            chunk = candidates[start : start + per_chunk]
            rows = torch.arange(batch, device=mask.device).repeat_interleave(len(chunk))  # (B*c,)
            chunk_cache = _expanded_cache(cache, rows)  # row b*c + k: prompt b, candidate start + k
            scores[:, start : start + len(chunk)] = _score_chunk(
                model, chunk_cache, chunk, mask, first_logp, deltas, pad_id
            )
            del chunk_cache
    return scores


def _score_chunk(
    model: Any,
    cache: Any,
    candidates: Sequence[Sequence[int]],
    mask: Any,
    first_logp: Any,
    deltas: Any,
    pad_id: int,
) -> Any:
    """``(B, c)`` log-likelihoods of ``c`` candidates, given the prompt cache expanded to ``B*c`` rows.

    Args:
        cache: prompt cache, row ``b*c + k`` = prompt ``b`` (consumed: extended in place by the forward).
        mask: ``(B, P)`` prompt attention mask.
        first_logp: ``(B, V)`` log-probabilities of the first answer token.
        deltas: ``(B, 1)`` 3-D rope offsets, or ``None`` for plain positions.
    """
    import torch

    device = mask.device
    batch, prompt_len = mask.shape
    num_cands, max_len = len(candidates), max(len(c) for c in candidates)
    cand = torch.full((num_cands, max_len), pad_id, dtype=torch.long, device=device)
    cand_mask = torch.zeros((num_cands, max_len), dtype=mask.dtype, device=device)
    for k, ids in enumerate(candidates):
        cand[k, : len(ids)] = torch.tensor(list(ids), device=device)
        cand_mask[k, : len(ids)] = 1
    cand, cand_mask = cand.repeat(batch, 1), cand_mask.repeat(batch, 1)  # (B*c, Lc)
    full_mask = torch.cat([mask.repeat_interleave(num_cands, 0), cand_mask], dim=1)  # (B*c, P+Lc)
    positions = (full_mask.long().cumsum(-1) - 1).clamp(min=0)[:, prompt_len:]  # (B*c, Lc)
    if deltas is not None:
        positions = positions[None].expand(3, -1, -1) + deltas.repeat_interleave(num_cands, 0)[None]  # (3, B*c, Lc)
    logits = model(
        input_ids=cand, attention_mask=full_mask, past_key_values=cache, position_ids=positions, use_cache=True
    ).logits  # (B*c, Lc, V)
    scores = torch.empty((batch, num_cands), dtype=torch.float32)
    for k, ids in enumerate(candidates):
        ids_t = torch.tensor(list(ids), device=device)
        total = first_logp[:, ids_t[0]]  # the first token is predicted by the prompt's last position
        if len(ids) > 1:
            # token j (j >= 1) is predicted at candidate position j-1
            rows = torch.arange(batch, device=device) * num_cands + k
            steps = logits[rows, : len(ids) - 1].float().log_softmax(-1)  # (B, n-1, V)
            total = total + steps.gather(-1, ids_t[1:].expand(batch, -1).unsqueeze(-1)).squeeze(-1).sum(-1)
        scores[:, k] = total.cpu()
    return scores


def sequence_log_likelihood(model: Any, processor: Any, prompt: ChatPrompt, answer_ids: Sequence[int]) -> float:
    """Brute force: ``log P(answer | prompt)`` from one full forward over ``prompt + answer`` (no cache).

    The reference :func:`score_candidates` is tested against; also handy for one-off checks.
    """
    import torch

    inputs = prepare_inputs(processor, [prompt]).to(model.device)
    prompt_len = inputs["input_ids"].shape[1]
    extra = torch.tensor([list(answer_ids)], device=model.device)
    inputs["input_ids"] = torch.cat([inputs["input_ids"], extra], dim=1)
    inputs["attention_mask"] = torch.cat([inputs["attention_mask"], torch.ones_like(extra)], dim=1)
    if "mm_token_type_ids" in inputs:
        inputs["mm_token_type_ids"] = torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(extra)], dim=1)
    with torch.inference_mode():
        logp = model(**inputs).logits[0].float().log_softmax(-1)
    positions = torch.arange(prompt_len - 1, prompt_len - 1 + len(answer_ids), device=logp.device)
    return float(logp[positions, extra[0]].sum())
