"""Chat messages and assistant-only labels for supervised fine-tuning.

* :func:`build_messages`: a :class:`~unifiedreward.data.records.Record` as the chat messages its model family's
  template expects (Qwen: content parts; LLaVA-OneVision: literal ``<image>\\n`` / ``<video>\\n`` and a system turn).
* :func:`assistant_spans`: render the conversation once and find the character span of each assistant answer, by
  rendering with and without that turn (the prefix rendered with the generation prompt must be a prefix of the
  rendering that includes the answer, which must be a prefix of the whole conversation).
* :func:`labels_from_offsets`: shift those spans past the expanded media placeholders and map them to tokens
  through the tokenizer's offsets. Every assistant answer and its end-of-turn token (``<|im_end|>``) are
  supervised; everything else (system and user turns, media tokens, the ``<|im_start|>assistant\\n`` header, the
  newline after ``<|im_end|>``) is ``-100``. Upstream (protocol reference §3.3) also trained on ``\\n``,
  ``<|im_start|>`` and ``<|im_end|>`` tokens inside the prompt and on the assistant header; we do not (§8.4 item 30).

:class:`SampleError` (and :class:`LabelError`) mark a sample that cannot be trained on; the dataset
(:mod:`unifiedreward.data.sft`) drops it.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

from unifiedreward.data.records import MediaPart, Record, TextPart
from unifiedreward.errors import UnifiedRewardError

__all__ = [
    "DEFAULT_END_OF_TURN",
    "IGNORE_INDEX",
    "LLAVA_SYSTEM_PROMPT",
    "LabelError",
    "SampleError",
    "assistant_spans",
    "build_messages",
    "labels_from_offsets",
]

#: Label value ignored by the cross-entropy loss.
IGNORE_INDEX = -100
#: The ChatML end-of-turn token of every supported family; supervised after each answer.
DEFAULT_END_OF_TURN = "<|im_end|>"
#: System turn added to LLaVA-family conversations that have none (upstream ``conv_qwen``, as at inference).
LLAVA_SYSTEM_PROMPT = "You are a helpful assistant."


class SampleError(UnifiedRewardError):
    """A sample cannot be trained on; the dataset drops it (see the module docstring).

    Attributes:
        kind: ``"media"``, ``"over-length"`` or ``"invalid"``.
    """

    kind = "invalid"


class LabelError(SampleError):
    """The assistant answers cannot be located consistently in the rendered or tokenized conversation."""


def build_messages(
    record: Record, family: str, *, system_prompt: str | None = None
) -> tuple[list[dict[str, Any]], list[MediaPart], list[MediaPart]]:
    """The chat messages of a record in the form its model family's chat template expects.

    Args:
        record: the record.
        family: ``"qwen"``: content parts (``{"type": "image"}``, ``{"type": "video"}``, ``{"type": "text"}``); the
            checkpoint's template adds its default system turn when there is none. ``"llava"``: string contents with
            literal ``<image>\\n`` / ``<video>\\n`` where the media are, and a ``system`` turn
            (:data:`LLAVA_SYSTEM_PROMPT`) prepended when the record has none, as upstream training and inference do.
        system_prompt: a system turn to prepend when the record has none (any family); for ``"llava"`` it replaces
            the default.

    Returns:
        ``(messages, images, videos)``: the messages, and the image and video parts in placeholder order.

    Raises:
        ValueError: an unknown family.
    """
    if family not in ("qwen", "llava"):
        raise ValueError(f"family must be 'qwen' or 'llava', got {family!r}")
    images: list[MediaPart] = []
    videos: list[MediaPart] = []
    messages: list[dict[str, Any]] = []
    if family == "llava" and system_prompt is None:
        system_prompt = LLAVA_SYSTEM_PROMPT
    if system_prompt is not None and (not record.turns or record.turns[0].role != "system"):
        if family == "qwen":
            messages.append({"role": "system", "content": [{"type": "text", "text": system_prompt}]})
        else:
            messages.append({"role": "system", "content": system_prompt})
    for turn in record.turns:
        parts: list[dict[str, Any]] = []
        pieces: list[str] = []
        for part in turn.content:
            if isinstance(part, TextPart):
                parts.append({"type": "text", "text": part.text})
                pieces.append(part.text)
                continue
            (images if part.type == "image" else videos).append(part)
            parts.append({"type": part.type})
            pieces.append(f"<{part.type}>\n")
        messages.append({"role": turn.role, "content": parts if family == "qwen" else "".join(pieces)})
    return messages, images, videos


def _render(processor: Any, messages: list[dict[str, Any]], *, add_generation_prompt: bool) -> str:
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    if not isinstance(text, str):  # some processors return a one-element list
        text = text[0]
    return text


def assistant_spans(
    processor: Any, messages: list[dict[str, Any]], *, end_of_turn: str = DEFAULT_END_OF_TURN
) -> tuple[str, list[tuple[int, int]]]:
    """Render a conversation and locate each assistant answer in the rendered text.

    For the k-th assistant message, ``prefix`` = the messages before it rendered with the generation prompt (it ends
    with ``<|im_start|>assistant\\n``) and ``upto`` = the messages up to and including it. ``prefix`` must be a
    prefix of ``upto`` and ``upto`` a prefix of the whole rendering (so rendering is incremental: no later turn
    rewrites an earlier one). The answer's span starts where ``prefix`` ends and ends right after the first
    ``end_of_turn`` that follows.

    Args:
        processor: anything with ``apply_chat_template(messages, tokenize=False, add_generation_prompt=...)``.
        messages: the conversation; trailing non-assistant turns are not allowed.
        end_of_turn: the end-of-turn token string.

    Returns:
        ``(text, spans)``: the full rendering (no generation prompt) and one ``(start, end)`` character span per
        assistant message, covering its answer and the end-of-turn token.

    Raises:
        LabelError: no assistant turn, a trailing non-assistant turn, a non-incremental template, or no
            end-of-turn token after an answer.
    """
    positions = [i for i, message in enumerate(messages) if message["role"] == "assistant"]
    if not positions:
        raise LabelError("the conversation has no assistant turn: nothing to train on")
    if positions[-1] != len(messages) - 1:
        raise LabelError(f"the conversation ends with a {messages[-1]['role']!r} turn, not an assistant answer")
    text = _render(processor, messages, add_generation_prompt=False)
    spans: list[tuple[int, int]] = []
    for k in positions:
        prefix = _render(processor, messages[:k], add_generation_prompt=True)
        upto = text if k == len(messages) - 1 else _render(processor, messages[: k + 1], add_generation_prompt=False)
        if not upto.startswith(prefix):
            raise LabelError(
                f"the chat template is not incremental: the prompt rendered before assistant turn {k} (with the "
                f"generation prompt) is not a prefix of the rendering that includes that turn"
            )
        if not text.startswith(upto):
            raise LabelError(
                f"the chat template is not incremental: rendering up to assistant turn {k} is not a prefix of the "
                f"whole conversation (does the template rewrite earlier turns?)"
            )
        start = len(prefix)
        stop = upto.find(end_of_turn, start)
        if stop < 0:
            raise LabelError(f"no {end_of_turn!r} after assistant turn {k} in the rendered conversation")
        if spans and start < spans[-1][1]:  # pragma: no cover - implied by the prefix checks
            raise LabelError("assistant spans overlap")
        spans.append((start, stop + len(end_of_turn)))
    return text, spans


def _shift(position: int, replacements: Sequence[dict[str, Any]]) -> int:
    """A character position of the rendered text, moved to the text with media placeholders expanded."""
    gained = 0
    for item in replacements:
        start, end = item["span"]
        if end <= position:
            gained += len(item["replacement"]) - (end - start)
        elif start < position:
            raise LabelError(f"character {position} falls inside the media placeholder at {start}..{end}")
    return position + gained


def labels_from_offsets(
    input_ids: Sequence[int],
    offsets: Sequence[Sequence[int]],
    spans: Sequence[tuple[int, int]],
    replacements: Sequence[dict[str, Any]] = (),
    *,
    end_of_turn_id: int,
) -> tuple[list[int], int]:
    """Labels for one tokenized conversation: the tokens inside the assistant spans, ``-100`` elsewhere.

    Args:
        input_ids: ``(L,)`` token ids of the processed (placeholder-expanded) text.
        offsets: ``(L, 2)`` character offsets of each token in the expanded text.
        spans: assistant spans in the *rendered* (unexpanded) text, from :func:`assistant_spans`.
        replacements: the processor's ``text_replacement_offsets`` for this text (placeholder -> expansion).
        end_of_turn_id: id of the end-of-turn token.

    Returns:
        ``(labels, straddling)``: ``(L,)`` labels, and the number of answers whose first characters share a token
        with the prompt (such a token is left unlabelled: it is part of what the model is given).

    Raises:
        LabelError: an answer that yields no token, or whose last token is not the end-of-turn token.
    """
    replacements = sorted(replacements, key=lambda item: item["span"][0])
    ends = [int(offset[1]) for offset in offsets]
    labels = [IGNORE_INDEX] * len(input_ids)
    straddling = 0
    for number, (start, stop) in enumerate(spans):
        start, stop = _shift(start, replacements), _shift(stop, replacements)
        first = bisect.bisect_right(ends, start)  # first token ending after `start`
        if first < len(input_ids) and int(offsets[first][0]) < start:
            straddling += 1
            first += 1
        last = first
        while last < len(input_ids) and ends[last] <= stop:
            if ends[last] > int(offsets[last][0]):  # skip zero-width tokens
                labels[last] = int(input_ids[last])
            last += 1
        labelled = [i for i in range(first, last) if labels[i] != IGNORE_INDEX]
        if len(labelled) < 2:
            raise LabelError(
                f"assistant answer {number} maps to {len(labelled)} token(s); expected the answer and "
                "the end-of-turn token"
            )
        if labels[labelled[-1]] != end_of_turn_id:
            raise LabelError(f"assistant answer {number} does not end with the end-of-turn token in the token ids")
    return labels, straddling
