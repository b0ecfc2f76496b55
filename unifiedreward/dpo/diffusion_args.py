"""Flags of ``DiffusionDPO/train.py`` (:class:`DiffusionDPOArguments`; every field is a ``--flag`` with help and
``--config file.yaml`` sets defaults, see :func:`unifiedreward.args.parse_args`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from unifiedreward.dpo.diffusers_common import OPTIMIZERS, TIMESTEP_MODES


def _f(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class DiffusionDPOArguments:
    """Diffusion-DPO (UNet: SD 1.5 / SDXL / SDXL-Turbo) and Flow-DPO (SD3 / SD3.5) on image preference pairs."""

    pretrained_model: str = field(metadata={"help": "Text-to-image pipeline (folder or hub id), e.g. "
                                                    "stabilityai/sdxl-turbo or stabilityai/stable-diffusion-3.5-medium."})  # fmt: skip
    dataset_dir: str = field(metadata={"help": "Folder with dpo_data.json and images_dpo/ (sift_dpo_data.py output)."})
    output_dir: str = field(metadata={"help": "Where checkpoints, logs and the trained weights go."})
    vae: str | None = _f(None, "Another VAE (e.g. madebyollin/sdxl-vae-fp16-fix for SDXL in fp16).")
    resolution: int = _f(512, "Training resolution (shorter side resized, then cropped).")
    random_crop: bool = _f(False, "Random instead of centre crop.")
    hflip: bool = _f(True, "Random horizontal flip, one draw per pair (upstream: independent per image).")
    proportion_empty_prompts: float = _f(0.0, "Fraction of captions replaced by '' (upstream default 0.2, launcher 0).")
    # objective
    loss_type: str = _f("dpo", "dpo (Diffusion-DPO / Flow-DPO) or sft (plain MSE on the winner).",
                        choices=["dpo", "sft"])  # fmt: skip
    beta_dpo: float = _f(5000.0, "β of inside = -0.5*β*Δ (upstream 5000 = the diffusers example's 2500; Flow-DPO on "
                                 "per-element velocity errors: a few hundred).")  # fmt: skip
    timesteps: str = _f("auto", "Timestep draw: auto (turbo if the model name contains 'turbo', logit_normal for "
                                "flow matching, else uniform), " + ", ".join(TIMESTEP_MODES) + ".",
                        choices=["auto", *TIMESTEP_MODES])  # fmt: skip
    zero_terminal_snr: bool | None = _f(None, "Rescale the DDPM schedule to zero terminal SNR (default: with turbo "
                                              "timesteps, as upstream).")  # fmt: skip
    logit_mean: float = _f(0.0, "Mean of the logit-normal timestep density (flow matching).")
    logit_std: float = _f(1.0, "Std of the logit-normal timestep density (flow matching).")
    max_sequence_length: int = _f(77, "T5 tokens of SD3 captions.")
    # model
    lora_rank: int = _f(0, "LoRA rank on the attention projections (0: train every weight).")
    lora_alpha: float | None = _f(None, "LoRA alpha (default: the rank).")
    reference: str = _f("auto", "Reference model: copy (frozen copy of the initial policy), lora_disabled (the policy "
                                "with adapters off; no second copy), auto (lora_disabled with LoRA, else copy).",
                        choices=["auto", "copy", "lora_disabled"])  # fmt: skip
    gradient_checkpointing: bool = _f(False, "Recompute activations in the backward pass (less memory).")
    mixed_precision: str | None = _f(None, "no, fp16 or bf16 (default: the accelerate config). Frozen parts and the "
                                           "reference run in this dtype; trained weights stay float32.",
                                     choices=[None, "no", "fp16", "bf16"])  # fmt: skip
    # optimisation
    optimizer: str = _f("adamw", "Optimizer (adafactor: upstream's SDXL settings; adamw_8bit needs bitsandbytes).",
                        choices=list(OPTIMIZERS))  # fmt: skip
    learning_rate: float = _f(1e-6, "Learning rate (per process and batch unless --scale_lr).")
    scale_lr: bool = _f(False, "Multiply the lr by batch x accumulation x processes (upstream launcher).")
    lr_scheduler: str = _f("constant_with_warmup", "diffusers lr schedule name (constant, linear, cosine, ...).")
    lr_warmup_steps: int = _f(0, "Warmup optimizer steps.")
    adam_beta1: float = _f(0.9, "AdamW β1.")
    adam_beta2: float = _f(0.999, "AdamW β2.")
    adam_epsilon: float = _f(1e-8, "AdamW ε.")
    weight_decay: float = _f(1e-2, "Weight decay.")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm (0: none).")
    train_batch_size: int = _f(1, "Pairs per process per forward.")
    gradient_accumulation_steps: int = _f(1, "Forwards per optimizer step.")
    max_train_steps: int = _f(20, "Optimizer steps in total (schedules in steps, so runs reproduce).")
    use_ema: bool = _f(False, "Keep an EMA of the trained weights and save it instead of the raw weights.")
    ema_decay: float = _f(0.9999, "EMA decay.")
    seed: int = _f(0, "Seed (each process uses seed + process index; upstream set none).")
    dataloader_num_workers: int = _f(0, "Data loader worker processes.")
    # bookkeeping
    checkpointing_steps: int = _f(500, "Save an accelerate checkpoint (checkpoint-<step>) every N steps (0: never).")
    checkpoints_total_limit: int | None = _f(None, "Keep at most this many checkpoints.")
    resume_from_checkpoint: str | None = _f(None, "A checkpoint folder, or 'latest' (the newest in --output_dir).")
    report_to: str = _f("none", "Tracker: none, tensorboard, wandb or all.")
    tracker_project: str = _f("diffusion-dpo", "Tracker project / run group name.")
    logging_steps: int = _f(1, "Log metrics every N steps.")
    validation_prompts: list[str] | None = field(
        default=None, metadata={"help": "Captions sampled and logged every --validation_steps."}
    )
    validation_steps: int = _f(0, "Sample --validation_prompts every N steps (0: only at the end, if any prompts).")
    validation_inference_steps: int = _f(25, "Sampling steps of validation images (SDXL-Turbo: 1-4).")
    validation_guidance_scale: float = _f(5.0, "Guidance scale of validation images (SDXL-Turbo: 0).")

    def resolved_timesteps(self, kind: str) -> str:
        """The timestep mode for a ``kind`` (``unet`` / ``flow``) model."""
        if self.timesteps != "auto":
            return self.timesteps
        if kind == "flow":
            return "logit_normal"
        return "turbo" if "turbo" in self.pretrained_model.lower() else "uniform"

    def check(self, kind: str | None = None) -> None:
        """Raise ``ValueError`` naming the flag for the first invalid value."""
        checks = [
            (self.beta_dpo > 0, "--beta_dpo must be > 0"),
            (self.resolution >= 8, "--resolution must be >= 8"),
            (0.0 <= self.proportion_empty_prompts <= 1.0, "--proportion_empty_prompts must be in [0, 1]"),
            (self.train_batch_size >= 1 and self.gradient_accumulation_steps >= 1, "batch and accumulation >= 1"),
            (self.max_train_steps >= 1, "--max_train_steps must be >= 1"),
            (self.lora_rank >= 0, "--lora_rank must be >= 0"),
            (self.reference != "lora_disabled" or self.lora_rank > 0, "--reference lora_disabled needs --lora_rank"),
            (self.report_to in ("none", "tensorboard", "wandb", "all"), "--report_to: none, tensorboard, wandb, all"),
        ]
        if kind is not None:
            mode = self.resolved_timesteps(kind)
            checks.append(((mode == "logit_normal") == (kind == "flow"),
                           f"--timesteps {mode} does not fit a {kind} model (flow: logit_normal)"))  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
