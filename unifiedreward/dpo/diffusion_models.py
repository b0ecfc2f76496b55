"""The diffusers models behind Diffusion-DPO / Flow-DPO: load a pipeline, encode captions, predict, save, reload.

Two families (:attr:`DiffusionModels.kind`):

* ``unet`` — SD 1.5 / SD 2.x / SDXL / SDXL-Turbo (``pipe.unet``): DDPM training scheduler, ε- or v-prediction from
  the scheduler config. SDXL (two text encoders) adds pooled text embeddings and micro-conditioning
  ``add_time_ids = original size + crop top-left + target size``.
* ``flow`` — SD3 / SD3.5 (``pipe.transformer``): flow matching (``FlowMatchEulerDiscreteScheduler``), velocity target.

Captions are encoded with the pipeline's own ``encode_prompt`` (the same code path inference uses; SDXL: both CLIP
encoders' penultimate states concatenated, pooled from encoder 2).

Saved results (:func:`save_trained`): full training writes the model folder (``<out>/unet`` or
``<out>/transformer``); LoRA writes ``<out>/pytorch_lora_weights.safetensors`` (the pipeline's ``save_lora_weights``
format); both write ``<out>/dpo_training.json`` naming the base pipeline. :func:`load_trained_pipeline` puts either
back into the base pipeline.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

__all__ = ["TRAINING_INFO", "DiffusionModels", "load_models", "load_trained_pipeline", "save_trained"]

TRAINING_INFO = "dpo_training.json"
LORA_TARGETS = ("to_k", "to_q", "to_v", "to_out.0")


@dataclass
class DiffusionModels:
    """A loaded pipeline and what training needs from it.

    Attributes:
        pipe: the diffusers pipeline (its ``unet`` / ``transformer`` is the policy).
        kind: ``"unet"`` or ``"flow"``.
        sdxl: two text encoders and micro-conditioning.
        prediction_type: ``epsilon``, ``v_prediction`` or ``flow_matching``.
        scheduler: the training noise scheduler (DDPM, or a fresh flow-matching scheduler).
    """

    pipe: Any
    kind: str
    sdxl: bool
    prediction_type: str
    scheduler: Any

    @property
    def policy(self) -> torch.nn.Module:
        return self.pipe.unet if self.kind == "unet" else self.pipe.transformer

    @property
    def policy_name(self) -> str:
        return "unet" if self.kind == "unet" else "transformer"

    def frozen_modules(self) -> list[torch.nn.Module]:
        names = ("vae", "text_encoder", "text_encoder_2", "text_encoder_3")
        return [m for m in (getattr(self.pipe, n, None) for n in names) if m is not None]

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[N, 3, R, R]`` in [-1, 1] -> latents ``(z - shift_factor) * scaling_factor`` (a posterior sample)."""
        vae = self.pipe.vae
        z = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist.sample()
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        return ((z - shift) * vae.config.scaling_factor).float()

    @torch.no_grad()
    def encode_captions(self, captions: list[str], device: torch.device, *, max_sequence_length: int = 256) -> dict:
        """Conditioning of the policy for ``captions``: ``{"embeds", "pooled" (SDXL / SD3)}``."""
        pipe = self.pipe
        if self.kind == "flow":
            embeds, _, pooled, _ = pipe.encode_prompt(prompt=captions, prompt_2=None, prompt_3=None, device=device,
                                                      do_classifier_free_guidance=False,
                                                      max_sequence_length=max_sequence_length)  # fmt: skip
            return {"embeds": embeds.float(), "pooled": pooled.float()}
        if self.sdxl:
            embeds, _, pooled, _ = pipe.encode_prompt(prompt=captions, device=device, num_images_per_prompt=1,
                                                      do_classifier_free_guidance=False)  # fmt: skip
            return {"embeds": embeds.float(), "pooled": pooled.float()}
        embeds, _ = pipe.encode_prompt(captions, device, 1, False)
        return {"embeds": embeds.float()}

    def predict(self, model: torch.nn.Module, noisy: torch.Tensor, timesteps: torch.Tensor, cond: dict,
                time_ids: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """The model's output (ε, v or velocity) for noisy latents ``[N, ...]`` at ``timesteps [N]``."""
        dtype = next(p for p in model.parameters()).dtype
        embeds = cond["embeds"].to(dtype)
        if self.kind == "flow":
            return model(hidden_states=noisy.to(dtype), timestep=timesteps.to(noisy.device),
                         encoder_hidden_states=embeds, pooled_projections=cond["pooled"].to(dtype)).sample.float()  # fmt: skip
        added = None
        if self.sdxl:
            added = {"text_embeds": cond["pooled"].to(dtype), "time_ids": time_ids.to(noisy.device, dtype)}
        return model(noisy.to(dtype), timesteps.to(noisy.device), encoder_hidden_states=embeds,
                     added_cond_kwargs=added).sample.float()  # fmt: skip


def load_models(model: str, *, vae: str | None = None, zero_terminal_snr: bool = False,
                dtype: torch.dtype = torch.float32) -> DiffusionModels:  # fmt: skip
    """Load a text-to-image pipeline (folder or hub id) for training.

    Args:
        model: the pipeline (``model_index.json`` folder or hub id).
        vae: another VAE folder / hub id (e.g. ``madebyollin/sdxl-vae-fp16-fix``).
        zero_terminal_snr: rescale the DDPM betas to zero terminal SNR (SDXL-Turbo, upstream).
        dtype: dtype of the frozen parts (the policy is cast by the trainer).
    """
    from diffusers import AutoencoderKL, DiffusionPipeline, FlowMatchEulerDiscreteScheduler

    from unifiedreward.dpo.diffusers_common import ddpm_scheduler

    kwargs: dict[str, Any] = {}
    if vae:
        kwargs["vae"] = AutoencoderKL.from_pretrained(vae, dtype=dtype)
    pipe = DiffusionPipeline.from_pretrained(model, dtype=dtype, **kwargs)
    if hasattr(pipe, "safety_checker") and getattr(pipe, "safety_checker", None) is not None:
        pipe.safety_checker = None
    if getattr(pipe, "unet", None) is not None:
        scheduler = ddpm_scheduler(model, zero_terminal_snr=zero_terminal_snr)
        sdxl = getattr(pipe, "text_encoder_2", None) is not None
        prediction = scheduler.config.prediction_type
        if prediction not in ("epsilon", "v_prediction"):
            raise ValueError(f"{model}: unsupported prediction type {prediction!r} (epsilon or v_prediction)")
        return DiffusionModels(pipe, "unet", sdxl, prediction, scheduler)
    if getattr(pipe, "transformer", None) is not None and hasattr(pipe, "text_encoder_3"):
        scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)
        return DiffusionModels(pipe, "flow", False, "flow_matching", scheduler)
    raise ValueError(f"{model}: {type(pipe).__name__} is neither a UNet (SD / SDXL) nor an SD3 pipeline")


def add_lora(policy: torch.nn.Module, rank: int, alpha: float | None = None) -> None:
    """Freeze ``policy`` and add a LoRA adapter on the attention projections (Gaussian init, as the diffusers example)."""
    from peft import LoraConfig

    policy.requires_grad_(False)
    policy.add_adapter(LoraConfig(r=rank, lora_alpha=alpha or rank, init_lora_weights="gaussian",
                                  target_modules=list(LORA_TARGETS)))  # fmt: skip


def save_trained(models: DiffusionModels, policy: torch.nn.Module, output_dir: str | Path, *, base_model: str,
                 lora: bool, extra: dict[str, Any] | None = None) -> Path:  # fmt: skip
    """Save the trained policy (module docstring) and ``dpo_training.json``; returns ``output_dir``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if lora:
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft.utils import get_peft_model_state_dict

        layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(policy))
        key = "unet_lora_layers" if models.kind == "unet" else "transformer_lora_layers"
        type(models.pipe).save_lora_weights(output_dir, **{key: layers})
    else:
        policy.save_pretrained(output_dir / models.policy_name)
    info = {"base_model": base_model, "kind": models.kind, "component": models.policy_name, "lora": lora,
            **(extra or {})}  # fmt: skip
    (output_dir / TRAINING_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return output_dir


def load_trained_pipeline(trained: str | Path, *, base_model: str | None = None, dtype: torch.dtype = torch.float32,
                          fuse_lora: bool = False) -> Any:  # fmt: skip
    """The base pipeline with the trained weights of ``trained`` (a :func:`save_trained` folder).

    Args:
        trained: the training output folder.
        base_model: the base pipeline (default: the one recorded in ``dpo_training.json``).
        dtype: weights dtype.
        fuse_lora: merge LoRA weights into the base weights (faster sampling).
    """
    from diffusers import DiffusionPipeline

    trained = Path(trained)
    info_path = trained / TRAINING_INFO
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path} not found: not a DiffusionDPO training output")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    base = base_model or info["base_model"]
    if info["lora"]:
        pipe = DiffusionPipeline.from_pretrained(base, dtype=dtype)
        pipe.load_lora_weights(trained)
        if fuse_lora:
            pipe.fuse_lora()
        return pipe
    component_cls = {"unet": "UNet2DConditionModel", "transformer": "SD3Transformer2DModel"}[info["component"]]
    import diffusers

    component = getattr(diffusers, component_cls).from_pretrained(trained / info["component"], dtype=dtype)
    return DiffusionPipeline.from_pretrained(base, dtype=dtype, **{info["component"]: component})
