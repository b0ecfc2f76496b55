"""A tiny text-to-video model of the synthetic world: an AnimateDiff pipeline built from diffusers configs and
trained from scratch.

The video closed loop (:mod:`unifiedreward.demo.video_loop`) needs a video model that draws the world's clips
imperfectly and loads through the same code as a released AnimateDiff (``DiffusionPipeline.from_pretrained``), so
that ``VideoDPO/data_generation.py``, ``sift_dpo_data.py`` and ``train.py`` (family ``animatediff``) run on it
unchanged:

* :func:`build_video_pipeline` — a :class:`diffusers.AnimateDiffPipeline` of random weights: the parts of the tiny
  text-to-image pipeline (:func:`unifiedreward.demo.t2i.components`: word-level tokenizer over the clip captions'
  words, 2-layer CLIP text encoder, 2x ``AutoencoderKL``, 2-level ``UNet2DConditionModel``, v-prediction DDIM with
  trailing timesteps) plus a :class:`diffusers.MotionAdapter` (one temporal transformer per block) that turns the
  UNet into a ``UNetMotionModel``.
* :func:`~unifiedreward.demo.t2i.pretrain` trains it on clips ``[N, F, 3, S, S]`` (autoencoder on single frames,
  then UNet + text encoder on the latent clips).

Why AnimateDiff and not Wan: a 0.14M-parameter ``WanTransformer3DModel`` learned nothing usable in the minutes a
2-core CPU allows (the issue's feasibility run); the AnimateDiff UNet is convolutional at low resolution, learns
the world's colours and motion in ~1,000 steps, and is the second family ``VideoDPO/train.py`` trains.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unifiedreward.demo.t2i import CAPTION_WORDS, components

__all__ = ["VIDEO_WORDS", "build_video_pipeline", "clip_batch", "render_small_clip"]

#: The words of the clip captions (``a red circle moving up and turning blue``) on top of the scene captions'.
VIDEO_WORDS: tuple[str, ...] = (*CAPTION_WORDS, "moving", "and", "turning", "up", "down")


def build_video_pipeline(path: Path, *, size: int = 32, seed: int = 0) -> Path:
    """Save a randomly initialised tiny :class:`diffusers.AnimateDiffPipeline` (module docstring) to ``path``."""
    from diffusers import AnimateDiffPipeline, MotionAdapter

    parts = components(size, words=VIDEO_WORDS, seed=seed)
    adapter = MotionAdapter(block_out_channels=(32, 64), motion_layers_per_block=1, motion_num_attention_heads=4,
                            motion_norm_num_groups=8, motion_max_seq_length=32, use_motion_mid_block=False)  # fmt: skip
    pipe = AnimateDiffPipeline(**parts, motion_adapter=adapter, feature_extractor=None, image_encoder=None)
    pipe.save_pretrained(path)
    return Path(path)


def render_small_clip(spec: Any, rng: np.random.Generator, size: int, num_frames: int) -> np.ndarray:
    """``spec`` drawn by the world's clip renderer: ``[F, size, size, 3]`` uint8."""
    from unifiedreward.synth.world import render_clip

    return render_clip(spec, rng, size, num_frames).frames


def clip_batch(clips: Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 clips ``[F, S, S, 3]`` -> ``[N, F, 3, S, S]`` float in [-1, 1]."""
    array = np.stack(clips)
    return torch.from_numpy(array).permute(0, 1, 4, 2, 3).float() / 127.5 - 1.0
