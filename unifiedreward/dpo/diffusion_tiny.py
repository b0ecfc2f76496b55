"""Tiny offline text-to-image pipelines (SD-style UNet, SD3-style transformer) for tests and benchmarks, and the SDXL
UNet shape for GPU benchmarks.

Built from diffusers configs with offline tokenizers (no hub; the tokenizers of :mod:`unifiedreward.dpo.video_tiny`),
saved with ``save_pretrained`` so every consumer loads them by path like a hub checkpoint. Sizes follow
``shared/guides/stack-notes.md`` §3 (UNet 1.4M parameters, SD3 transformer ~80k); outputs are noise.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["SDXL_UNET", "TINY_UNET", "save_tiny_sd", "save_tiny_sd3", "save_tiny_sdxl"]

#: The tiny SD-style UNet (sample 32 -> 32 px images with the 2-level VAE... 8x8 latents at 16 px).
TINY_UNET: dict[str, Any] = dict(block_out_channels=(32, 64), layers_per_block=2, sample_size=16, in_channels=4,
                                 out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                 up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                 norm_num_groups=32)  # fmt: skip

#: The SDXL base / SDXL-Turbo UNet (2.6B parameters; random weights for throughput runs).
SDXL_UNET: dict[str, Any] = dict(sample_size=128, in_channels=4, out_channels=4,
                                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                                 up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                                 block_out_channels=(320, 640, 1280), layers_per_block=2,
                                 transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
                                 cross_attention_dim=2048, addition_embed_type="text_time",
                                 addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
                                 use_linear_projection=True, norm_num_groups=32)  # fmt: skip


def _vae(**extra: Any) -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                         down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                         latent_channels=4, norm_num_groups=32, **extra)  # fmt: skip


def _clip_config(vocab_size: int, **extra: Any) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=37,
                          num_attention_heads=4, num_hidden_layers=2, vocab_size=vocab_size,
                          max_position_embeddings=16, **extra)  # fmt: skip


def save_tiny_sd(path: str | Path, *, seed: int = 0, prediction_type: str = "epsilon") -> Path:
    """Build and save a tiny :class:`diffusers.StableDiffusionPipeline` (DDIM sampler) under ``path``."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    from unifiedreward.dpo.video_tiny import clip_tokenizer

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = clip_tokenizer(Path(tmp))
    pipe = StableDiffusionPipeline(unet=UNet2DConditionModel(**TINY_UNET), vae=_vae(),
                                   text_encoder=CLIPTextModel(_clip_config(len(tokenizer))), tokenizer=tokenizer,
                                   scheduler=DDIMScheduler(clip_sample=False, steps_offset=1,
                                                          prediction_type=prediction_type),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)  # fmt: skip
    pipe.save_pretrained(path)
    return Path(path)


def save_tiny_sdxl(path: str | Path, *, seed: int = 0) -> Path:
    """Build and save a tiny :class:`diffusers.StableDiffusionXLPipeline` (two CLIP encoders, pooled embeddings,
    micro-conditioning; Euler sampler as SDXL-Turbo) under ``path``."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    from unifiedreward.dpo.video_tiny import clip_tokenizer

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = clip_tokenizer(Path(tmp))
    unet = UNet2DConditionModel(**{**TINY_UNET, "cross_attention_dim": 64, "addition_embed_type": "text_time",
                                   "addition_time_embed_dim": 8, "projection_class_embeddings_input_dim": 6 * 8 + 32})  # fmt: skip
    pipe = StableDiffusionXLPipeline(vae=_vae(), text_encoder=CLIPTextModel(_clip_config(len(tokenizer))),
                                     text_encoder_2=CLIPTextModelWithProjection(_clip_config(len(tokenizer),
                                                                                             projection_dim=32)),
                                     tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet,
                                     scheduler=EulerDiscreteScheduler(timestep_spacing="trailing"))  # fmt: skip
    pipe.save_pretrained(path)
    return Path(path)


def save_tiny_sd3(path: str | Path, *, seed: int = 0) -> Path:
    """Build and save a tiny :class:`diffusers.StableDiffusion3Pipeline` (flow matching) under ``path``."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection, T5Config, T5EncoderModel

    from unifiedreward.dpo.video_tiny import clip_tokenizer, t5_tokenizer

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = clip_tokenizer(Path(tmp))
    t5_tokenizer = t5_tokenizer()
    te1 = CLIPTextModelWithProjection(_clip_config(len(tokenizer), projection_dim=32))
    te2 = CLIPTextModelWithProjection(_clip_config(len(tokenizer), projection_dim=32))
    t5 = T5EncoderModel(T5Config(vocab_size=len(t5_tokenizer), d_model=32, d_kv=8, d_ff=37, num_layers=2,
                                 num_heads=4, relative_attention_num_buckets=8))  # fmt: skip
    transformer = SD3Transformer2DModel(sample_size=16, patch_size=2, in_channels=4, num_layers=2,
                                        attention_head_dim=8, num_attention_heads=4, joint_attention_dim=32,
                                        caption_projection_dim=32, pooled_projection_dim=64, out_channels=4)  # fmt: skip
    pipe = StableDiffusion3Pipeline(transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
                                    vae=_vae(shift_factor=0.0609, scaling_factor=1.5035), text_encoder=te1,
                                    tokenizer=tokenizer, text_encoder_2=te2, tokenizer_2=tokenizer,
                                    text_encoder_3=t5, tokenizer_3=t5_tokenizer)  # fmt: skip
    pipe.save_pretrained(path)
    return Path(path)
