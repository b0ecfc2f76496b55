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

import inspect
from collections.abc import Sequence
from typing import Any

from unifiedreward.chat import ChatPrompt
from unifiedreward.inputs import prepare_inputs


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


def score_candidates(
    model: Any,
    processor: Any,
    prompts: Sequence[ChatPrompt],
    candidates: Sequence[Sequence[int]],
    *,
    assistant_prefixes: Sequence[str] | None = None,
) -> Any:
    """Sequence log-likelihood of each candidate answer after each prompt.

    Args:
        model: a loaded VLM (``...ForConditionalGeneration``).
        processor: its processor.
        prompts: ``B`` prompts (rendered with a generation prompt).
        candidates: ``K`` token-id sequences (see :func:`candidate_token_ids`), the same for every prompt.
        assistant_prefixes: optional text the assistant already said before the candidates, per prompt.

    Returns:
        ``(B, K)`` float32 tensor of ``log P(candidate_k | prompt_b)``.
    """
    import torch

    if not candidates:
        raise ValueError("score_candidates needs at least one candidate")
    inputs = prepare_inputs(processor, prompts, padding_side="left", assistant_prefixes=assistant_prefixes)
    inputs = inputs.to(model.device)
    mask = inputs["attention_mask"]
    batch, prompt_len = inputs["input_ids"].shape
    num_cands, max_len = len(candidates), max(len(c) for c in candidates)
    pad_id = processor.tokenizer.pad_token_id or 0

    mrope = _uses_mrope(model, inputs)
    prefill_kwargs: dict[str, Any] = {}
    if not mrope:
        prefill_kwargs["position_ids"] = (mask.long().cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        out = model(**inputs, **prefill_kwargs, use_cache=True)
        first_logp = out.logits[:, -1].float().log_softmax(-1)  # (B, V)
        cache = out.past_key_values
        cache.batch_repeat_interleave(num_cands)  # (B*K) rows: prompt b, candidate k at row b*K + k

        cand = torch.full((num_cands, max_len), pad_id, dtype=torch.long, device=model.device)
        cand_mask = torch.zeros((num_cands, max_len), dtype=mask.dtype, device=model.device)
        for k, ids in enumerate(candidates):
            cand[k, : len(ids)] = torch.tensor(list(ids), device=model.device)
            cand_mask[k, : len(ids)] = 1
        cand, cand_mask = cand.repeat(batch, 1), cand_mask.repeat(batch, 1)  # (B*K, Lc)
        full_mask = torch.cat([mask.repeat_interleave(num_cands, 0), cand_mask], dim=1)  # (B*K, P+Lc)
        positions = (full_mask.long().cumsum(-1) - 1).clamp(min=0)[:, prompt_len:]  # (B*K, Lc)
        if mrope:
            deltas = _rope_deltas(model, inputs).repeat_interleave(num_cands, 0)  # (B*K, 1)
            positions = positions[None].expand(3, -1, -1) + deltas[None]  # (3, B*K, Lc)
        logp = (
            model(
                input_ids=cand,
                attention_mask=full_mask,
                past_key_values=cache,
                position_ids=positions,
                use_cache=False,
            )
            .logits.float()
            .log_softmax(-1)
        )  # (B*K, Lc, V)

    scores = torch.empty((batch, num_cands), dtype=torch.float32)
    for k, ids in enumerate(candidates):
        ids_t = torch.tensor(list(ids), device=logp.device)
        rows = torch.arange(batch, device=logp.device) * num_cands + k
        total = first_logp[:, ids_t[0]]  # the first token is predicted by the prompt's last position
        if len(ids) > 1:
            # token j (j >= 1) is predicted at candidate position j-1
            steps = logp[rows][:, : len(ids) - 1, :]  # (B, n-1, V)
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
