"""Diffusion-DPO / Flow-DPO training on diffusers text-to-image models (``DiffusionDPO/train.py``).

One step on a batch of B pairs (winner first, :mod:`unifiedreward.dpo.diffusion_data`):

1. VAE-encode winner and loser; draw **one** ε and **one** timestep per pair (shared by winner and loser;
   :func:`unifiedreward.dpo.diffusers_common.sample_timesteps`: uniform, SDXL-Turbo's {249, 499, 749, 999} with a
   zero-terminal-SNR schedule, or logit-normal for flow matching);
2. noise both (DDPM ``add_noise``, or ``x_t = (1 - σ) x0 + σ ε``); the target is ε, v or the velocity ``ε - x0``;
3. per-sample MSE of the policy and of the reference (frozen copy or LoRA disabled) on winner and loser;
4. :func:`unifiedreward.dpo.losses.diffusion_dpo_loss` (``--loss_type sft``: MSE on the winner only).

Runs under ``accelerate launch`` (DDP, DeepSpeed or FSDP from the accelerate config; a plain ``python`` call is one
process). Checkpoints are accelerate states ``<output_dir>/checkpoint-<step>`` and resume continues the step count;
the final weights are saved with :func:`unifiedreward.dpo.diffusion_models.save_trained`.
"""

from __future__ import annotations

import logging
import math
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from unifiedreward.dpo.diffusers_common import (
    Reference,
    checkpoint_step,
    latest_checkpoint,
    make_ema,
    make_optimizer,
    noisy_and_target,
    prune_checkpoints,
    sample_timesteps,
)
from unifiedreward.dpo.diffusion_args import DiffusionDPOArguments
from unifiedreward.dpo.diffusion_data import DPO_IMAGE_DIR, EpochSampler, PairDataset, collate_pairs, load_pairs
from unifiedreward.dpo.diffusion_models import DiffusionModels, add_lora, load_models, save_trained
from unifiedreward.dpo.losses import diffusion_dpo_loss, per_sample_mse

logger = logging.getLogger(__name__)

__all__ = ["dpo_step", "main", "train"]


def _time_ids(batch: dict[str, Any], resolution: int) -> torch.Tensor:
    """SDXL micro-conditioning per image: ``[orig_h, orig_w, crop_top, crop_left, R, R]`` -> ``[B, 6]``."""
    target = torch.tensor([resolution, resolution]).expand(len(batch["captions"]), 2)
    return torch.cat([batch["original_size"], batch["crop_top_left"], target], dim=1).float()


def dpo_step(models: DiffusionModels, policy: torch.nn.Module, reference: Reference | None, batch: dict[str, Any],
             args: DiffusionDPOArguments, device: torch.device) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # fmt: skip
    """The loss of one batch of pairs (module docstring) and its statistics (detached)."""
    pixels = batch["pixels"]  # [B, 2, 3, R, R], winner first
    b = pixels.shape[0]
    latents = models.encode_images(pixels.flatten(0, 1).to(device))  # [2B, C, h, w]: w0, l0, w1, l1, ...
    latents = torch.cat([latents[0::2], latents[1::2]])  # [2B]: winners, then losers
    captions = list(batch["captions"])
    if args.proportion_empty_prompts > 0:
        captions = ["" if random.random() < args.proportion_empty_prompts else c for c in captions]
    cond = models.encode_captions(captions, device, max_sequence_length=args.max_sequence_length)
    cond = {k: torch.cat([v, v]) for k, v in cond.items()}
    time_ids = torch.cat([_time_ids(batch, args.resolution)] * 2) if models.sdxl else None
    mode = args.resolved_timesteps(models.kind)
    num_t = getattr(models.scheduler.config, "num_train_timesteps", 1000)
    timesteps, sigmas = sample_timesteps(b, mode, num_train_timesteps=num_t, logit_mean=args.logit_mean,
                                         logit_std=args.logit_std, flow_scheduler=models.scheduler)  # fmt: skip
    noise = torch.randn(latents[:b].shape, device=device)
    noise, timesteps = torch.cat([noise, noise]), torch.cat([timesteps, timesteps])
    sigmas = torch.cat([sigmas, sigmas]) if sigmas is not None else None
    noisy, target = noisy_and_target(latents, noise, timesteps, scheduler=models.scheduler, sigmas=sigmas,
                                     prediction_type=models.prediction_type)  # fmt: skip
    pred = models.predict(policy, noisy, timesteps, cond, time_ids)
    err = per_sample_mse(pred, target)
    if args.loss_type == "sft":
        loss = err[:b].mean()
        return loss, {"policy_mse": err.detach().mean()}
    with reference.active() as ref_model:
        ref_err = per_sample_mse(models.predict(ref_model, noisy, timesteps, cond, time_ids), target)
    return diffusion_dpo_loss(err[:b], err[b:], ref_err[:b], ref_err[b:], args.beta_dpo)


def _log_validation(models: DiffusionModels, args: DiffusionDPOArguments, accelerator: Any, step: int) -> None:
    """Sample ``--validation_prompts`` with the current policy; save PNGs and send them to the trackers."""
    import numpy as np

    out = Path(args.output_dir) / "validation" / f"step-{step}"
    out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator(device="cpu").manual_seed(args.seed)
    policy = models.policy
    was_training = policy.training
    policy.eval()
    models.pipe.set_progress_bar_config(disable=True)
    images = []
    with torch.no_grad():
        for i, prompt in enumerate(args.validation_prompts or []):
            kwargs = {"max_sequence_length": args.max_sequence_length} if models.kind == "flow" else {}
            image = models.pipe(prompt, num_inference_steps=args.validation_inference_steps, height=args.resolution,
                                width=args.resolution, guidance_scale=args.validation_guidance_scale,
                                generator=generator, **kwargs).images[0]  # fmt: skip
            image.save(out / f"{i:03d}.png")
            images.append(np.asarray(image))
    policy.train(was_training)
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.writer.add_images("validation", np.stack(images), step, dataformats="NHWC")
        elif tracker.name == "wandb":
            import wandb

            tracker.log({"validation": [wandb.Image(im, caption=p) for im, p in
                                        zip(images, args.validation_prompts, strict=True)]}, step=step)  # fmt: skip


def _check_tracker(report_to: str) -> None:
    """Fail early when ``--report_to`` names a tracker that is not installed (accelerate would silently skip it)."""
    import importlib.util

    if report_to in ("tensorboard", "wandb") and importlib.util.find_spec(report_to) is None:
        raise ImportError(f"--report_to {report_to} needs the {report_to} package: pip install {report_to}")


def _resume_path(args: DiffusionDPOArguments) -> Path | None:
    if not args.resume_from_checkpoint:
        return None
    if args.resume_from_checkpoint == "latest":
        path = latest_checkpoint(args.output_dir)
        if path is None:
            logger.info("no checkpoint in %s: starting from scratch", args.output_dir)
        return path
    return Path(args.resume_from_checkpoint)


def train(args: DiffusionDPOArguments) -> dict[str, Any]:
    """Train (or resume) and save; returns ``{"global_step", "output_dir", "history", "seconds"}``.

    ``history`` holds one dict of logged metrics per optimizer step of this call (``step``, ``loss``, ``lr``,
    ``implicit_acc``, reward margins, MSEs).
    """
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import cast_training_params

    args.check()
    _check_tracker(args.report_to)
    log_with = None if args.report_to == "none" else args.report_to
    accelerator = Accelerator(gradient_accumulation_steps=args.gradient_accumulation_steps,
                              mixed_precision=args.mixed_precision, log_with=log_with,
                              project_config=ProjectConfiguration(project_dir=args.output_dir,
                                                                  logging_dir=str(Path(args.output_dir) / "logs")))  # fmt: skip
    set_seed(args.seed + accelerator.process_index)
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)
    mode = args.timesteps if args.timesteps != "auto" else None
    zero_snr = args.zero_terminal_snr
    if zero_snr is None:
        zero_snr = (mode or ("turbo" if "turbo" in args.pretrained_model.lower() else "")) == "turbo"
    models = load_models(args.pretrained_model, vae=args.vae, zero_terminal_snr=zero_snr, dtype=weight_dtype)
    args.check(models.kind)
    for module in models.frozen_modules():
        module.requires_grad_(False).to(accelerator.device)
    policy = models.policy
    lora = args.lora_rank > 0
    policy.to(accelerator.device)  # loaded in weight_dtype
    if lora:
        add_lora(policy, args.lora_rank, args.lora_alpha)
        cast_training_params(policy, dtype=torch.float32)
    else:
        if weight_dtype != torch.float32:
            policy.to(dtype=torch.float32)  # trained weights stay float32 under mixed precision
        policy.requires_grad_(True)
    ref_mode = args.reference if args.reference != "auto" else ("lora_disabled" if lora else "copy")
    reference = Reference(policy, ref_mode) if args.loss_type == "dpo" else None
    if reference is not None and reference.model is not None and weight_dtype != torch.float32:
        reference.model.to(dtype=weight_dtype)
    if args.gradient_checkpointing:
        policy.enable_gradient_checkpointing()
    policy.train()

    lr = args.learning_rate
    if args.scale_lr:
        lr *= args.train_batch_size * args.gradient_accumulation_steps * accelerator.num_processes
    optimizer = make_optimizer(args.optimizer, policy.parameters(), lr=lr, weight_decay=args.weight_decay,
                               betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon)  # fmt: skip
    ema = make_ema(policy, args.ema_decay) if args.use_ema else None
    if ema is not None:
        ema.to(accelerator.device)
        accelerator.register_for_checkpointing(ema)
    data = PairDataset(load_pairs(args.dataset_dir), Path(args.dataset_dir) / DPO_IMAGE_DIR, args.resolution,
                       random_crop=args.random_crop, hflip=args.hflip, seed=args.seed)  # fmt: skip
    if len(data) < args.train_batch_size:
        raise ValueError(f"{len(data)} pair(s) in {args.dataset_dir}: fewer than --train_batch_size")
    sampler = EpochSampler(len(data), args.seed)
    # own generator: creating an epoch's iterator draws nothing from the global RNG (resume reproduces the run)
    loader = torch.utils.data.DataLoader(data, batch_size=args.train_batch_size, sampler=sampler, drop_last=True,
                                         collate_fn=collate_pairs, num_workers=args.dataloader_num_workers,
                                         generator=torch.Generator().manual_seed(args.seed))  # fmt: skip
    lr_scheduler = get_scheduler(args.lr_scheduler, optimizer=optimizer,
                                 num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
                                 num_training_steps=args.max_train_steps * accelerator.num_processes)  # fmt: skip
    policy, optimizer, loader, lr_scheduler = accelerator.prepare(policy, optimizer, loader, lr_scheduler)
    if accelerator.is_main_process and log_with:
        accelerator.init_trackers(args.tracker_project, config={k: v for k, v in vars(args).items()
                                                                if isinstance(v, (int, float, str, bool))})  # fmt: skip

    global_step = 0
    resume = _resume_path(args)
    if resume is not None:
        accelerator.load_state(str(resume))
        global_step = checkpoint_step(resume)
        logger.info("resumed from %s at step %d", resume, global_step)
    batches_per_epoch = len(loader)
    done_batches = global_step * args.gradient_accumulation_steps
    epoch, skip = divmod(done_batches, batches_per_epoch)
    history: list[dict[str, Any]] = []
    start = time.perf_counter()
    trainable = [p for p in policy.parameters() if p.requires_grad]
    while global_step < args.max_train_steps:
        data.epoch = sampler.epoch = epoch
        epoch_loader = accelerator.skip_first_batches(loader, skip) if skip else loader
        skip = 0
        for batch in epoch_loader:
            with accelerator.accumulate(policy):
                loss, stats = dpo_step(models, policy, reference, batch, args, accelerator.device)
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(trainable, args.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            if not accelerator.sync_gradients:
                continue
            global_step += 1
            if ema is not None:
                ema.step(trainable)
            row = {"step": global_step, "loss": accelerator.gather(loss.detach().reshape(1)).mean().item(),
                   "lr": lr_scheduler.get_last_lr()[0],
                   **{k: accelerator.gather(v.reshape(1)).mean().item() for k, v in stats.items()}}  # fmt: skip
            history.append(row)
            if global_step % args.logging_steps == 0:
                accelerator.log({k: v for k, v in row.items() if k != "step"}, step=global_step)
                logger.info("step %d: %s", global_step, {k: round(v, 6) for k, v in row.items() if k != "step"})
            if args.checkpointing_steps and global_step % args.checkpointing_steps == 0:
                if accelerator.is_main_process:
                    prune_checkpoints(args.output_dir, (args.checkpoints_total_limit or 0) - 1
                                      if args.checkpoints_total_limit else None)  # fmt: skip
                accelerator.save_state(str(Path(args.output_dir) / f"checkpoint-{global_step}"))
            if (args.validation_prompts and args.validation_steps and global_step % args.validation_steps == 0
                    and accelerator.is_main_process):  # fmt: skip
                _log_validation(models, args, accelerator, global_step)
            if global_step >= args.max_train_steps:
                break
        epoch += 1

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(policy)
        if ema is not None:
            ema.copy_to([p for p in unwrapped.parameters() if p.requires_grad])
        save_trained(models, unwrapped, args.output_dir, base_model=args.pretrained_model, lora=lora,
                     extra={"global_step": global_step, "beta_dpo": args.beta_dpo, "loss_type": args.loss_type})  # fmt: skip
        if args.validation_prompts and not args.validation_steps:
            _log_validation(models, args, accelerator, global_step)
    accelerator.end_training()
    return {"global_step": global_step, "output_dir": args.output_dir, "history": history,
            "seconds": time.perf_counter() - start}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry (``DiffusionDPO/train.py``)."""
    from unifiedreward.args import parse_args

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    (args,) = parse_args([DiffusionDPOArguments], list(sys.argv[1:] if argv is None else argv),
                         description=__doc__.split("\n\n")[0])  # fmt: skip
    result = train(args)
    last = result["history"][-1] if result["history"] else {}
    print(f"trained to step {result['global_step']} -> {result['output_dir']} "
          f"(last loss {last.get('loss', math.nan):.4f})")  # fmt: skip
    return 0
