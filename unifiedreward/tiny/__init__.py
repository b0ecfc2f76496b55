"""Small models built offline: a byte-level BPE tokenizer trainer and random vision-language models.

* :mod:`unifiedreward.tiny.tokenizer`: :func:`train_byte_bpe` (merges learned with ``Qwen2Tokenizer``'s
  pre-tokenizer), :func:`byte_bpe_tokenizer`, the Qwen / LLaVA special tokens and chat templates.
* :mod:`unifiedreward.tiny.models`: one parametrised builder (:class:`TinySize`, :func:`build_config`,
  :func:`build_model`, :func:`build_processor`) for Qwen2.5-VL, Qwen2-VL, Qwen3-VL and LLaVA-OneVision.

The synthetic world's reward model (:mod:`unifiedreward.synth`, :mod:`unifiedreward.demo`) and the test fixtures
(:mod:`unifiedreward.testing.tiny_models`, which re-exports these names) are built with them.
"""

from unifiedreward.tiny.models import TINY_ARCHITECTURES, TinySize, build_config, build_model, build_processor
from unifiedreward.tiny.tokenizer import (
    LLAVA_CHAT_TEMPLATE,
    LLAVA_SPECIAL_TOKENS,
    QWEN_CHAT_TEMPLATE,
    QWEN_SPECIAL_TOKENS,
    byte_bpe_tokenizer,
    token_ids,
    train_byte_bpe,
)

__all__ = [
    "LLAVA_CHAT_TEMPLATE",
    "LLAVA_SPECIAL_TOKENS",
    "QWEN_CHAT_TEMPLATE",
    "QWEN_SPECIAL_TOKENS",
    "TINY_ARCHITECTURES",
    "TinySize",
    "build_config",
    "build_model",
    "build_processor",
    "byte_bpe_tokenizer",
    "token_ids",
    "train_byte_bpe",
]
