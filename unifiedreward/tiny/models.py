"""Small random vision-language models of the reward models' real architectures, built offline from configs.

One parametrised builder serves every small model the package makes: the synthetic world's reward model that the
demo trains from scratch (:mod:`unifiedreward.demo`) and the test fixtures (:mod:`unifiedreward.testing.
tiny_models`, which only choose other sizes in :class:`TinySize`). Nothing is downloaded.

Architectures (:data:`TINY_ARCHITECTURES`): Qwen2.5-VL, Qwen2-VL, Qwen3-VL and LLaVA-OneVision.

Example:
    >>> from unifiedreward.tiny import TinySize, build_model, build_processor
    >>> processor = build_processor("qwen2_vl", tokenizer)          # tokenizer: see unifiedreward.tiny.tokenizer
    >>> model = build_model("qwen2_vl", tokenizer, TinySize(hidden_size=128, num_layers=4), seed=0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unifiedreward.tiny.tokenizer import (
    LLAVA_CHAT_TEMPLATE,
    LLAVA_SPECIAL_TOKENS,
    QWEN_CHAT_TEMPLATE,
    QWEN_SPECIAL_TOKENS,
    token_ids,
)

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedModel, ProcessorMixin, Qwen2Tokenizer

__all__ = ["TINY_ARCHITECTURES", "TinySize", "build_config", "build_model", "build_processor", "check_arch"]

TINY_ARCHITECTURES: tuple[str, ...] = ("qwen2_5_vl", "qwen2_vl", "qwen3_vl", "llava_onevision")

# LLaVA-OneVision geometry: 28x28 tiles of 14x14 patches -> 2x2 = 4 features per tile.
LLAVA_TILE = 28
LLAVA_PATCH = 14
LLAVA_PINPOINTS = [[28, 28], [28, 56], [56, 28], [56, 56]]


@dataclass(frozen=True)
class TinySize:
    """The sizes of a small model (the defaults are the test fixtures' 2 x 64 text, 2 x 32 vision).

    Attributes:
        hidden_size: language-model width (also the vision merger's output width).
        num_layers: language-model layers.
        num_heads, num_kv_heads: attention and key-value heads of the language model.
        intermediate_size: language-model MLP width (default ``2 * hidden_size``).
        vision_depth, vision_size, vision_heads: vision tower layers, width, heads.
        mrope_section: multimodal rope sections (temporal, height, width), summing to ``head_dim / 2``; default
            ``[h - 2 * (h // 3), h // 3, h // 3]`` with ``h = hidden_size / num_heads / 2``.
        window_size: Qwen2.5-VL window attention size in pixels.
        full_attention_blocks: Qwen2.5-VL blocks with full attention (default: the last one).
        initializer_range: std of the random weights of the language model. 0.2 for test fixtures: with the usual
            0.02 the (tied) embedding of the last input token dominates the logits, so every prompt greedily
            continues with the same token and batching bugs go unnoticed; 0.02 to train from scratch.
    """

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    intermediate_size: int | None = None
    vision_depth: int = 2
    vision_size: int = 32
    vision_heads: int = 2
    mrope_section: tuple[int, int, int] | None = None
    window_size: int = 56
    full_attention_blocks: tuple[int, ...] | None = None
    initializer_range: float = 0.2

    def rope_sections(self) -> list[int]:
        """The mrope sections (explicit, or the default split of ``head_dim / 2``)."""
        if self.mrope_section is not None:
            return list(self.mrope_section)
        half = self.hidden_size // self.num_heads // 2
        return [half - 2 * (half // 3), half // 3, half // 3]


def check_arch(arch: str) -> None:
    """Raises ``ValueError`` for an architecture not in :data:`TINY_ARCHITECTURES`."""
    if arch not in TINY_ARCHITECTURES:
        raise ValueError(f"unknown tiny architecture {arch!r}; expected one of {', '.join(TINY_ARCHITECTURES)}")


def build_processor(arch: str, tokenizer: Qwen2Tokenizer) -> ProcessorMixin:
    """The processor (``tokenizer`` + image processor + video processor) of a small ``arch`` model.

    Returns:
        - ``qwen2_5_vl``: ``Qwen2_5_VLProcessor``, patch 14, merge 2, 4..16 merged tokens per image.
        - ``qwen2_vl``: ``Qwen2VLProcessor``, same geometry.
        - ``qwen3_vl``: ``Qwen3VLProcessor``, patch 16 (image sides are rounded to multiples of 32).
        - ``llava_onevision``: ``LlavaOnevisionProcessor``, 28x28 tiles, 4 tokens per tile, anyres pinpoints up
          to 56x56, ``vision_feature_select_strategy="full"``, :data:`LLAVA_CHAT_TEMPLATE`.
        ``tokenizer`` is used as is (not copied).

    Raises:
        ValueError: unknown ``arch``, or a tokenizer that lacks the needed special tokens.
    """
    check_arch(arch)
    if arch == "llava_onevision":
        token_ids(tokenizer, LLAVA_SPECIAL_TOKENS)
        from transformers import LlavaOnevisionImageProcessor, LlavaOnevisionProcessor, LlavaOnevisionVideoProcessor

        size = {"height": LLAVA_TILE, "width": LLAVA_TILE}
        return LlavaOnevisionProcessor(
            image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=LLAVA_PINPOINTS),
            tokenizer=tokenizer,
            video_processor=LlavaOnevisionVideoProcessor(size=size),
            num_image_tokens=(LLAVA_TILE // LLAVA_PATCH) ** 2,
            vision_feature_select_strategy="full",
            chat_template=LLAVA_CHAT_TEMPLATE,
        )

    token_ids(tokenizer, QWEN_SPECIAL_TOKENS)
    from transformers import Qwen2VLImageProcessor

    if arch == "qwen3_vl":
        from transformers import Qwen3VLProcessor, Qwen3VLVideoProcessor

        factor = 32  # patch 16 x merge 2
        size = {"shortest_edge": factor * factor * 4, "longest_edge": factor * factor * 16}
        kwargs: dict[str, Any] = {"size": size, "patch_size": 16, "temporal_patch_size": 2, "merge_size": 2}
        return Qwen3VLProcessor(
            image_processor=Qwen2VLImageProcessor(**kwargs),
            tokenizer=tokenizer,
            video_processor=Qwen3VLVideoProcessor(cap_pixels_per_frame=True, **kwargs),
            chat_template=QWEN_CHAT_TEMPLATE,
        )

    from transformers import Qwen2_5_VLProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    factor = 28  # patch 14 x merge 2
    size = {"shortest_edge": factor * factor * 4, "longest_edge": factor * factor * 16}
    kwargs = {"size": size, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2}
    processor_cls = Qwen2_5_VLProcessor if arch == "qwen2_5_vl" else Qwen2VLProcessor
    return processor_cls(
        image_processor=Qwen2VLImageProcessor(**kwargs),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(cap_pixels_per_frame=True, **kwargs),
        chat_template=QWEN_CHAT_TEMPLATE,
    )


def _text_config(tokenizer: Qwen2Tokenizer, ids: dict[str, int], size: TinySize, **extra: Any) -> dict[str, Any]:
    config = {
        "vocab_size": len(tokenizer),
        "hidden_size": size.hidden_size,
        "intermediate_size": size.intermediate_size or 2 * size.hidden_size,
        "num_hidden_layers": size.num_layers,
        "num_attention_heads": size.num_heads,
        "num_key_value_heads": size.num_kv_heads,
        "max_position_embeddings": 4096,
        "bos_token_id": None,
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "tie_word_embeddings": True,
        "initializer_range": size.initializer_range,
    }
    config.update(extra)
    return config


def _llava_config(tokenizer: Qwen2Tokenizer, size: TinySize) -> Any:
    from transformers import LlavaOnevisionConfig

    ids = token_ids(tokenizer, (*QWEN_SPECIAL_TOKENS, *LLAVA_SPECIAL_TOKENS))
    return LlavaOnevisionConfig(
        vision_config={
            "model_type": "siglip_vision_model",
            "hidden_size": size.vision_size,
            "intermediate_size": 2 * size.vision_size,
            "num_hidden_layers": size.vision_depth,
            "num_attention_heads": size.vision_heads,
            "image_size": LLAVA_TILE,
            "patch_size": LLAVA_PATCH,
            "vision_use_head": False,
        },
        text_config={"model_type": "qwen2", **_text_config(tokenizer, ids, size)},
        image_token_index=ids["<image>"],
        video_token_index=ids["<video>"],
        image_grid_pinpoints=LLAVA_PINPOINTS,
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        tie_word_embeddings=True,
    )


def build_config(arch: str, tokenizer: Qwen2Tokenizer, size: TinySize | None = None) -> Any:
    """The ``transformers`` config of a small ``arch`` model with ``size`` for ``tokenizer``'s vocabulary.

    Raises:
        ValueError: unknown ``arch``, or a tokenizer that lacks the needed special tokens.
    """
    check_arch(arch)
    size = size or TinySize()
    if arch == "llava_onevision":
        return _llava_config(tokenizer, size)
    ids = token_ids(tokenizer, QWEN_SPECIAL_TOKENS)
    common = {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "tie_word_embeddings": True,
    }
    mrope = {"rope_type": "default", "rope_theta": 1e4, "mrope_section": size.rope_sections()}
    vision_common = {"depth": size.vision_depth, "num_heads": size.vision_heads, "spatial_merge_size": 2,
                     "temporal_patch_size": 2, "initializer_range": 0.02}  # fmt: skip
    if arch == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        full = size.full_attention_blocks if size.full_attention_blocks is not None else (size.vision_depth - 1,)
        vision = {**vision_common, "hidden_size": size.vision_size, "intermediate_size": 2 * size.vision_size,
                  "out_hidden_size": size.hidden_size, "patch_size": 14, "window_size": size.window_size,
                  "fullatt_block_indexes": list(full), "tokens_per_second": 2}  # fmt: skip
        return Qwen2_5_VLConfig(text_config=_text_config(tokenizer, ids, size, rope_parameters=mrope),
                                vision_config=vision, **common)  # fmt: skip
    if arch == "qwen2_vl":
        from transformers import Qwen2VLConfig

        vision = {**vision_common, "embed_dim": size.vision_size, "hidden_size": size.hidden_size, "mlp_ratio": 2,
                  "patch_size": 14}  # fmt: skip
        return Qwen2VLConfig(text_config=_text_config(tokenizer, ids, size, rope_parameters=mrope),
                             vision_config=vision, **common)  # fmt: skip
    from transformers import Qwen3VLConfig

    head_dim = size.hidden_size // size.num_heads
    vision = {**vision_common, "hidden_size": size.vision_size, "intermediate_size": 2 * size.vision_size,
              "out_hidden_size": size.hidden_size, "patch_size": 16, "num_position_embeddings": 64,
              "deepstack_visual_indexes": list(range(size.vision_depth))}  # fmt: skip
    text = _text_config(tokenizer, ids, size, head_dim=head_dim, rope_parameters={**mrope, "mrope_interleaved": True})
    return Qwen3VLConfig(text_config=text, vision_config=vision, **common)


def build_model(arch: str, tokenizer: Qwen2Tokenizer, size: TinySize | None = None, seed: int = 0) -> PreTrainedModel:
    """A small random ``*ForConditionalGeneration`` model (float32, CPU, ``eval()`` mode).

    Args:
        arch: one of :data:`TINY_ARCHITECTURES`.
        tokenizer: the tokenizer whose vocabulary and special-token ids the model uses.
        size: the sizes (default :class:`TinySize`'s, the test fixtures').
        seed: seed of the random initialisation; the same ``(arch, tokenizer, size, seed)`` gives identical
            weights. The global torch RNG is restored afterwards.

    Returns:
        The model, with a ``generation_config`` whose ``eos_token_id`` is ``<|im_end|>`` and ``pad_token_id`` is
        ``<|endoftext|>`` and greedy decoding, so ``generate`` runs without warnings.

    Raises:
        ValueError: unknown ``arch``, or a tokenizer that lacks the needed special tokens.
    """
    import torch
    from transformers import AutoModelForImageTextToText

    config = build_config(arch, tokenizer, size)
    cpu_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    finally:
        torch.random.set_rng_state(cpu_state)
    ids = token_ids(tokenizer, ("<|im_end|>", "<|endoftext|>"))
    generation_config = model.generation_config
    generation_config.bos_token_id = None
    generation_config.eos_token_id = ids["<|im_end|>"]
    generation_config.pad_token_id = ids["<|endoftext|>"]
    generation_config.do_sample = False
    return model.eval()
