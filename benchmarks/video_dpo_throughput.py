"""Video DPO training throughput (pairs/s) of the real step (:func:`unifiedreward.dpo.video_train.dpo_step`).

    python benchmarks/video_dpo_throughput.py                              # tiny Wan shape on CPU (seconds)
    python benchmarks/video_dpo_throughput.py --shape wan-1.3b --device cuda --lora_rank 64 --gradient_checkpointing
    python benchmarks/video_dpo_throughput.py --shape wan-1.3b --device cuda --num_frames 81 --gradient_checkpointing

A ``WanTransformer3DModel`` with random weights, either the tiny test shape (:data:`unifiedreward.dpo.video_tiny.
WAN_SHAPE`, 16 × 16 px) or Wan 2.1 T2V 1.3B's (30 layers, 12 × 128 heads, FFN 8960, text 4096; bf16 weights under
autocast, the trained LoRA / full weights in float32 as in training). Latents and text embeddings are random tensors
of the shapes the cached path feeds (``[B, 16, 1 + (F-1)/4, H/8, W/8]`` and ``[B, 512, 4096]``), so the number is the
denoiser's: policy forward + backward on the 2B winner/loser batch, the reference forward (LoRA disabled, or a
frozen copy for full fine-tuning) and an AdamW step. The first ``--warmup`` steps are not timed. Reported: pairs/s,
s/step, peak GPU memory, achieved TFLOP/s (``6·N·tokens`` for the policy and ``2·N·tokens`` for the reference, with
N the transformer's parameters and tokens = latent patches; attention not counted).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from unifiedreward.dpo.diffusers_common import Reference, make_optimizer
from unifiedreward.dpo.video_models import VideoFamily
from unifiedreward.dpo.video_tiny import WAN_SHAPE
from unifiedreward.dpo.video_train import dpo_step

WAN_1_3B = dict(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16, out_channels=16,
                text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
                qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=["tiny", "wan-1.3b"], default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num_frames", type=int, default=None, help="pixel frames (default 5 tiny, 33 wan-1.3b)")
    parser.add_argument("--height", type=int, default=None, help="default 16 tiny, 480 wan-1.3b")
    parser.add_argument("--width", type=int, default=None, help="default 16 tiny, 832 wan-1.3b")
    parser.add_argument("--batch_size", type=int, default=1, help="pairs per step")
    parser.add_argument("--text_len", type=int, default=None, help="text tokens (default 16 tiny, 512 wan-1.3b)")
    parser.add_argument("--lora_rank", type=int, default=0)
    parser.add_argument("--gradient_checkpointing", action="store_true")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args(argv)
    from diffusers import FlowMatchEulerDiscreteScheduler, WanTransformer3DModel

    tiny = args.shape == "tiny"
    frames = args.num_frames or (5 if tiny else 33)
    height, width = args.height or (16 if tiny else 480), args.width or (16 if tiny else 832)
    text_len = args.text_len or (16 if tiny else 512)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    with torch.device(device):
        model = WanTransformer3DModel(**(WAN_SHAPE if tiny else WAN_1_3B))
    weight_dtype = torch.bfloat16 if cuda else torch.float32
    if args.lora_rank:
        from diffusers.training_utils import cast_training_params

        from unifiedreward.dpo.diffusion_models import add_lora

        model.to(weight_dtype)
        add_lora(model, args.lora_rank)
        cast_training_params(model, dtype=torch.float32)
    reference = Reference(model, "lora_disabled" if args.lora_rank else "copy")
    if reference.model is not None and weight_dtype != torch.float32:
        reference.model.to(weight_dtype)
    if args.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    model.train()
    family = VideoFamily("wan", model, None, FlowMatchEulerDiscreteScheduler(shift=3.0), "transformer")
    optimizer = make_optimizer("adamw", model.parameters(), lr=1e-5)
    latent = (args.batch_size, 16, 1 + (frames - 1) // 4, height // 8, width // 8)
    text_dim = (WAN_SHAPE if tiny else WAN_1_3B)["text_dim"]
    generator = torch.Generator().manual_seed(0)
    times = []
    for step in range(args.warmup + args.steps):
        z_w, z_l = torch.randn(latent, device=device), torch.randn(latent, device=device)
        embeds = torch.randn(args.batch_size, text_len, text_dim, device=device)
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=weight_dtype, enabled=cuda):
            loss, _ = dpo_step(family, model, reference, z_w, z_l, embeds, beta=500.0, generator=generator)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    seconds = sum(times) / len(times)
    params = sum(p.numel() for name, p in model.named_parameters() if "lora_" not in name)
    tokens = 2 * args.batch_size * latent[2] * (latent[3] // 2) * (latent[4] // 2)
    result = {
        "machine": platform.node(), "device": torch.cuda.get_device_name(device) if cuda else platform.machine(),
        "shape": args.shape, "latents": list(latent), "text_len": text_len, "lora_rank": args.lora_rank,
        "gradient_checkpointing": args.gradient_checkpointing, "parameters": params,
        "pairs_per_s": args.batch_size / seconds, "s_per_step": seconds,
        "tflops": 8 * params * tokens / seconds / 1e12,
        "peak_gpu_gib": torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None,
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
