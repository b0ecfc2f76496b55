"""Candidate answers from a policy VLM: the policy prompt, per-input seeds, ``n`` samples per prompt.

The policy is any :class:`unifiedreward.judge.base.Sampler`: the in-process
:class:`~unifiedreward.judge.TransformersBackend` (batched, batch-invariant seeded sampling) or an
:class:`~unifiedreward.judge.OpenAIBackend` on a vLLM / SGLang server (``n`` samples per request, the judge's retry,
timeout and concurrency rules; the server honours seeds on a best-effort basis).

Policy prompt (protocol reference §1.9, "Policy prompt in both files"): the question alone after the media, with no
instruction text. Qwen form: one user turn ``[image | video, text]``; LLaVA form: the LLaVA system turn and
``"<image>\\n"`` per image or video frame before the question (upstream fed video frames as images). Literal
``<image>`` tokens already in a dataset's question are removed first, so the media are placed exactly once.

Seeds: input ``id`` gets ``input_seed(seed, id)`` (a hash, so a shard or a resumed run samples the same answers);
sample ``j`` of that input is drawn by the backend from ``(input seed, j)`` and recorded with its candidate.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from unifiedreward.chat import ChatPrompt
from unifiedreward.judge.base import Generation, GenerationConfig
from unifiedreward.preference.candidates import Candidate
from unifiedreward.protocol import LLAVA_SYSTEM_PROMPT

_IMAGE_TOKEN = re.compile(r"[ \t]*<image>[ \t]*\n?")


def input_seed(seed: int, record_id: str) -> int:
    """A 31-bit seed for one input, from the run's ``seed`` and the input's id (stable across shards and resumes)."""
    digest = hashlib.sha256(f"{seed}:{record_id}".encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


def clean_question(question: str) -> str:
    """``question`` without literal ``<image>`` tokens (LLaVA-style datasets carry them), stripped."""
    return _IMAGE_TOKEN.sub("", question).strip()


def policy_prompt(question: str, family: str, *, image: Any = None, video: Any = None) -> ChatPrompt:
    """The policy's prompt for one question about one image or video (module docstring).

    Args:
        question: the input's prompt (``<image>`` tokens are removed).
        family: the policy's prompt family, ``"qwen"`` or ``"llava"``.
        image: the decoded image, or ``None``.
        video: the decoded :class:`~unifiedreward.media.Video`, or ``None``.
    """
    text = clean_question(question)
    if family == "qwen":
        parts: list[dict[str, Any]] = []
        if image is not None:
            parts.append({"type": "image"})
        if video is not None:
            parts.append({"type": "video"})
        parts.append({"type": "text", "text": text})
        return ChatPrompt(
            messages=[{"role": "user", "content": parts}],
            images=[image] if image is not None else [],
            videos=[video] if video is not None else [],
            family="qwen",
            meta={"role": "policy"},
        )
    if family != "llava":
        raise ValueError(f"family must be 'qwen' or 'llava', got {family!r}")
    from unifiedreward.media import video_frames

    images = [image] if image is not None else []
    if video is not None:
        images.extend(video_frames(video))
    messages = [
        {"role": "system", "content": [{"type": "text", "text": LLAVA_SYSTEM_PROMPT}]},
        {"role": "user", "content": [{"type": "text", "text": "<image>\n" * len(images) + text}]},
    ]
    return ChatPrompt(messages=messages, images=images, family="llava", meta={"role": "policy"})


def candidates_from(generations: Sequence[Generation], seed: int) -> tuple[list[Candidate], list[str]]:
    """The candidates of one prompt's samples (failed samples left out) and the failures' errors.

    Each candidate records its seed (``meta["seed"]`` of the sample, else the input seed) and, in ``meta``, its
    ``sample_index`` and ``finish_reason`` when the backend reports them.
    """
    candidates, errors = [], []
    for index, generation in enumerate(generations):
        if not generation.ok:
            errors.append(f"sample {index}: {generation.error}")
            continue
        meta = {"sample_index": generation.meta.get("sample_index", index)}
        if "finish_reason" in generation.meta:
            meta["finish_reason"] = generation.meta["finish_reason"]
        candidates.append(Candidate(generation.text, seed=generation.meta.get("seed", seed), meta=meta))
    return candidates, errors


def sample_candidates(
    policy: Any, prompts: Sequence[ChatPrompt], seeds: Sequence[int], config: GenerationConfig
) -> list[tuple[list[Candidate], list[str]]]:
    """``config.n`` candidates per prompt from ``policy.sample`` (one batched call), with per-prompt errors."""
    if not prompts:
        return []
    samples = policy.sample(list(prompts), config, seeds=list(seeds))
    return [candidates_from(row, seed) for row, seed in zip(samples, seeds, strict=True)]
