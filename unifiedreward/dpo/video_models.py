"""The two video model families VideoDPO trains, behind one interface (:class:`VideoFamily`).

* ``wan`` — Wan 2.1 T2V (flow matching, :class:`diffusers.WanTransformer3DModel`, :class:`AutoencoderKLWan`,
  UMT5 text encoder). Latents ``z = (E(x) - latents_mean) / latents_std`` of shape ``[B, 16, 1 + (F-1)/4, H/8,
  W/8]``. A noise level σ ∈ (0, 1) is drawn per pair, either logit-normally (``σ = sigmoid(m + s·n)``, n ~ N(0,1),
  SD3's default) or uniformly, as an index into the flow-matching schedule shifted by k (``--shift``, 3.0:
  ``σ = k·u / (1 + (k-1)·u)``); ``x_t = (1 - σ)·z + σ·ε``, the model sees ``t = 1000·σ`` and predicts the
  velocity, target ``v = ε - z`` (Flow-DPO).
* ``animatediff`` — AnimateDiff (SD 1.5 UNet + motion adapter as :class:`diffusers.UNetMotionModel`, ε-prediction,
  CLIP text encoder). Latents ``z = E(x)·scaling_factor`` per frame, arranged ``[B, 4, F, H/8, W/8]``. Timestep
  ``t ~ U{0..T-1}`` of the DDPM training schedule built from the pipeline's scheduler config; ``x_t = √ᾱ_t·z +
  √(1-ᾱ_t)·ε``; target ε (``v_prediction`` schedulers: ``scheduler.get_velocity``) (Diffusion-DPO).

Every family method works on a batch of *pairs*: the caller draws one timestep and one noise tensor per pair and
applies both to the winner and the loser (see :mod:`unifiedreward.dpo.video_train`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from unifiedreward.dpo.diffusers_common import ddpm_scheduler, noisy_and_target, sample_timesteps

logger = logging.getLogger(__name__)

__all__ = ["FAMILIES", "VideoFamily", "detect_family", "load_family"]

FAMILIES = ("wan", "animatediff")


def detect_family(model: str) -> str:
    """``"wan"`` or ``"animatediff"`` from a pipeline's ``model_index.json`` (path or hub id)."""
    from diffusers import DiffusionPipeline

    config = DiffusionPipeline.load_config(model)
    name = config.get("_class_name", "")
    if name.startswith("Wan"):
        return "wan"
    if name.startswith("AnimateDiff"):
        return "animatediff"
    raise ValueError(f"{model}: unsupported pipeline {name!r} (expected a WanPipeline or an AnimateDiffPipeline)")


@dataclass
class VideoFamily:
    """A loaded denoiser plus the frozen pieces needed to train it.

    Attributes:
        name: ``"wan"`` or ``"animatediff"``.
        model: the denoiser (``WanTransformer3DModel`` / ``UNetMotionModel``), trainable.
        vae: the frozen VAE.
        scheduler: the training scheduler: flow matching shifted by ``shift`` (Wan), DDPM from the pipeline's config
            (AnimateDiff).
        model_subfolder: where the denoiser lives in the pipeline folder (``transformer`` / ``unet``).
        timestep_sampling: Wan only: ``"logit_normal"`` or ``"shift"``.
        logit_mean, logit_std, shift: parameters of the Wan noise-level draw.
    """

    name: str
    model: Any
    vae: Any
    scheduler: Any
    model_subfolder: str
    timestep_sampling: str = "logit_normal"
    logit_mean: float = 0.0
    logit_std: float = 1.0
    shift: float = 3.0

    @property
    def prediction(self) -> str:
        """``"flow_matching"`` (velocity) for Wan, else the scheduler's (``epsilon`` / ``v_prediction``)."""
        return "flow_matching" if self.name == "wan" else self.scheduler.config.prediction_type

    @torch.no_grad()
    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """VAE latents of ``video`` ``[B, 3, F, H, W]`` in [-1, 1] → ``[B, C, F', h, w]`` (normalised as above)."""
        vae = self.vae
        video = video.to(device=vae.device, dtype=vae.dtype)
        if self.name == "wan":
            latents = vae.encode(video).latent_dist.mode()
            shape = (1, -1, 1, 1, 1)
            mean = torch.tensor(vae.config.latents_mean, device=latents.device, dtype=latents.dtype).view(shape)
            std = torch.tensor(vae.config.latents_std, device=latents.device, dtype=latents.dtype).view(shape)
            return (latents - mean) / std
        b, c, f, h, w = video.shape
        frames = video.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
        latents = vae.encode(frames).latent_dist.mode() * vae.config.scaling_factor
        return latents.reshape(b, f, *latents.shape[1:]).permute(0, 2, 1, 3, 4)

    def draw_timesteps(
        self, batch: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One timestep per pair (CPU): ``(timesteps [B], sigmas [B] or None)``
        (:func:`unifiedreward.dpo.diffusers_common.sample_timesteps`; Wan's ``shift`` mode indexes the shifted
        schedule uniformly, i.e. ``σ = k·u / (1 + (k-1)·u)``)."""
        if self.name == "wan":
            if self.timestep_sampling == "logit_normal":
                return sample_timesteps(batch, "logit_normal", generator=generator, logit_mean=self.logit_mean,
                                        logit_std=self.logit_std, flow_scheduler=self.scheduler)  # fmt: skip
            if self.timestep_sampling != "shift":
                raise ValueError(f"timestep_sampling must be logit_normal or shift, got {self.timestep_sampling!r}")
            count = len(self.scheduler.timesteps)
            index = (torch.rand(batch, generator=generator) * count).long().clamp(0, count - 1)
            return self.scheduler.timesteps[index].float(), self.scheduler.sigmas[index].float()
        steps = self.scheduler.config.num_train_timesteps
        return sample_timesteps(batch, "uniform", num_train_timesteps=steps, generator=generator)

    def noisy_and_target(
        self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor, sigmas: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_t, target)`` for ``latents``/``noise`` ``[N, C, F, h, w]`` (formulas above)."""
        return noisy_and_target(latents, noise, timesteps, scheduler=self.scheduler, sigmas=sigmas,
                                prediction_type=self.prediction)  # fmt: skip

    def predict(self, model: Any, noisy: torch.Tensor, timesteps: torch.Tensor, embeds: torch.Tensor) -> torch.Tensor:
        """The denoiser's output for ``noisy`` ``[N, C, F, h, w]``, ``timesteps`` ``[N]``, text ``embeds`` ``[N, L, D]``."""
        dtype = next(model.parameters()).dtype
        noisy, embeds = noisy.to(dtype), embeds.to(device=noisy.device, dtype=dtype)
        timesteps = timesteps.to(noisy.device)
        if self.name == "wan":  # the flow scheduler's timesteps are σ·T already
            return model(hidden_states=noisy, timestep=timesteps, encoder_hidden_states=embeds, return_dict=False)[0]
        # UNetMotionModel folds frames into the batch and expects one text row per frame (as the pipeline passes).
        embeds = embeds.repeat_interleave(noisy.shape[2], dim=0)
        return model(noisy, timesteps, encoder_hidden_states=embeds, return_dict=False)[0]


def load_family(
    model: str,
    *,
    family: str | None = None,
    motion_adapter: str | None = None,
    dtype: torch.dtype = torch.float32,
    vae_dtype: torch.dtype = torch.float32,
    revision: str | None = None,
    **sampling: Any,
) -> VideoFamily:
    """Load the denoiser, VAE and scheduler of a Wan / AnimateDiff pipeline (path or hub id); no text encoder.

    Args:
        model: the pipeline folder or hub id.
        family: ``"wan"`` / ``"animatediff"`` (default: from ``model_index.json``).
        motion_adapter: AnimateDiff: a :class:`diffusers.MotionAdapter` (path or hub id) combined with the
            pipeline's 2-D UNet, for bases saved without one (e.g. an SD 1.5 checkpoint).
        dtype: dtype of the denoiser; vae_dtype: of the VAE (Wan's VAE is usually kept in float32).
        revision: hub revision.
        **sampling: ``timestep_sampling``, ``logit_mean``, ``logit_std``, ``shift`` (Wan).
    """
    family = family or detect_family(model)
    if family == "wan":
        from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanTransformer3DModel

        net = WanTransformer3DModel.from_pretrained(model, subfolder="transformer", dtype=dtype, revision=revision)
        vae = AutoencoderKLWan.from_pretrained(model, subfolder="vae", dtype=vae_dtype, revision=revision)
        # Wan's released scheduler is UniPC (sampling only); training draws from a flow-matching schedule whose
        # shift is ours (``shift``, Wan 2.1's sampling shift 3.0 by default).
        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=sampling.get("shift", 3.0))
        subfolder = "transformer"
    elif family == "animatediff":
        from diffusers import AutoencoderKL, MotionAdapter, UNet2DConditionModel, UNetMotionModel

        if motion_adapter:
            unet = UNet2DConditionModel.from_pretrained(model, subfolder="unet", revision=revision)
            adapter = MotionAdapter.from_pretrained(motion_adapter)
            net = UNetMotionModel.from_unet2d(unet, adapter).to(dtype)
        else:
            net = UNetMotionModel.from_pretrained(model, subfolder="unet", dtype=dtype, revision=revision)
        vae = AutoencoderKL.from_pretrained(model, subfolder="vae", dtype=vae_dtype, revision=revision)
        scheduler = ddpm_scheduler(model)
        subfolder = "unet"
    else:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    vae.requires_grad_(False)
    vae.eval()
    return VideoFamily(family, net, vae, scheduler, subfolder, **sampling)
