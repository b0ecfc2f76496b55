"""Sample from a Diffusion-DPO / Flow-DPO result (``DiffusionDPO/inference.py``).

Loads the base pipeline named in ``<trained>/dpo_training.json`` with the trained weights (full ``unet/`` or
``transformer/`` folder, or LoRA weights; :func:`unifiedreward.dpo.diffusion_models.load_trained_pipeline`) and
writes ``<output_dir>/<index>.png`` per prompt, image ``i`` seeded with ``seed + i`` (upstream's script used an
undefined loop variable for the seed). SDXL-Turbo as upstream: ``--num_inference_steps 4 --guidance_scale 0``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unifiedreward.dpo.diffusion_models import load_trained_pipeline

logger = logging.getLogger(__name__)

__all__ = ["InferenceArguments", "generate_images"]


def _f(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class InferenceArguments:
    """Images from a trained Diffusion-DPO model."""

    trained: str = field(metadata={"help": "train.py --output_dir (holds dpo_training.json)."})
    output_dir: str = field(metadata={"help": "Where <index>.png go."})
    prompts: list[str] | None = field(default=None, metadata={"help": "Prompts to sample."})
    prompt_file: str | None = _f(None, "A text file with one prompt per line (added to --prompts).")
    base_model: str | None = _f(None, "Base pipeline (default: the one recorded at training).")
    num_inference_steps: int = _f(4, "Sampling steps (SDXL-Turbo: 4 as upstream).")
    guidance_scale: float = _f(0.0, "Guidance scale (SDXL-Turbo: 0).")
    height: int | None = _f(None, "Image height (default: the model's).")
    width: int | None = _f(None, "Image width (default: the model's).")
    seed: int = _f(0, "Image i uses seed + i.")
    dtype: str = _f("float32", "Weights dtype: float32, float16, bfloat16.")
    device: str | None = _f(None, "Device (default: cuda if available).")
    fuse_lora: bool = _f(False, "Merge LoRA weights into the base weights.")


def generate_images(args: InferenceArguments, *, pipe: Any = None) -> list[Path]:
    """Sample every prompt once; returns the written files."""
    import torch

    from unifiedreward.dpo.diffusion_generate import _torch_dtype

    prompts = list(args.prompts or [])
    if args.prompt_file:
        prompts += [line.strip() for line in Path(args.prompt_file).read_text(encoding="utf-8").splitlines()
                    if line.strip()]  # fmt: skip
    if not prompts:
        raise ValueError("give --prompts or --prompt_file")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if pipe is None:
        pipe = load_trained_pipeline(args.trained, base_model=args.base_model, dtype=_torch_dtype(args.dtype),
                                     fuse_lora=args.fuse_lora)  # fmt: skip
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    size = {k: v for k, v in (("height", args.height), ("width", args.width)) if v is not None}
    files = []
    for i, prompt in enumerate(prompts):
        generator = torch.Generator("cpu").manual_seed(args.seed + i)
        image = pipe(prompt, num_inference_steps=args.num_inference_steps, guidance_scale=args.guidance_scale,
                     generator=generator, **size).images[0]  # fmt: skip
        files.append(out / f"{i:05d}.png")
        image.save(files[-1])
    return files


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry (``DiffusionDPO/inference.py``)."""
    from unifiedreward.args import parse_args

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    (args,) = parse_args([InferenceArguments], list(sys.argv[1:] if argv is None else argv),
                         description=__doc__.split("\n\n")[0])  # fmt: skip
    files = generate_images(args)
    print(f"{len(files)} image(s) -> {args.output_dir}")
    return 0
