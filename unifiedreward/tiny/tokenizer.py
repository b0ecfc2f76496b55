"""Byte-level BPE tokenizers for small models trained from scratch: the trainer, the Qwen special tokens, chat templates.

:func:`train_byte_bpe` learns merges with the exact normalizer and pre-tokenizer of ``Qwen2Tokenizer``, so the
result is a real byte-level BPE ``Qwen2Tokenizer`` (every string is encodable) built by :func:`byte_bpe_tokenizer`.
The synthetic world's tokenizer (:mod:`unifiedreward.synth.tokenizer`) and the test fixtures'
(:mod:`unifiedreward.testing.tiny_models`) are both built this way, from different texts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from transformers import Qwen2Tokenizer

__all__ = [
    "LLAVA_CHAT_TEMPLATE",
    "LLAVA_SPECIAL_TOKENS",
    "QWEN_CHAT_TEMPLATE",
    "QWEN_SPECIAL_TOKENS",
    "byte_bpe_tokenizer",
    "token_ids",
    "train_byte_bpe",
]

QWEN_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
LLAVA_SPECIAL_TOKENS: tuple[str, ...] = ("<image>", "<video>")

#: The official Qwen2-VL / Qwen2.5-VL chat template (default system turn, ``{"type": "image"}`` parts rendered as
#: ``<|vision_start|><|image_pad|><|vision_end|>``).
QWEN_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

#: A plain ChatML template for LLaVA-OneVision models: string content as is; content parts rendered in order
#: (image -> ``<image>\n``, video -> ``<video>\n``, text -> its text); no default system turn.
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<image>\n"
    "{% elif content['type'] == 'video' %}<video>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def train_byte_bpe(texts: Iterable[str], num_merges: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Learn byte-level BPE merges from ``texts`` with the exact normalizer and pre-tokenizer of ``Qwen2Tokenizer``.

    The ``tokenizers`` trainer is deterministic for a fixed input (checked across processes and hash seeds).

    Returns:
        ``(vocab, merges)``: token -> id (``<|endoftext|>`` is 0, then the 256 byte symbols, then one token per
        merge) and the ordered list of merges (at most ``num_merges``: fewer when no pair is seen twice).
    """
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    trainer_tok = Tokenizer(BPE(unk_token=None, continuing_subword_prefix="", end_of_word_suffix=""))
    trainer_tok.normalizer = normalizers.NFC()
    trainer_tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = BpeTrainer(
        vocab_size=1 + len(alphabet) + num_merges,
        min_frequency=2,
        show_progress=False,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=alphabet,
        limit_alphabet=len(alphabet),
    )
    trainer_tok.train_from_iterator(list(texts), trainer=trainer)
    model = json.loads(trainer_tok.to_str())["model"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else (m[0], m[1]) for m in model["merges"]]
    vocab = dict(model["vocab"])
    # The trainer numbers the byte symbols by first occurrence; renumber so ids do not depend on the corpus text
    # beyond the merges: <|endoftext|> = 0, the sorted byte alphabet, then merged tokens in merge order.
    ordered = ["<|endoftext|>", *alphabet]
    seen = set(ordered)
    for left, right in merges:
        token = left + right
        if token not in seen:
            seen.add(token)
            ordered.append(token)
    missing = set(vocab) - seen
    if missing:  # pragma: no cover - would mean the trainer produced tokens that are neither bytes nor merges
        raise RuntimeError(f"unexpected tokens from the BPE trainer: {sorted(missing)[:5]}")
    return {token: i for i, token in enumerate(ordered)}, merges  # type: ignore[return-value]


def byte_bpe_tokenizer(
    vocab: dict[str, int],
    merges: Sequence[tuple[str, str]],
    *,
    extra_special_tokens: Sequence[str] = (),
    chat_template: str = QWEN_CHAT_TEMPLATE,
) -> Qwen2Tokenizer:
    """A ``Qwen2Tokenizer`` from :func:`train_byte_bpe`'s ``(vocab, merges)`` with the Qwen special tokens.

    Args:
        vocab: token -> id (``<|endoftext|>`` must be in it; it is also the pad token).
        merges: the ordered merges.
        extra_special_tokens: more special tokens after ``<|im_start|>`` ... ``<|video_pad|>`` (LLaVA-OneVision
            needs :data:`LLAVA_SPECIAL_TOKENS`).
        chat_template: the attached chat template.

    Returns:
        The tokenizer: eos ``<|im_end|>``, pad ``<|endoftext|>``, no bos, ``model_max_length`` 32768.
    """
    from transformers import Qwen2Tokenizer

    tokenizer = Qwen2Tokenizer(
        vocab=dict(vocab),
        merges=list(merges),
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    specials = [t for t in (*QWEN_SPECIAL_TOKENS[1:], *extra_special_tokens) if t != QWEN_SPECIAL_TOKENS[0]]
    tokenizer.add_special_tokens({"additional_special_tokens": list(dict.fromkeys(specials))})
    tokenizer.chat_template = chat_template
    tokenizer.model_max_length = 32768
    return tokenizer


def token_ids(tokenizer: Qwen2Tokenizer, tokens: Sequence[str]) -> dict[str, int]:
    """token -> id for each of ``tokens``.

    Raises:
        ValueError: a token is not in the tokenizer's vocabulary.
    """
    ids = {}
    vocab = tokenizer.get_vocab()
    for token in tokens:
        if token not in vocab:
            raise ValueError(f"the tokenizer has no token {token!r}; build it with byte_bpe_tokenizer(...)")
        ids[token] = vocab[token]
    return ids
