"""Diffusion-DPO training throughput: pairs/s of one optimizer step of the denoiser.

    python benchmarks/diffusion_dpo_throughput.py                                   # tiny SD UNet on CPU (seconds)
    python benchmarks/diffusion_dpo_throughput.py --shape sdxl --device cuda --batch_size 8 \\
        --gradient_checkpointing --dtype bfloat16                                   # SDXL / SDXL-Turbo UNet, one GPU
    python benchmarks/diffusion_dpo_throughput.py --shape sdxl-mini --steps 2       # the SDXL code path, CPU-sized

What one step does (the loop of ``unifiedreward.dpo.diffusion_train``, on the denoiser only): for B pairs, one noise
draw and one timestep per pair (``--timesteps``), the policy forward on the 2B noisy latents (winner and loser), the
reference forward on the same inputs without gradients (a frozen copy, or the LoRA-disabled policy with
``--lora_rank``), per-sample MSEs, :func:`unifiedreward.dpo.losses.diffusion_dpo_loss`, backward and the optimizer
step. Latents and text embeddings are random tensors of the model's shapes (VAE encoding and caption encoding are
excluded: precompute them at scale, or add ~one VAE encoder pass per image). Weights are random, built from the
model config (no download).

Shapes: ``tiny`` — the test UNet (1.4M parameters, 8 x 8 latents); ``sdxl`` — the SDXL base / SDXL-Turbo UNet (2.6B
parameters, two text encoders' 2048-d states, pooled 1280-d embeddings, micro-conditioning), latents of
``--resolution / 8`` (512 px: 64 x 64, upstream's turbo recipe); ``sdxl-mini`` — the SDXL architecture with narrow
blocks (for checking the path on a CPU).

Reported: pairs/s over ``--steps`` timed steps after ``--warmup``, seconds per step, and on CUDA the peak memory.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from unifiedreward.dpo.diffusers_common import Reference, make_optimizer, noisy_and_target, sample_timesteps
from unifiedreward.dpo.diffusion_models import add_lora
from unifiedreward.dpo.diffusion_tiny import SDXL_UNET, TINY_UNET
from unifiedreward.dpo.losses import diffusion_dpo_loss, per_sample_mse

SHAPES = {
    "tiny": (TINY_UNET, {"text_dim": 32, "text_len": 16, "pooled": None}),
    "sdxl": (SDXL_UNET, {"text_dim": 2048, "text_len": 77, "pooled": 1280}),
    "sdxl-mini": ({**SDXL_UNET, "block_out_channels": (32, 64, 128), "transformer_layers_per_block": (1, 1, 1),
                   "attention_head_dim": (2, 4, 8)}, {"text_dim": 2048, "text_len": 77, "pooled": 1280}),
}  # fmt: skip


def build(shape: str, device: str, lora_rank: int) -> tuple[torch.nn.Module, Reference, dict]:
    from diffusers import UNet2DConditionModel

    config, text = SHAPES[shape]
    unet = UNet2DConditionModel(**config).to(device)
    if lora_rank:
        add_lora(unet, lora_rank)
        reference = Reference(unet, "lora_disabled")
    else:
        reference = Reference(unet, "copy")
    return unet, reference, text


def run(args: argparse.Namespace) -> dict:
    from diffusers import DDPMScheduler

    torch.manual_seed(0)
    device = args.device
    unet, reference, text = build(args.shape, device, args.lora_rank)
    if reference.model is not None and args.dtype != "float32":
        reference.model.to(dtype=getattr(torch, args.dtype))
    if args.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    optimizer = make_optimizer(args.optimizer, unet.parameters(), lr=1e-6)
    scheduler = DDPMScheduler(rescale_betas_zero_snr=args.timesteps == "turbo")
    size = args.resolution // 8 if args.shape != "tiny" else 8
    b = args.batch_size
    latents = torch.randn(2 * b, 4, size, size, device=device)
    embeds = torch.randn(2 * b, text["text_len"], text["text_dim"], device=device)
    added = None
    if text["pooled"]:
        time_ids = torch.tensor([args.resolution, args.resolution, 0, 0, args.resolution, args.resolution],
                                device=device, dtype=torch.float32).repeat(2 * b, 1)  # fmt: skip
        added = {"text_embeds": torch.randn(2 * b, text["pooled"], device=device), "time_ids": time_ids}
    autocast = torch.autocast(device_type=device.split(":")[0], dtype=getattr(torch, args.dtype),
                              enabled=args.dtype != "float32")  # fmt: skip

    def step() -> float:
        t, _ = sample_timesteps(b, args.timesteps)
        noise = torch.randn(b, 4, size, size, device=device)
        t, noise = torch.cat([t, t]).to(device), torch.cat([noise, noise])
        noisy, target = noisy_and_target(latents, noise, t, scheduler=scheduler)
        with autocast:
            err = per_sample_mse(unet(noisy, t, encoder_hidden_states=embeds, added_cond_kwargs=added).sample, target)
            with reference.active() as ref:
                ref_err = per_sample_mse(ref(noisy, t, encoder_hidden_states=embeds, added_cond_kwargs=added).sample,
                                         target)  # fmt: skip
        loss, _ = diffusion_dpo_loss(err[:b], err[b:], ref_err[:b], ref_err[b:], 5000.0)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step()
    sync()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    seconds = (time.perf_counter() - start) / args.steps
    result = {
        "shape": args.shape, "device": device, "dtype": args.dtype, "batch_pairs": b, "latent_size": size,
        "lora_rank": args.lora_rank, "gradient_checkpointing": args.gradient_checkpointing,
        "optimizer": args.optimizer, "timesteps": args.timesteps,
        "parameters_m": round(sum(p.numel() for p in unet.parameters()) / 1e6, 2),
        "seconds_per_step": round(seconds, 4), "pairs_per_second": round(b / seconds, 3),
        "machine": f"{platform.machine()} {torch.get_num_threads()} threads"
        + (f", {torch.cuda.get_device_name()}" if device.startswith("cuda") else ""),
    }  # fmt: skip
    if device.startswith("cuda"):
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32",
                        help="autocast dtype of the forwards (the frozen reference copy is stored in it)")  # fmt: skip
    parser.add_argument("--batch_size", type=int, default=4, help="pairs per step")
    parser.add_argument("--resolution", type=int, default=512, help="image size (latents: /8) of the SDXL shapes")
    parser.add_argument("--lora_rank", type=int, default=0, help="0: full training with a frozen copy as reference")
    parser.add_argument("--optimizer", choices=["adamw", "adafactor", "adamw_8bit"], default="adamw")
    parser.add_argument("--timesteps", choices=["uniform", "turbo"], default="turbo")
    parser.add_argument("--gradient_checkpointing", action="store_true")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run(args)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
