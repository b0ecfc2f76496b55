"""Tiny offline video pipelines (Wan 2.1-style flow matching, AnimateDiff ε-prediction) for tests and benchmarks.

Built from diffusers configs with offline tokenizers (no hub), saved with ``save_pretrained`` so every consumer loads
them by path exactly like a hub checkpoint. Sizes follow ``shared/guides/stack-notes.md`` §3 (a few tens of thousand
parameters for Wan, ~1M for AnimateDiff: one layer per block); outputs are noise, which is all the plumbing tests need.

* :func:`save_tiny_wan` → ``<dir>`` holding a :class:`diffusers.WanPipeline` (UMT5 encoder + ``T5Tokenizer`` of
  single characters, ``AutoencoderKLWan``, ``WanTransformer3DModel``, ``FlowMatchEulerDiscreteScheduler``).
* :func:`save_tiny_animatediff` → ``<dir>`` holding a :class:`diffusers.AnimateDiffPipeline` (the saved pipeline
  carries its ``motion_adapter``; the UNet is saved as the combined ``UNetMotionModel``).
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import torch

__all__ = ["WAN_SHAPE", "clip_tokenizer", "save_tiny_animatediff", "save_tiny_wan", "t5_tokenizer", "tiny_wan_transformer"]

#: Constructor arguments of the tiny Wan transformer (patch (1, 2, 2), 2 layers, text_dim 32).
WAN_SHAPE: dict[str, Any] = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16,
                                 out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32, num_layers=2,
                                 cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=32)  # fmt: skip


def tiny_wan_transformer(**overrides: Any) -> Any:
    """A :class:`diffusers.WanTransformer3DModel` with :data:`WAN_SHAPE` (``overrides`` replace entries)."""
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(**{**WAN_SHAPE, **overrides})


def t5_tokenizer() -> Any:
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [(c, -3.0) for c in string.ascii_lowercase + string.digits]
    pieces += [("\u2581" + c, -2.5) for c in string.ascii_lowercase]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def save_tiny_wan(path: str | Path, *, seed: int = 0) -> Path:
    """Build and save a tiny :class:`diffusers.WanPipeline` under ``path`` (returned)."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    tokenizer = t5_tokenizer()
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=37, num_layers=2,
                                               num_heads=4, relative_attention_num_buckets=8))  # fmt: skip
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])  # fmt: skip
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=tiny_wan_transformer(),
                       scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0))  # fmt: skip
    pipe.save_pretrained(path)
    return Path(path)


def clip_tokenizer(folder: Path) -> Any:
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in string.ascii_lowercase + string.digits:
        for piece in (c, c + "</w>"):
            vocab.setdefault(piece, len(vocab))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    tokenizer.model_max_length = 16
    return tokenizer


def save_tiny_animatediff(path: str | Path, *, seed: int = 0) -> Path:
    """Build and save a tiny :class:`diffusers.AnimateDiffPipeline` under ``path`` (returned)."""
    import tempfile

    from diffusers import AnimateDiffPipeline, AutoencoderKL, DDIMScheduler, MotionAdapter, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    path = Path(path)
    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = clip_tokenizer(Path(tmp))
    text_encoder = CLIPTextModel(CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32,
                                                intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                                                vocab_size=len(tokenizer), max_position_embeddings=16))  # fmt: skip
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=16, in_channels=4,
                                out_channels=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
                                norm_num_groups=2)  # fmt: skip
    adapter = MotionAdapter(block_out_channels=(32, 64), motion_layers_per_block=1, motion_norm_num_groups=2,
                            motion_num_attention_heads=4)  # fmt: skip
    vae = AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        latent_channels=4, norm_num_groups=32)  # fmt: skip
    scheduler = DDIMScheduler(beta_schedule="linear", clip_sample=False)
    pipe = AnimateDiffPipeline(unet=unet, motion_adapter=adapter, vae=vae, text_encoder=text_encoder,
                               tokenizer=tokenizer, scheduler=scheduler, feature_extractor=None,
                               image_encoder=None)  # fmt: skip
    pipe.save_pretrained(path)
    return path
