"""A small tokenizer for the synthetic world: byte-level BPE on the world's text plus one token per constant prompt
segment.

The protocol's templates are 800-2,800 characters of constant text around a short caption or question. A tiny
model trained from scratch on 2 CPU cores cannot afford hundreds of tokens of boilerplate per sample, and it does
not need them: the text never varies. So the tokenizer:

* is a real byte-level BPE :class:`~transformers.Qwen2Tokenizer` (the Qwen pre-tokenizer, the 256 byte symbols,
  so every string is encodable) whose merges are learned from the world's own text (:func:`unifiedreward.synth.text.
  world_text`: every caption, question, answer and checklist), so a caption is a handful of word tokens;
* keeps the Qwen special tokens (``<|im_start|>`` ... ``<|video_pad|>``) and a Qwen2-VL chat template
  (:func:`chat_template`; by default each medium is followed by its label, ``Picture 2``);
* adds every constant piece of the rendered prompts as one (non-special) added token: the text of each template
  between its fields (rendered by :func:`unifiedreward.protocol.render_prompt` and the chat template, split at the
  special tokens, the fields and the numbers), the chat template's own pieces (``system\nYou are a helpful
  assistant.``, ``user\n``, ``assistant\n``), the answer sentences cut at their numbers (``Image``, `` is
  better.``), ``Final Score:`` and the checklist markers (`` (color): ``).

Added tokens are matched in the raw text before BPE (leftmost-longest), survive ``save_pretrained`` /
``from_pretrained`` and decode to their text, so rendering, labels (offsets) and answer scoring all work unchanged.
Numbers stay ordinary tokens: the ``2`` of ``Picture 2`` is the ``2`` of ``Image 2 is better.``. Because
``assistant\n`` and ``Final Score:`` are tokens of their own, an answer tokenizes the same way whether it is
appended to the prompt in training or scored as a separate candidate by the judge.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from transformers import Qwen2Tokenizer

__all__ = [
    "DEFAULT_CHAT_TEMPLATE",
    "LABELLED_CHAT_TEMPLATE",
    "SENTINEL",
    "answer_segments",
    "build_world_tokenizer",
    "chat_template",
    "prompt_segments",
    "train_bpe",
]

#: Stands for a template field while the constant segments are cut out of a rendered prompt.
SENTINEL = "\x00"
_FIELDS = ("prompt", "question", "answer1", "answer2", "response")


def chat_template(*, text_first: bool = False, label: str = "before") -> str:
    """A Qwen2-VL-style chat template (default system turn, ChatML turns, ``<|vision_start|>...`` media).

    Args:
        text_first: render a user turn's text parts before its media parts (Qwen2-VL renders them in order, and
            the protocol puts the media first).
        label: ``"before"``: ``Picture k: `` / ``Video k: `` before each medium (Qwen2-VL's ``add_vision_id``);
            ``"after"``: ``Picture k`` / ``Video k`` and a newline after it; ``"none"``.
    """
    if label not in ("before", "after", "none"):
        raise ValueError(f"label must be before, after or none, got {label!r}")

    def medium(kind: str, counter: str, pad: str) -> str:
        number = f"{kind} {{{{ {counter}.value }}}}"
        body = f"<|vision_start|><|{pad}|><|vision_end|>"
        return {"before": f"{number}: {body}", "after": f"{body}{number}\n", "none": body}[label]

    image = (
        "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
        "{% set image_count.value = image_count.value + 1 %}" + medium("Picture", "image_count", "image_pad")
    )
    video = (
        "{% elif content['type'] == 'video' or 'video' in content %}"
        "{% set video_count.value = video_count.value + 1 %}" + medium("Video", "video_count", "video_pad")
    )
    text = "{% if content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    if text_first:
        parts = (
            "{% for content in message['content'] %}" + text + "{% endfor %}"
            "{% for content in message['content'] %}" + image + video + "{% endif %}{% endfor %}"
        )
    else:
        parts = (
            "{% for content in message['content'] %}"
            + image
            + video
            + "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}"
        )
    return (
        "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
        "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
        "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
        "{% else %}" + parts + "<|im_end|>\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


#: Qwen2-VL's template with its ``add_vision_id`` option always on (``Picture 1: `` before each image).
LABELLED_CHAT_TEMPLATE = chat_template(text_first=False, label="before")
#: The demo model's template: Qwen2-VL's (media first), each medium followed by its label (``Picture 2``), so the
#: label token can gather its medium's content and the digit is shared with the verdicts (``Image 2 is better.``).
DEFAULT_CHAT_TEMPLATE = chat_template(text_first=False, label="after")


def train_bpe(texts: Iterable[str], num_merges: int = 400) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Learn byte-level BPE merges (Qwen pre-tokenizer) from ``texts``; deterministic for the same input.

    Returns:
        ``(vocab, merges)``: ``<|endoftext|>`` = 0, the 256 byte symbols (sorted), then one token per merge.
    """
    from unifiedreward.tiny.tokenizer import train_byte_bpe

    return train_byte_bpe(texts, num_merges)


def _split_digits(piece: str) -> list[str]:
    """``piece`` without its digits (and the space before a digit), cut there: numbers stay ordinary BPE tokens."""
    import re

    return [part for part in re.split(r" ?\d+", piece) if len(part) > 1 and part.strip()]


def prompt_segments(tokenizer: Qwen2Tokenizer, combos: Sequence[tuple[str, str]] | None = None) -> list[str]:
    """The constant text pieces of every rendered prompt (Qwen form, version 1.0) of ``combos``.

    Each template is rendered with :data:`SENTINEL` in every field and wrapped by ``tokenizer``'s chat template with
    the generation prompt; the result is split at the special tokens, the sentinels and the numbers (a number such
    as the ``1`` of ``Picture 1`` or of ``Image 1 is better.`` stays a token of its own, shared by the media labels
    and the verdicts). Pieces that are only whitespace or a single character are left out.
    """
    import re

    from unifiedreward.protocol import render_prompt, select_template
    from unifiedreward.synth.tasks import COMBOS

    specials = [t for t in tokenizer.all_special_tokens if t]
    splitter = re.compile("|".join(re.escape(t) for t in [*sorted(specials, key=len, reverse=True), SENTINEL]))
    pieces: set[str] = set()
    for task, mode in combos or COMBOS:
        spec = select_template(task, mode, "qwen", "1.0")
        fields = {name: SENTINEL for name in _FIELDS if _accepts(spec, name)}
        prompt = render_prompt(spec, family="qwen", images=[None] * spec.media.count("image"),
                               videos=[None] * spec.media.count("video"), **fields)  # fmt: skip
        text = tokenizer.apply_chat_template(prompt.messages, tokenize=False, add_generation_prompt=True)
        for piece in splitter.split(text):
            pieces.update(_split_digits(piece))
    return sorted(pieces)


def _accepts(spec: object, name: str) -> bool:
    from unifiedreward.protocol.render import FIELD_ALIASES

    return FIELD_ALIASES.get(name, name) in spec.fields  # type: ignore[attr-defined]


def answer_segments(combos: Sequence[tuple[str, str]] | None = None) -> list[str]:
    """The answer sentences of the pair-rank templates of ``combos`` (cut at their numbers), ``Final Score:`` and
    the markers of the element checklist (``Response: ``, `` (color): ``, ...; :func:`unifiedreward.synth.text.
    reasoning_text`)."""
    from unifiedreward.protocol import select_template
    from unifiedreward.synth.tasks import COMBOS

    out = {"Final Score:", "Response: ", "Image: ", "Video: ", " (count): ", " (color): ", " (shape): ", " (position): ", " (direction): ",
           " (change): ", " (end color): "}  # fmt: skip
    for task, mode in combos or COMBOS:
        if mode == "pair_rank":
            for sentence in select_template(task, mode, "qwen", "1.0").answer.candidates.values():
                out.update(_split_digits(sentence))
    return sorted(out)


@functools.lru_cache(maxsize=4)
def _cached_bpe(num_merges: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    from unifiedreward.synth.text import world_text

    return train_bpe(world_text(), num_merges)


def build_world_tokenizer(
    num_merges: int = 400, extra_tokens: Sequence[str] = (), chat_template: str | None = None
) -> Qwen2Tokenizer:
    """The synthetic world's tokenizer (deterministic: the same tokenizer on every call).

    Args:
        num_merges: upper bound on the BPE merges learned from the world's text (fewer when the text runs out of
            pairs seen twice).
        extra_tokens: more constant strings to add as single tokens.
        chat_template: the chat template (default :data:`DEFAULT_CHAT_TEMPLATE`: media labelled ``Picture 1``,
            ``Video 2`` after them); the prompt segments are cut from its renderings. Give the processor the same
            template (``processor.chat_template = tokenizer.chat_template``).

    Returns:
        A ``Qwen2Tokenizer``: ``<|endoftext|>`` (id 0, also padding), the byte symbols, the merges, the Qwen special
        tokens, then the prompt and answer segments (:func:`prompt_segments`, :func:`answer_segments`) as added
        tokens. eos is ``<|im_end|>``; no bos; the Qwen2-VL chat template is attached. Build the processor with
        ``unifiedreward.tiny.build_processor(arch, tokenizer)``.
    """
    from tokenizers import AddedToken

    from unifiedreward.tiny.tokenizer import byte_bpe_tokenizer

    vocab, merges = _cached_bpe(num_merges)
    tokenizer = byte_bpe_tokenizer(vocab, merges, chat_template=chat_template or DEFAULT_CHAT_TEMPLATE)
    segments = sorted({*prompt_segments(tokenizer), *answer_segments(), *extra_tokens})
    tokenizer.add_tokens([AddedToken(s, special=False, normalized=False) for s in segments])
    return tokenizer
