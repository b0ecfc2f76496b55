"""Full-size model shapes with random weights, for benchmarks on a GPU (no download).

:func:`build_qwen25_vl` gives either the tiny test model or a Qwen2.5-VL-7B-shaped one: the released checkpoint's
text and vision configuration with random weights and the tiny tokenizer (its ids are a subset of the 152,064-entry
vocabulary), and the real image-processor pixel budget so a 448x448 image becomes 256 merged tokens.
"""

from __future__ import annotations

from typing import Any

#: Text config of Qwen2.5-VL-7B-Instruct (7.6B language model).
QWEN25_VL_7B_TEXT: dict[str, Any] = dict(
    hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
    max_position_embeddings=32768, vocab_size=152064,
    rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
)  # fmt: skip
#: Vision config of Qwen2.5-VL-7B-Instruct (the 677M-parameter tower; window 112 px = 4x4 merged units).
QWEN25_VL_7B_VISION: dict[str, Any] = dict(
    depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584, patch_size=14,
    spatial_merge_size=2, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[7, 15, 23, 31],
    tokens_per_second=2,
)  # fmt: skip


def build_qwen25_vl(
    shape: str = "tiny",
    *,
    device: str = "cpu",
    dtype: Any = None,
    text_layers: int | None = None,
    vision_depth: int | None = None,
    attn_implementation: str = "sdpa",
) -> tuple[Any, Any]:
    """``(model, processor)`` of a Qwen2.5-VL with random weights, in eval mode.

    Args:
        shape: ``"tiny"`` (the test model) or ``"7b"`` (Qwen2.5-VL-7B shape, 8.29B parameters).
        device: where to build the weights (``"meta"`` builds nothing, for shape checks).
        dtype: torch dtype of the weights (default float32).
        text_layers: shrink the 7B language model to this many layers (e.g. 1 to try the script on a CPU).
        vision_depth: shrink the 7B vision tower to this many blocks.
        attn_implementation: ``"sdpa"``, ``"eager"`` or ``"flash_attention_2"``.
    """
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor

    from unifiedreward.testing.tiny_models import build_tiny_model, build_tiny_processor

    dtype = dtype or torch.float32
    processor = build_tiny_processor("qwen2_5_vl")
    if shape == "tiny":
        return build_tiny_model("qwen2_5_vl", processor.tokenizer).to(device=device, dtype=dtype).eval(), processor
    if shape != "7b":
        raise ValueError(f"shape must be 'tiny' or '7b', got {shape!r}")
    processor.image_processor = Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12845056, patch_size=14,
                                                      temporal_patch_size=2, merge_size=2)  # fmt: skip
    tok = processor.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
                                                     "<|vision_end|>", "<|im_end|>", "<|endoftext|>")}  # fmt: skip
    text = dict(
        QWEN25_VL_7B_TEXT, bos_token_id=None, eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"]
    )
    vision = dict(QWEN25_VL_7B_VISION)
    if text_layers:
        text["num_hidden_layers"] = text_layers
    if vision_depth:
        vision["depth"] = vision_depth
        vision["fullatt_block_indexes"] = [i for i in vision["fullatt_block_indexes"] if i < vision_depth] or [0]
    config = Qwen2_5_VLConfig(
        text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )  # fmt: skip
    config._attn_implementation = attn_implementation
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration(config).to(dtype)
    return model.eval(), processor
