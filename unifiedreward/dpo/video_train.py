"""``VideoDPO/train.py``: Flow-DPO (Wan 2.1, velocity) and Diffusion-DPO (AnimateDiff, ε) on sifted video pairs.

One step on a batch of B pairs (:func:`dpo_step`):

1. latents of winner and loser (:meth:`VideoFamily.encode_video`, or the latent cache);
2. **one** timestep and **one** noise tensor per pair (:meth:`VideoFamily.draw_timesteps`), applied to both the
   winner and the loser;
3. per-sample errors ``‖f(x_t, t, c) - target‖²`` averaged over **every** non-batch dimension (C, F, H, W;
   :func:`unifiedreward.dpo.losses.per_sample_mse`) for the policy and, under ``no_grad``, the reference;
4. :func:`unifiedreward.dpo.losses.diffusion_dpo_loss` (``-log σ(-β/2 · [(m_w - m_l) - (r_w - r_l)])``).

Why we differ from upstream's VideoDPO (protocol reference §5.3, §8.4 item 36): upstream drew the timestep and
the noise independently for the winner and the loser, and averaged the squared error over C, T and H only, applying
the sigmoid per latent *column* (W). Diffusion-DPO's objective compares the two samples' denoising errors at the
same point of the diffusion process: with independent draws the difference ``m_w - m_l`` is dominated by the
difference in noise level and noise sample rather than by which video the model prefers, so the signal is mostly
variance; sharing them cancels that term exactly when the policy equals the reference (the loss is then ln 2 for
every pair). The per-column sigmoid makes the loss depend on the latent width and weights pairs by column noise
rather than by the pair's overall likelihood ratio; the per-sample mean over every non-batch dimension is the
textbook estimate of the ELBO difference the derivation uses. The pair weight upstream applied (``dupfactor`` 0.72)
only rescales the learning rate and is dropped; the caption dropout (upstream 0.2) is ``--caption_dropout``.

Text embeddings are computed once before the denoiser is loaded and cached on disk
(:class:`~unifiedreward.dpo.video_embeddings.TextEmbeddingCache`); the text encoder never sits in memory during
training. Reference: a frozen copy, or the LoRA policy with adapters disabled
(:class:`~unifiedreward.dpo.diffusers_common.Reference`). Multi-GPU: ``accelerate launch VideoDPO/train.py ...``
(data-parallel; each process adds its index to the seed). Checkpoints are accelerate states
``<output_dir>/checkpoint-<step>``; ``--resume_from_checkpoint latest`` continues the step count and the data order.
"""

from __future__ import annotations

import logging
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
    prune_checkpoints,
)
from unifiedreward.dpo.losses import diffusion_dpo_loss, per_sample_mse
from unifiedreward.dpo.video_args import VideoDPOArguments
from unifiedreward.dpo.video_data import LatentCache, VideoPairDataset, collate_pairs, read_pairs
from unifiedreward.dpo.video_embeddings import TextEmbeddingCache
from unifiedreward.dpo.video_models import VideoFamily, detect_family, load_family

logger = logging.getLogger(__name__)

__all__ = ["dpo_step", "main", "train"]


def dpo_step(family: VideoFamily, policy: torch.nn.Module, reference: Reference, latents_w: torch.Tensor,
             latents_l: torch.Tensor, embeds: torch.Tensor, beta: float,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # fmt: skip
    """The DPO loss of B pairs (module docstring).

    Args:
        family: the model family (noising, target, forward).
        policy: the trained denoiser (possibly wrapped by accelerate).
        reference: the reference.
        latents_w, latents_l: winner / loser latents ``[B, C, F', h, w]``.
        embeds: text embeddings ``[B, L, D]`` (one caption per pair).
        beta: β.
        generator: CPU generator of the timestep and noise draws.

    Returns:
        ``(loss, stats)`` of :func:`~unifiedreward.dpo.losses.diffusion_dpo_loss`.
    """
    batch = latents_w.shape[0]
    timesteps, sigmas = family.draw_timesteps(batch, generator)
    noise = torch.randn(latents_w.shape, generator=generator).to(latents_w.device, latents_w.dtype)
    both = torch.cat([latents_w, latents_l])

    def twice(x: torch.Tensor | None) -> torch.Tensor | None:  # the pair's one draw, for the winner and the loser
        return None if x is None else torch.cat([x, x])

    noisy, target = family.noisy_and_target(both, twice(noise), twice(timesteps), twice(sigmas))
    pred = family.predict(policy, noisy, twice(timesteps), twice(embeds))
    policy_err_w, policy_err_l = per_sample_mse(pred, target).chunk(2)
    with reference.active() as ref_model:
        ref_pred = family.predict(ref_model, noisy, twice(timesteps), twice(embeds))
        ref_err_w, ref_err_l = per_sample_mse(ref_pred, target).chunk(2)
    return diffusion_dpo_loss(policy_err_w, policy_err_l, ref_err_w, ref_err_l, beta)


def _resume_path(args: VideoDPOArguments) -> Path | None:
    value = args.resume_from_checkpoint
    if not value or value == "none":
        return None
    if value == "latest":
        return latest_checkpoint(args.output_dir)
    return Path(value)


def _text_cache(args: VideoDPOArguments, family: str, pairs: Sequence[dict[str, Any]], accelerator: Any,
                dtype: torch.dtype) -> TextEmbeddingCache:  # fmt: skip
    """Encode every caption (and ``""`` for dropout / guidance) once on the main process; release the encoder."""
    device = accelerator.device if args.text_encoder_device == "auto" else torch.device(args.text_encoder_device)
    cache = TextEmbeddingCache(args.model, args.text_cache_dir or Path(args.output_dir) / "text_embeddings",
                               family=family, max_sequence_length=args.max_sequence_length, device=device,
                               dtype=dtype)  # fmt: skip
    if accelerator.is_main_process:
        cache.precompute([p["caption"] for p in pairs] + [""] + list(args.validation_prompts))
        cache.release()
    accelerator.wait_for_everyone()
    return cache


def _latents(family: VideoFamily, batch: dict[str, Any], cache: LatentCache | None, device: torch.device,
             side: str) -> torch.Tensor:  # fmt: skip
    if cache is not None:
        return cache.get(batch[f"{side}_ref"], batch[side], family.encode_video).to(device)
    return family.encode_video(torch.stack(batch[side]).to(device))


def train(args: VideoDPOArguments) -> dict[str, Any]:
    """Train (or resume) and save; returns ``{"global_step", "output_dir", "history", "seconds", "text_cache",
    "latent_cache"}`` (the caches' hit/miss counters; ``history``: one metrics dict per optimizer step)."""
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration, set_seed
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import cast_training_params

    from unifiedreward.dpo.diffusion_models import add_lora
    from unifiedreward.dpo.video_inference import log_validation, save_trained_video

    args.check()
    log_with = None if args.report_to == "none" else args.report_to
    accelerator = Accelerator(gradient_accumulation_steps=args.gradient_accumulation_steps,
                              mixed_precision=args.mixed_precision, log_with=log_with,
                              project_config=ProjectConfiguration(project_dir=args.output_dir,
                                                                  logging_dir=str(Path(args.output_dir) / "logs")))  # fmt: skip
    set_seed(args.seed + accelerator.process_index)
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(accelerator.mixed_precision, torch.float32)
    pairs = read_pairs(args.data_path)
    if len(pairs) < args.train_batch_size:
        raise ValueError(f"{len(pairs)} pair(s) in {args.data_path}: fewer than --train_batch_size")
    name = args.family or detect_family(args.model)
    beta = args.resolved_beta(name)
    text_cache = _text_cache(args, name, pairs, accelerator, weight_dtype)  # before the denoiser is loaded
    family = load_family(args.model, family=name, motion_adapter=args.motion_adapter, dtype=weight_dtype,
                         timestep_sampling=args.timestep_sampling, logit_mean=args.logit_mean,
                         logit_std=args.logit_std, shift=args.shift)  # fmt: skip
    family.vae.to(accelerator.device)
    policy = family.model.to(accelerator.device)
    lora = args.lora_rank > 0
    if lora:
        add_lora(policy, args.lora_rank, args.lora_alpha)
        cast_training_params(policy, dtype=torch.float32)
    else:
        if weight_dtype != torch.float32:
            policy.to(dtype=torch.float32)  # trained weights stay float32 under mixed precision
        policy.requires_grad_(True)
    reference = Reference(policy, args.reference if args.reference != "auto" else
                          ("lora_disabled" if lora else "copy"))  # fmt: skip
    if reference.model is not None and weight_dtype != torch.float32:
        reference.model.to(dtype=weight_dtype)
    if args.gradient_checkpointing:
        policy.enable_gradient_checkpointing()
    policy.train()
    optimizer = make_optimizer(args.optimizer, policy.parameters(), lr=args.learning_rate,
                               weight_decay=args.weight_decay)  # fmt: skip
    latent_cache = None
    if args.cache_latents:
        tag = f"{args.model}|{name}|{args.num_frames}|{args.height}x{args.width}"
        latent_cache = LatentCache(args.latent_cache_dir or Path(args.output_dir) / "latents", tag)
    root = args.video_folder or Path(args.data_path).parent
    data = VideoPairDataset(pairs, root=root, num_frames=args.num_frames, height=args.height, width=args.width,
                            latent_cache=latent_cache)  # fmt: skip
    loader = torch.utils.data.DataLoader(data, batch_size=args.train_batch_size, shuffle=True, drop_last=True,
                                         collate_fn=collate_pairs, num_workers=args.dataloader_num_workers,
                                         generator=torch.Generator().manual_seed(args.seed))  # fmt: skip
    lr_scheduler = get_scheduler(args.lr_scheduler, optimizer=optimizer,
                                 num_warmup_steps=args.lr_warmup_steps * accelerator.num_processes,
                                 num_training_steps=args.max_train_steps * accelerator.num_processes)  # fmt: skip
    policy, optimizer, loader, lr_scheduler = accelerator.prepare(policy, optimizer, loader, lr_scheduler)
    if accelerator.is_main_process and log_with:
        accelerator.init_trackers(args.tracker_project, config={k: v for k, v in vars(args).items()
                                                                if isinstance(v, (int, float, str, bool))})  # fmt: skip
    ema = make_ema(accelerator.unwrap_model(policy), args.ema_decay) if args.use_ema else None
    if ema is not None:
        ema.to(accelerator.device)
        accelerator.register_for_checkpointing(ema)  # resumed with the rest of the state
    global_step = 0
    resume = _resume_path(args)
    if resume is not None:
        accelerator.load_state(str(resume))
        global_step = checkpoint_step(resume)
        logger.info("resumed from %s at step %d", resume, global_step)
    generator = torch.Generator().manual_seed(args.seed * 1000 + accelerator.process_index + global_step)
    dropout = random.Random(args.seed + global_step)
    epoch, skip = divmod(global_step * args.gradient_accumulation_steps, len(loader))
    history: list[dict[str, Any]] = []
    trainable = [p for p in policy.parameters() if p.requires_grad]
    start = time.perf_counter()
    while global_step < args.max_train_steps:
        epoch_loader = accelerator.skip_first_batches(loader, skip) if skip else loader
        skip = 0
        for batch in epoch_loader:
            with accelerator.accumulate(policy):
                latents_w = _latents(family, batch, latent_cache, accelerator.device, "chosen")
                latents_l = _latents(family, batch, latent_cache, accelerator.device, "rejected")
                captions = ["" if dropout.random() < args.caption_dropout else c for c in batch["caption"]]
                embeds = text_cache.get(captions).to(accelerator.device)
                loss, stats = dpo_step(family, policy, reference, latents_w, latents_l, embeds, beta, generator)
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(trainable, args.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            if not accelerator.sync_gradients:
                continue
            if ema is not None:
                ema.step(trainable)
            global_step += 1
            row = {"step": global_step, "epoch": epoch, "loss": accelerator.gather(loss.detach()).mean().item(),
                   "lr": lr_scheduler.get_last_lr()[0],
                   **{k: accelerator.gather(v.reshape(1)).mean().item() for k, v in stats.items()}}  # fmt: skip
            history.append(row)
            if global_step % args.logging_steps == 0:
                accelerator.log({k: v for k, v in row.items() if k != "step"}, step=global_step)
                logger.info("step %d: %s", global_step, {k: round(v, 6) for k, v in row.items() if k != "step"})
            if args.checkpointing_steps and global_step % args.checkpointing_steps == 0:
                if accelerator.is_main_process and args.checkpoints_total_limit:
                    prune_checkpoints(args.output_dir, args.checkpoints_total_limit - 1)
                accelerator.save_state(str(Path(args.output_dir) / f"checkpoint-{global_step}"))
            if (args.validation_prompts and args.validation_steps and global_step % args.validation_steps == 0
                    and accelerator.is_main_process):  # fmt: skip
                log_validation(args, family, accelerator.unwrap_model(policy), text_cache, accelerator, global_step)
            if global_step >= args.max_train_steps:
                break
        epoch += 1
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(policy)
        if ema is not None:
            ema.copy_to([p for p in unwrapped.parameters() if p.requires_grad])
        extra = {"global_step": global_step, "beta": beta, "ema_decay": args.ema_decay if ema is not None else None}
        save_trained_video(args, family, unwrapped, lora=lora, extra=extra)
        if args.validation_prompts and not args.validation_steps:
            log_validation(args, family, unwrapped, text_cache, accelerator, global_step)
    accelerator.end_training()

    def counters(cache: Any) -> dict[str, int] | None:
        return None if cache is None else {"hits": cache.hits, "misses": cache.misses}

    return {"global_step": global_step, "output_dir": args.output_dir, "history": history,
            "seconds": time.perf_counter() - start, "text_cache": counters(text_cache),
            "latent_cache": counters(latent_cache)}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry (``VideoDPO/train.py``; run it under ``accelerate launch`` for several GPUs)."""
    from unifiedreward.args import parse_args
    from unifiedreward.errors import UnifiedRewardError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    (args,) = parse_args([VideoDPOArguments], argv, description=__doc__.split("\n\n")[0])
    try:
        result = train(args)
    except (UnifiedRewardError, ValueError) as err:
        logger.error("%s", err)
        return 2
    print(f"trained {result['global_step']} step(s) -> {result['output_dir']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
