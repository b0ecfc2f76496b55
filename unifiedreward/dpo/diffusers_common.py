"""Shared pieces of diffusion preference training on diffusers models (image DPO here, reusable by video DPO).

* **Timesteps and noise** (:func:`sample_timesteps`, :func:`noisy_and_target`): one noise draw and one timestep per
  pair, shared by winner and loser. Modes: ``uniform`` (DDPM, t ~ U{0..T-1}), ``turbo`` (SDXL-Turbo, upstream:
  t in {249, 499, 749, 999} = ``250 * (u mod 4) + 249`` with u ~ U{0..999}; pair with
  :func:`ddpm_scheduler` ``zero_terminal_snr=True``) and ``logit_normal`` (flow matching: u = sigmoid(N(m, s)),
  the index ``floor(u * T)`` into the flow scheduler's shifted ``timesteps`` / ``sigmas``, as diffusers' SD3 scripts).
* **Targets**: ε-prediction -> ε; v-prediction -> ``scheduler.get_velocity(x0, ε, t)``; flow matching ->
  ``ε - x0`` with ``x_t = (1 - σ) x0 + σ ε``.
* **Reference** (:class:`Reference`): a frozen deep copy of the initial model, or the LoRA policy with its adapters
  disabled (no second copy in memory).
* **Optimizers** (:func:`make_optimizer`): ``adamw``, ``adafactor`` (upstream SDXL settings) and ``adamw_8bit``
  (bitsandbytes, optional).
* **EMA** (:func:`make_ema`), **checkpoints** (:func:`latest_checkpoint`, :func:`checkpoint_step`): accelerate's
  ``save_state`` folders named ``checkpoint-<step>``.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

__all__ = [
    "OPTIMIZERS",
    "TIMESTEP_MODES",
    "TURBO_TIMESTEPS",
    "Reference",
    "checkpoint_step",
    "ddpm_scheduler",
    "latest_checkpoint",
    "make_ema",
    "make_optimizer",
    "noisy_and_target",
    "sample_timesteps",
]

TURBO_TIMESTEPS = (249, 499, 749, 999)
TIMESTEP_MODES = ("uniform", "turbo", "logit_normal")
OPTIMIZERS = ("adamw", "adafactor", "adamw_8bit")


def ddpm_scheduler(path: str, *, subfolder: str | None = "scheduler", zero_terminal_snr: bool = False) -> Any:
    """The training noise scheduler of a UNet pipeline: a ``DDPMScheduler`` from the pipeline's scheduler config.

    Args:
        path: pipeline folder or hub id.
        subfolder: the scheduler's subfolder (``None``: ``path`` is the scheduler folder).
        zero_terminal_snr: rescale the betas so that ``alphas_cumprod[-1] == 0`` (Lin et al. 2023; upstream does
            this for SDXL-Turbo), so the turbo timestep 999 sees pure noise.
    """
    from diffusers import DDPMScheduler

    kwargs: dict[str, Any] = {"rescale_betas_zero_snr": True} if zero_terminal_snr else {}
    return DDPMScheduler.from_pretrained(path, subfolder=subfolder, **kwargs)


def sample_timesteps(
    batch: int,
    mode: str,
    *,
    num_train_timesteps: int = 1000,
    generator: torch.Generator | None = None,
    logit_mean: float = 0.0,
    logit_std: float = 1.0,
    flow_scheduler: Any = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One timestep per pair.

    Args:
        batch: number of pairs B.
        mode: one of :data:`TIMESTEP_MODES` (module docstring).
        num_train_timesteps: T of the DDPM schedule (``uniform`` / ``turbo``).
        generator: CPU generator for reproducible draws.
        logit_mean, logit_std: the logit-normal's parameters (``logit_normal``).
        flow_scheduler: a ``FlowMatchEulerDiscreteScheduler`` (``logit_normal``): its ``timesteps`` and ``sigmas``
            (shift applied) are indexed.

    Returns:
        ``(timesteps [B], sigmas [B] or None)``: long DDPM timesteps and ``None``, or the flow scheduler's float
        timesteps (``sigma * T``) and ``sigmas``. CPU tensors.
    """
    if mode == "uniform":
        return torch.randint(0, num_train_timesteps, (batch,), generator=generator), None
    if mode == "turbo":
        if num_train_timesteps != 1000:
            raise ValueError(f"the turbo timestep set needs a 1000-step schedule, got {num_train_timesteps}")
        u = torch.randint(0, 1000, (batch,), generator=generator)
        return 250 * (u % 4) + 249, None
    if mode == "logit_normal":
        if flow_scheduler is None:
            raise ValueError("logit_normal timesteps need the flow-matching scheduler")
        u = torch.sigmoid(logit_mean + logit_std * torch.randn(batch, generator=generator))
        count = len(flow_scheduler.timesteps)
        index = (u * count).long().clamp(0, count - 1)
        return flow_scheduler.timesteps[index].float(), flow_scheduler.sigmas[index].float()
    raise ValueError(f"timestep mode must be one of {TIMESTEP_MODES}, got {mode!r}")


def noisy_and_target(
    latents: torch.Tensor,
    noise: torch.Tensor,
    timesteps: torch.Tensor,
    *,
    scheduler: Any = None,
    sigmas: torch.Tensor | None = None,
    prediction_type: str = "epsilon",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The noised input and the regression target.

    Args:
        latents: clean latents x0, ``[N, ...]``.
        noise: ε, same shape.
        timesteps: ``[N]`` timesteps.
        scheduler: the DDPM scheduler (``epsilon`` / ``v_prediction``).
        sigmas: ``[N]`` flow-matching σ (``flow_matching``).
        prediction_type: ``epsilon``, ``v_prediction`` or ``flow_matching``.

    Returns:
        ``(x_t, target)``: for DDPM ``x_t = sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) ε`` and target ε or
        ``v = sqrt(ᾱ_t) ε - sqrt(1 - ᾱ_t) x0``; for flow matching ``x_t = (1 - σ) x0 + σ ε`` and target ``ε - x0``.
    """
    if prediction_type == "flow_matching":
        if sigmas is None:
            raise ValueError("flow matching needs sigmas")
        s = sigmas.to(latents.device, latents.dtype).reshape(-1, *([1] * (latents.dim() - 1)))
        return (1.0 - s) * latents + s * noise, noise - latents
    timesteps = timesteps.to(latents.device)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    if prediction_type == "epsilon":
        return noisy, noise
    if prediction_type == "v_prediction":
        return noisy, scheduler.get_velocity(latents, noise, timesteps)
    raise ValueError(f"unknown prediction type {prediction_type!r}")


def _has_adapters(model: torch.nn.Module) -> bool:
    return bool(getattr(model, "peft_config", None))


class Reference:
    """The reference model of DPO: a frozen copy of the initial policy, or the policy with LoRA disabled.

    Args:
        policy: the (unwrapped) policy model.
        mode: ``"copy"`` (deep copy, frozen, eval) or ``"lora_disabled"`` (needs LoRA adapters on the policy).
    """

    def __init__(self, policy: torch.nn.Module, mode: str = "copy"):
        if mode not in ("copy", "lora_disabled"):
            raise ValueError(f"reference mode must be 'copy' or 'lora_disabled', got {mode!r}")
        if mode == "lora_disabled" and not _has_adapters(policy):
            raise ValueError("reference 'lora_disabled' needs a LoRA policy (use --lora_rank > 0 or reference copy)")
        self.mode = mode
        self.policy = policy
        self.model: torch.nn.Module | None = None
        if mode == "copy":
            self.model = copy.deepcopy(policy).eval().requires_grad_(False)

    @contextmanager
    def active(self) -> Any:
        """Yield the module to run as the reference (under ``torch.no_grad``); adapters are re-enabled after."""
        with torch.no_grad():
            if self.model is not None:
                yield self.model
                return
            self.policy.disable_adapters()
            try:
                yield self.policy
            finally:
                self.policy.enable_adapters()


def make_optimizer(
    name: str, params: Iterable[torch.nn.Parameter], *, lr: float, weight_decay: float = 1e-2,
    betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
) -> torch.optim.Optimizer:  # fmt: skip
    """An optimizer by name (:data:`OPTIMIZERS`).

    ``adafactor`` uses upstream's SDXL settings (``clip_threshold=1.0``, ``scale_parameter=False``,
    ``relative_step=False``, fixed ``lr``). ``adamw_8bit`` needs ``pip install bitsandbytes`` (and a GPU).

    Raises:
        ValueError: unknown name. ImportError: ``adamw_8bit`` without bitsandbytes, with the install command.
    """
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("no trainable parameters")
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay, eps=eps)
    if name == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(params, lr=lr, weight_decay=weight_decay, clip_threshold=1.0, scale_parameter=False,
                         relative_step=False, warmup_init=False)  # fmt: skip
    if name == "adamw_8bit":
        try:
            import bitsandbytes as bnb
        except ImportError as err:
            raise ImportError("--optimizer adamw_8bit needs bitsandbytes: pip install bitsandbytes") from err
        return bnb.optim.AdamW8bit(params, lr=lr, betas=betas, weight_decay=weight_decay, eps=eps)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def make_ema(model: torch.nn.Module, decay: float = 0.9999) -> Any:
    """An exponential moving average of ``model``'s trainable parameters (diffusers' ``EMAModel``).

    Call ``ema.step(params)`` after each optimizer step and ``ema.copy_to(params)`` before saving.
    """
    from diffusers.training_utils import EMAModel

    return EMAModel([p for p in model.parameters() if p.requires_grad], decay=decay)


_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_step(path: str | Path) -> int:
    """The step count of a ``checkpoint-<step>`` folder."""
    match = _CHECKPOINT.match(Path(path).name)
    if not match:
        raise ValueError(f"not a checkpoint folder (checkpoint-<step>): {path}")
    return int(match.group(1))


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The ``checkpoint-<step>`` folder with the largest step in ``output_dir`` (``None`` if there is none)."""
    folders = [p for p in Path(output_dir).glob("checkpoint-*") if p.is_dir() and _CHECKPOINT.match(p.name)]
    return max(folders, key=checkpoint_step) if folders else None


def prune_checkpoints(output_dir: str | Path, keep: int | None, *, log: Callable[..., None] = logger.info) -> None:
    """Delete all but the ``keep`` newest ``checkpoint-<step>`` folders (``None``: keep all)."""
    import shutil

    if keep is None:
        return
    folders = sorted((p for p in Path(output_dir).glob("checkpoint-*") if _CHECKPOINT.match(p.name)),
                     key=checkpoint_step)  # fmt: skip
    for old in folders[: max(0, len(folders) - keep)]:
        log("removing old checkpoint %s", old)
        shutil.rmtree(old)
