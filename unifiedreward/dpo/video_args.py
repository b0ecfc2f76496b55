"""Flags of ``VideoDPO/train.py`` (:class:`VideoDPOArguments`; ``--config file.yaml`` sets defaults, see
:func:`unifiedreward.args.parse_args`) and their checks. Defaults are documented in ``docs/dpo.md`` (Video DPO)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from unifiedreward.dpo.diffusers_common import OPTIMIZERS

#: β per family when ``--beta`` is not given: upstream's Diffusion-DPO 5000 (AnimateDiff, ε), and Flow-DPO's 500
#: (velocity errors are larger than ε errors; verified to move a tiny Wan model: stack-notes §3).
DEFAULT_BETA = {"animatediff": 5000.0, "wan": 500.0}


def _f(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class VideoDPOArguments:
    """Diffusion-DPO (AnimateDiff, ε) / Flow-DPO (Wan 2.1, velocity) on sifted video pairs."""

    model: str = field(metadata={"help": "Pipeline folder or hub id: a WanPipeline (e.g. "
                                         "Wan-AI/Wan2.1-T2V-1.3B-Diffusers) or an AnimateDiffPipeline."})  # fmt: skip
    data_path: str = field(metadata={"help": "dpo_data.json of sift_dpo_data.py ({'caption', 'chosen', 'rejected'})."})
    output_dir: str = field(metadata={"help": "Checkpoints, logs, samples and the trained weights."})
    family: str | None = _f(
        None, "wan or animatediff (default: from model_index.json).", choices=["wan", "animatediff"]
    )
    motion_adapter: str | None = _f(None, "AnimateDiff: MotionAdapter added to an SD 1.5 base saved without one.")
    video_folder: str | None = _f(None, "Folder the video paths are relative to (default: the data file's folder).")
    # clips
    num_frames: int = _f(16, "Frames per training clip, sampled uniformly over each video, the same positions for "
                             "winner and loser (Wan: 4k+1, e.g. 17).")  # fmt: skip
    height: int = _f(320, "Clip height (Wan 1.3B: 480).")
    width: int = _f(512, "Clip width (Wan 1.3B: 832).")
    # loss
    beta: float | None = _f(None, "DPO β (inside = -β/2 · Δ). Default: 5000 AnimateDiff (upstream), 500 Wan.")
    timestep_sampling: str = _f("logit_normal", "Wan: noise-level draw, logit_normal or shift (uniform over the "
                                                "shifted schedule).", choices=["logit_normal", "shift"])  # fmt: skip
    logit_mean: float = _f(0.0, "Wan logit-normal mean.")
    logit_std: float = _f(1.0, "Wan logit-normal std.")
    shift: float = _f(3.0, "Wan flow-matching shift of the training schedule (Wan 2.1 480p samples with 3.0).")
    caption_dropout: float = _f(0.0, "Probability of training a pair on the empty caption (upstream VideoDPO: 0.2).")
    # model
    lora_rank: int = _f(0, "LoRA rank on to_q/to_k/to_v/to_out.0 (0: train every weight).")
    lora_alpha: float | None = _f(None, "LoRA alpha (default: the rank).")
    reference: str = _f("auto", "Reference model: copy (frozen copy), lora_disabled (the policy with LoRA off) or "
                                "auto (lora_disabled with LoRA, else copy).",
                        choices=["auto", "copy", "lora_disabled"])  # fmt: skip
    gradient_checkpointing: bool = _f(False, "Recompute activations in the backward pass (Wan 1.3B on one GPU).")
    mixed_precision: str = _f("no", "accelerate mixed precision: no, fp16, bf16 (trained weights stay float32).",
                              choices=["no", "fp16", "bf16"])  # fmt: skip
    # text and latents
    max_sequence_length: int = _f(512, "Wan: text tokens (the pipeline's default 512).")
    text_cache_dir: str | None = _f(None, "Text-embedding cache (default <output_dir>/text_embeddings).")
    text_encoder_device: str = _f("auto", "Where the text encoder runs once before training (auto: the training "
                                          "device), then released.")  # fmt: skip
    cache_latents: bool = _f(False, "Cache VAE latents of the clips on disk (<output_dir>/latents); later epochs "
                                    "skip decoding and the VAE.")  # fmt: skip
    latent_cache_dir: str | None = _f(None, "Latent cache folder (default <output_dir>/latents).")
    # optimisation
    learning_rate: float = _f(2e-5, "Learning rate (upstream VideoDPO: 2e-5 constant AdamW).")
    lr_scheduler: str = _f("constant", "diffusers scheduler name (constant, constant_with_warmup, cosine, ...).")
    lr_warmup_steps: int = _f(0, "Warm-up optimizer steps.")
    optimizer: str = _f("adamw", "Optimizer.", choices=list(OPTIMIZERS))
    weight_decay: float = _f(1e-2, "Weight decay.")
    max_grad_norm: float = _f(1.0, "Gradient clipping (0: off).")
    train_batch_size: int = _f(1, "Pairs per device per step.")
    gradient_accumulation_steps: int = _f(1, "Micro-batches per optimizer step.")
    max_train_steps: int = _f(1000, "Optimizer steps in total (the count continues on resume).")
    use_ema: bool = _f(False, "Keep an exponential moving average of the trained weights (diffusers' EMAModel, "
                              "decay min(--ema_decay, (1 + step) / (10 + step))) and save it instead of the last "
                              "weights: it averages out the step-to-step noise of the run.")
    ema_decay: float = _f(0.999, "Upper bound of the EMA decay (--use_ema).")
    seed: int = _f(0, "Seed (data order, noise and timesteps; each process adds its index).")
    dataloader_num_workers: int = _f(0, "Data-loading worker processes.")
    # checkpoints, logging, samples
    checkpointing_steps: int = _f(500, "Save accelerate state every N steps (checkpoint-<step>; 0: never).")
    checkpoints_total_limit: int | None = _f(None, "Keep at most this many checkpoints.")
    resume_from_checkpoint: str | None = _f("latest", "A checkpoint folder, latest (the newest, if any) or none.")
    logging_steps: int = _f(1, "Log metrics every N steps.")
    report_to: str = _f("none", "Tracker: none, tensorboard, wandb or all.")
    tracker_project: str = _f("video-dpo", "Tracker project name.")
    validation_prompts: list[str] = field(default_factory=list, metadata={"help": "Prompts sampled as mp4 under "
                                          "<output_dir>/samples (and logged to the tracker) at validation."})  # fmt: skip
    validation_steps: int = _f(0, "Sample every N steps (0: once at the end when prompts are given).")
    validation_inference_steps: int = _f(25, "Denoising steps of validation samples.")
    validation_guidance_scale: float = _f(5.0, "Guidance scale of validation samples.")
    validation_fps: int = _f(8, "Frame rate of the validation mp4s.")

    def resolved_beta(self, family: str) -> float:
        """``--beta`` or the family's default (:data:`DEFAULT_BETA`)."""
        return self.beta if self.beta is not None else DEFAULT_BETA[family]

    def check(self) -> None:
        """Raise ``ValueError`` naming the flag for the first invalid value."""
        checks = [
            (self.num_frames >= 1 and self.height >= 8 and self.width >= 8, "--num_frames/--height/--width too small"),
            (self.beta is None or self.beta > 0, "--beta must be > 0"),
            (0.0 <= self.caption_dropout < 1.0, "--caption_dropout must be in [0, 1)"),
            (self.lora_rank >= 0, "--lora_rank must be >= 0"),
            (self.reference != "lora_disabled" or self.lora_rank > 0, "--reference lora_disabled needs --lora_rank"),
            (self.train_batch_size >= 1 and self.gradient_accumulation_steps >= 1, "batch sizes must be >= 1"),
            (self.max_train_steps >= 1, "--max_train_steps must be >= 1"),
            (0.0 <= self.ema_decay < 1.0, "--ema_decay must be in [0, 1)"),
            (self.report_to in ("none", "tensorboard", "wandb", "all"), "--report_to: none, tensorboard, wandb, all"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
