"""A tiny text-to-image model of the synthetic world, built from diffusers configs and trained from scratch.

The diffusion closed loop (:mod:`unifiedreward.demo.diffusion_loop`) needs a text-to-image model that draws the
world's scenes imperfectly and loads through the same code as SD 1.5 (``DiffusionPipeline.from_pretrained``), so
that ``DiffusionDPO/data_generation.py``, ``sift_dpo_data.py`` and ``train.py`` run on it unchanged:

* :func:`build_pipeline` — a :class:`diffusers.StableDiffusionPipeline` of random weights: a word-level tokenizer
  over the world's caption vocabulary (:func:`word_tokenizer`), a 2-layer ``CLIPTextModel``
  (width 32), an ``AutoencoderKL`` with one 2x downsampling (``size`` px images <-> ``size / 2`` px latents of 4
  channels), a 2-level ``UNet2DConditionModel`` with cross-attention at the lower level, and a v-prediction
  ``DDIMScheduler`` (trailing timesteps).
* :func:`pretrain` — two plain loops over rendered scenes (:func:`scene_batch`): the autoencoder (MSE + a small KL
  term), then its latent scale (``scaling_factor`` = 1 / std of the latents, as SD's 0.18215 was chosen), then the
  UNet and the text encoder together on the v-prediction loss. Schedules are in steps, so runs reproduce.

Images are drawn at :data:`~unifiedreward.synth.world.MIN_IMAGE_SIZE` (48 px) by the world's renderer and reduced
to ``size`` px with a box filter; the loop's scenes hold one object (colour, shape, position vary; count is 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["build_pipeline", "components", "pretrain", "render_small", "scene_batch", "word_tokenizer"]

#: The words of the world's scene captions (``a red circle on the left``, ...).
CAPTION_WORDS: tuple[str, ...] = (
    "a", "an", "one", "two", "three", "on", "the", "at", "left", "right", "top", "bottom",
    "red", "green", "blue", "yellow", "purple", "orange",
    "circle", "square", "triangle", "circles", "squares", "triangles",
)  # fmt: skip
MAX_TOKENS = 12


def word_tokenizer(words: Sequence[str] = CAPTION_WORDS) -> Any:
    """A word-level tokenizer over ``words`` (a ``transformers.PreTrainedTokenizerFast``: one token per word,
    ``<unk>`` for anything else, ``<s> ... </s>`` around a caption, ``</s>`` as padding as CLIP pads), with
    ``model_max_length`` :data:`MAX_TOKENS`; it saves and loads with the pipeline like CLIP's."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["<s>", "</s>", "<unk>", *words])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="</s>",
                                   unk_token="<unk>", model_max_length=MAX_TOKENS)  # fmt: skip


def components(size: int, *, words: Sequence[str] = CAPTION_WORDS, seed: int = 0) -> dict[str, Any]:
    """Randomly initialised parts of the tiny pipelines (module docstring): ``tokenizer``, ``text_encoder``,
    ``vae``, ``unet`` (a 2-D ``UNet2DConditionModel``) and ``scheduler``, seeded by ``seed``."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    if size % 4:
        raise ValueError(f"size must be a multiple of 4 (2x VAE, 2-level UNet), got {size}")
    torch.manual_seed(seed)
    tokenizer = word_tokenizer(words)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32, intermediate_size=64, num_attention_heads=4,
        num_hidden_layers=2, vocab_size=len(tokenizer), max_position_embeddings=MAX_TOKENS))  # fmt: skip
    vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=[16, 32], layers_per_block=1,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        latent_channels=4, norm_num_groups=8, mid_block_add_attention=False,
                        sample_size=size)  # fmt: skip
    unet = UNet2DConditionModel(sample_size=size // 2, in_channels=4, out_channels=4, block_out_channels=(32, 64),
                                layers_per_block=1, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                attention_head_dim=8, norm_num_groups=8)  # fmt: skip
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", prediction_type="v_prediction",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1,
                              timestep_spacing="trailing")  # fmt: skip
    return {"tokenizer": tokenizer, "text_encoder": text_encoder, "vae": vae, "unet": unet, "scheduler": scheduler}


def build_pipeline(path: Path, *, size: int = 32, seed: int = 0) -> Path:
    """Save a randomly initialised tiny :class:`diffusers.StableDiffusionPipeline` (module docstring) to ``path``."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(**components(size, seed=seed), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)  # fmt: skip
    pipe.save_pretrained(path)
    return Path(path)


def render_small(spec: Any, rng: np.random.Generator, size: int) -> Any:
    """``spec`` drawn by the world's renderer at 48 px and reduced to ``size`` px (box filter); a PIL image."""
    from PIL import Image

    from unifiedreward.synth.world import MIN_IMAGE_SIZE, render_scene

    image = render_scene(spec, rng, MIN_IMAGE_SIZE).image
    return image if size == MIN_IMAGE_SIZE else image.resize((size, size), Image.BOX)


def scene_batch(images: Sequence[Any]) -> torch.Tensor:
    """PIL images -> ``[N, 3, S, S]`` float in [-1, 1]."""
    array = np.stack([np.asarray(image.convert("RGB")) for image in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def pretrain(path: Path, pixels: torch.Tensor, captions: Sequence[str], *, vae_steps: int, unet_steps: int,
             batch_size: int = 32, vae_batch_size: int | None = None, vae_lr: float = 3e-3, unet_lr: float = 1e-3,
             seed: int = 0, progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Train the pipeline at ``path`` from scratch on ``pixels`` (in [-1, 1]) and their ``captions``; saves it back
    to ``path`` and returns the loss history ``{"vae": [...], "unet": [...], "scaling_factor"}``.

    ``pixels``: images ``[N, 3, S, S]`` (a StableDiffusionPipeline) or clips ``[N, F, 3, S, S]`` (an
    AnimateDiffPipeline, whose ``UNetMotionModel`` sees latents ``[B, 4, F, S/2, S/2]`` and one text row per frame,
    as in :meth:`unifiedreward.dpo.video_models.VideoFamily.predict`). ``batch_size`` counts images or clips; the
    autoencoder trains on ``vae_batch_size`` single images or frames (default: ``batch_size`` images, or all the
    frames of ``batch_size`` clips).

    Autoencoder: ``mse(decode(z), x) + 1e-4 * KL / (3 S^2)`` with ``z`` a posterior sample. UNet and text encoder:
    ``mse(unet(x_t, t, text), v)`` with ``v = sqrt(abar_t) eps - sqrt(1 - abar_t) z0`` and ``t`` uniform, AdamW with
    a 5% linear warm-up and a cosine decay to 10%.
    """
    from diffusers import DDPMScheduler, DiffusionPipeline
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    pipe = DiffusionPipeline.from_pretrained(str(path))
    vae, unet, text_encoder, tokenizer = pipe.vae, pipe.unet, pipe.text_encoder, pipe.tokenizer
    history: dict[str, Any] = {"vae": [], "unet": []}

    frames = pixels.shape[1] if pixels.ndim == 5 else 0
    flat = pixels.flatten(0, 1) if frames else pixels

    def batches(steps: int, desc: str, count: int, size: int):
        bar = tqdm(range(steps), desc=desc, disable=not progress, leave=False)
        for _ in bar:
            index = torch.randint(0, count, (size,), generator=generator)
            yield bar, index

    vae.train()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=vae_lr, weight_decay=0.0)
    vae_batch = vae_batch_size or batch_size * max(1, frames)
    for bar, index in batches(vae_steps, "pretrain autoencoder", len(flat), vae_batch):
        x = flat[index]
        posterior = vae.encode(x).latent_dist
        loss = torch.nn.functional.mse_loss(vae.decode(posterior.sample(generator)).sample, x)
        loss = loss + 1e-4 * posterior.kl().mean() / x[0].numel()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        history["vae"].append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.4f}")
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        latents = torch.cat([vae.encode(flat[i : i + 256]).latent_dist.mode() for i in range(0, len(flat), 256)])
    if frames:  # [N*F, 4, h, w] -> [N, 4, F, h, w]
        latents = latents.reshape(len(pixels), frames, *latents.shape[1:]).permute(0, 2, 1, 3, 4).contiguous()
    scaling = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=scaling)
    latents = latents * scaling
    history["scaling_factor"] = scaling

    tokens = tokenizer(list(captions), padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                       return_tensors="pt").input_ids  # fmt: skip
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    params = [*unet.parameters(), *text_encoder.parameters()]
    unet.train()
    text_encoder.train()
    optimizer = torch.optim.AdamW(params, lr=unet_lr, weight_decay=0.0)
    warmup = max(1, unet_steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) * (
        0.1 + 0.45 * (1 + np.cos(np.pi * min(1.0, s / max(1, unet_steps))))))  # fmt: skip
    for bar, index in batches(unet_steps, "pretrain text-to-video" if frames else "pretrain text-to-image",
                              len(latents), batch_size):  # fmt: skip
        z0 = latents[index]
        noise = torch.randn(z0.shape, generator=generator)
        t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(index),), generator=generator)
        noisy = noise_scheduler.add_noise(z0, noise, t)
        target = noise_scheduler.get_velocity(z0, noise, t)
        embeds = text_encoder(tokens[index])[0]
        if frames:
            embeds = embeds.repeat_interleave(frames, dim=0)
        loss = torch.nn.functional.mse_loss(unet(noisy, t, encoder_hidden_states=embeds).sample, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        history["unet"].append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.4f}")
    unet.eval()
    text_encoder.eval()
    pipe.save_pretrained(path)
    return history
