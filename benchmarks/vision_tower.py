"""Time the Qwen2.5-VL vision tower: stock vs batched windowed attention, with and without image dedup.

Workload: a pair tournament, ``--pairs`` pairs drawn round-robin from ``--distinct`` images, so one forward sees
``2 * pairs`` images of which only ``distinct`` differ (what a judging call over several pairs / both orders feeds
the tower). Random weights and random patch rows (no processor, no checkpoint download). Four paths:

* ``stock``: the stock tower on all ``2 * pairs`` images (transformers' per-window attention loop);
* ``batched-attn``: the same with :func:`unifiedreward.judge.vision.patch_vision_attention`;
* ``dedup``: :func:`unifiedreward.judge.vision.dedup_encode` -- the stock tower on the distinct images only;
* ``batched-attn+dedup``: both.

Examples:
    python benchmarks/vision_tower.py --shape tiny
    python benchmarks/vision_tower.py --shape 7b --device cuda --dtype bfloat16 --pairs 16 --distinct 8
    python benchmarks/vision_tower.py --shape 7b --pairs 1 --distinct 2 --image-sizes 112x112 --iters 1 --warmup 0

``--shape 7b`` is the vision config of Qwen/Qwen2.5-VL-7B-Instruct: depth 32, hidden 1280, 16 heads, MLP 3420, patch
14, merge 2, window 112, full attention in blocks 7/15/23/31, output 3584 (the transformers default
``Qwen2_5_VLVisionConfig`` has ``hidden_size=3584``; the checkpoint overrides it with 1280).
"""

from __future__ import annotations

import argparse
import itertools
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from unifiedreward.testing.shapes import QWEN25_VL_7B_VISION

SHAPES: dict[str, dict[str, Any]] = {
    "tiny": {
        "depth": 4,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_heads": 4,
        "out_hidden_size": 64,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 56,
        "fullatt_block_indexes": [3],
    },
    "7b": dict(QWEN25_VL_7B_VISION, hidden_act="silu"),
}
DEFAULT_SIZES = {"tiny": "224x224,196x252", "7b": "448x448"}


def machine(device: torch.device) -> str:
    """One line naming the hardware and the software versions."""
    import transformers

    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as cpuinfo:
                names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
            hardware = f"{names[0]} ({len(names)} logical CPUs)" if names else hardware
        except OSError:
            pass
        hardware += f", torch threads {torch.get_num_threads()}"
    return f"{hardware} | torch {torch.__version__} | transformers {transformers.__version__}"


def build_tower(shape: str, device: torch.device, dtype: torch.dtype, attn: str, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised ``Qwen2_5_VisionTransformerPretrainedModel`` of ``shape`` in eval mode."""
    from transformers import Qwen2_5_VLVisionConfig
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VisionTransformerPretrainedModel

    config = Qwen2_5_VLVisionConfig(**SHAPES[shape])
    config._attn_implementation = attn
    torch.manual_seed(seed)
    with torch.device(device):
        tower = Qwen2_5_VisionTransformerPretrainedModel._from_config(config, dtype=dtype)
    return tower.eval()


def parse_sizes(text: str, factor: int) -> list[tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        height, width = (int(v) for v in item.lower().split("x"))
        if height % factor or width % factor:
            raise SystemExit(f"image size {item} is not a multiple of patch*merge = {factor}")
        sizes.append((height, width))
    return sizes


def tournament(
    distinct: int, pairs: int, sizes: list[tuple[int, int]], patch: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Patch rows of ``pairs`` pairs over ``distinct`` random images (sizes cycled), both images of each pair.

    Returns:
        ``pixel_values`` ``(N, 3 * 2 * patch * patch)`` and ``grid_thw`` ``(2 * pairs, 3)``.
    """
    generator = torch.Generator().manual_seed(1234)
    images = []
    for index in range(distinct):
        height, width = sizes[index % len(sizes)]
        grid = (1, height // patch, width // patch)
        images.append((torch.randn(grid[1] * grid[2], 3 * 2 * patch * patch, generator=generator), grid))
    all_pairs = list(itertools.combinations(range(distinct), 2)) or [(0, 0)]
    order = [image for pair in itertools.islice(itertools.cycle(all_pairs), pairs) for image in pair]
    pixel_values = torch.cat([images[i][0] for i in order]).to(device, dtype)
    grid_thw = torch.tensor([images[i][1] for i in order], device=device)
    return pixel_values, grid_thw


def run_paths(
    paths: list[tuple[str, Callable[[], Any], Callable[[], Any] | None]],
    device: torch.device,
    warmup: int,
    iters: int,
) -> list[tuple[str, float, Any]]:
    """Median wall time (ms) and last result of each path.

    The paths run round-robin (one forward of each per iteration), so load drift on a shared machine biases none of
    them. ``paths`` holds ``(name, fn, enter)``: ``enter()`` (if given) patches before ``fn`` and returns an object
    with ``unpatch()``.
    """
    times: dict[str, list[float]] = {name: [] for name, _, _ in paths}
    results: dict[str, Any] = {}
    for iteration in range(warmup + iters):
        for name, fn, enter in paths:
            handle = enter() if enter is not None else None
            try:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
                results[name] = fn()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                elapsed = (time.perf_counter() - start) * 1e3
            finally:
                if handle is not None:
                    handle.unpatch()
            if iteration >= warmup:
                times[name].append(elapsed)
    return [(name, statistics.median(times[name]), results[name]) for name, _, _ in paths]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny", help="tower size (default tiny)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa", help="attention implementation")
    parser.add_argument("--pairs", type=int, default=8, help="pairs per forward (2 images each; default 8)")
    parser.add_argument("--distinct", type=int, default=4, help="distinct images the pairs are drawn from (default 4)")
    parser.add_argument(
        "--image-sizes",
        default=None,
        help="comma-separated HxW pixel sizes cycled over the distinct images, multiples of 28 "
        "(default tiny: 224x224,196x252; 7b: 448x448)",
    )
    parser.add_argument("--iters", type=int, default=5, help="timed forwards per path (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed forwards per path")
    args = parser.parse_args(argv)

    from unifiedreward.judge.vision import dedup_encode, patch_vision_attention

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but CUDA is not available")
    print(f"machine: {machine(device)}")
    start = time.perf_counter()
    tower = build_tower(args.shape, device, dtype, args.attn)
    config = tower.config
    params = sum(p.numel() for p in tower.parameters()) / 1e6
    print(
        f"tower: {args.shape} ({params:.0f}M params, depth {config.depth}, hidden {config.hidden_size}, "
        f"window {config.window_size}, full-attention blocks {list(config.fullatt_block_indexes)}), {args.dtype}, "
        f"{args.attn}; built in {time.perf_counter() - start:.1f} s"
    )
    sizes = parse_sizes(args.image_sizes or DEFAULT_SIZES[args.shape], config.patch_size * config.spatial_merge_size)
    pixel_values, grid_thw = tournament(args.distinct, args.pairs, sizes, config.patch_size, dtype, device)
    images = grid_thw.shape[0]
    from transformers.vision_utils import get_vision_window_index

    _, cu_window = get_vision_window_index(
        grid_thw.cpu(), config.spatial_merge_size, config.window_size, config.patch_size
    )
    windows = (cu_window[1:] - cu_window[:-1]).tolist()
    print(
        f"workload: {args.pairs} pairs over {args.distinct} distinct images {args.image_sizes or DEFAULT_SIZES[args.shape]}"
        f" -> {images} images, {pixel_values.shape[0]} patches, {len(windows)} windows per windowed block "
        f"(lengths {sorted(set(windows))})"
    )

    split = (grid_thw.prod(-1) // config.spatial_merge_size**2).tolist()

    def encode(pixels: torch.Tensor, grid: torch.Tensor, return_dict: bool = True) -> Any:
        # the shape of Qwen2_5_VLModel.get_image_features: pooler_output split per image
        output = tower(pixels, grid_thw=grid)
        output.pooler_output = torch.split(
            output.pooler_output, (grid.prod(-1) // config.spatial_merge_size**2).tolist()
        )
        return output

    def full() -> torch.Tensor:
        return tower(pixel_values, grid_thw=grid_thw).pooler_output

    def deduped() -> torch.Tensor:
        return torch.cat(dedup_encode(encode, pixel_values, grid_thw).pooler_output)

    def patch() -> Any:
        return patch_vision_attention(tower)

    paths = [
        ("stock", full, None),
        ("batched-attn", full, patch),
        ("dedup", deduped, None),
        ("batched-attn+dedup", deduped, patch),
    ]
    with torch.inference_mode():
        rows = run_paths(paths, device, args.warmup, max(args.iters, 1))
    reference = rows[0][2]
    assert reference.shape[0] == sum(split)
    print()
    print(f"{'path':<20} {'ms/forward':>11} {'images/s':>10} {'speedup':>8} {'max |diff|':>11}")
    for name, ms, out in rows:
        diff = (out.float() - reference.float()).abs().max().item()
        print(f"{name:<20} {ms:>11.2f} {images / ms * 1e3:>10.1f} {rows[0][1] / ms:>7.2f}x {diff:>11.2e}")


if __name__ == "__main__":
    main()
