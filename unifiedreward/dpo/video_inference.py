"""Trained video-DPO weights: saving, loading into the base pipeline, validation samples, ``VideoDPO/inference.py``.

A training output folder holds ``dpo_training.json`` (``base_model``, ``family``, ``component``, ``lora``, step,
β) and either the LoRA weights (``pytorch_lora_weights.safetensors``, loadable with the pipeline's
``load_lora_weights``) or the full denoiser under ``transformer/`` (Wan) / ``unet/`` (AnimateDiff).
:func:`load_trained_video_pipeline` rebuilds the sampling pipeline from it; ``VideoDPO/inference.py`` samples
prompts to mp4 with the generation flags of ``data_generation.py`` and the same per-video seeds.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unifiedreward.dpo.video_generate import GenerationArguments, load_pipeline, sample, video_seed, write_mp4

logger = logging.getLogger(__name__)

__all__ = ["InferenceArguments", "load_trained_video_pipeline", "log_validation", "main", "save_trained_video"]

TRAINING_INFO = "dpo_training.json"
_COMPONENT_CLASSES = {"transformer": "WanTransformer3DModel", "unet": "UNetMotionModel"}


def save_trained_video(args: Any, family: Any, policy: torch.nn.Module, *, lora: bool,
                       extra: dict[str, Any] | None = None) -> Path:  # fmt: skip
    """Save the trained ``policy`` and ``dpo_training.json`` into ``args.output_dir`` (returned)."""
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if lora:
        from diffusers import AnimateDiffPipeline, WanPipeline
        from diffusers.utils import convert_state_dict_to_diffusers
        from peft.utils import get_peft_model_state_dict

        layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(policy))
        if family.name == "wan":
            WanPipeline.save_lora_weights(out, transformer_lora_layers=layers)
        else:
            AnimateDiffPipeline.save_lora_weights(out, unet_lora_layers=layers)
    else:
        policy.save_pretrained(out / family.model_subfolder)
    info = {"base_model": args.model, "motion_adapter": args.motion_adapter, "family": family.name,
            "component": family.model_subfolder, "lora": lora, **(extra or {})}  # fmt: skip
    (out / TRAINING_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return out


def load_trained_video_pipeline(trained: str | Path, *, base_model: str | None = None,
                                dtype: torch.dtype = torch.float32, device: str = "cpu") -> Any:  # fmt: skip
    """The base pipeline with the weights of a :func:`save_trained_video` folder, on ``device``."""
    import diffusers

    trained = Path(trained)
    info_path = trained / TRAINING_INFO
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path} not found: not a VideoDPO training output")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    pipe = load_pipeline(base_model or info["base_model"], motion_adapter=info.get("motion_adapter"), dtype=dtype,
                         device=device)  # fmt: skip
    if info["lora"]:
        pipe.load_lora_weights(trained)
    else:
        component = getattr(diffusers, _COMPONENT_CLASSES[info["component"]])
        setattr(pipe, info["component"], component.from_pretrained(trained / info["component"]).to(device, dtype))
    return pipe


def log_validation(args: Any, family: Any, policy: torch.nn.Module, text_cache: Any, accelerator: Any,
                   step: int) -> list[Path]:  # fmt: skip
    """Sample ``args.validation_prompts`` with the current ``policy`` (cached text embeddings, no text encoder),
    write ``<output_dir>/samples/step-<step>/<i>.mp4`` and log the clips to tensorboard / wandb."""
    from diffusers import DiffusionPipeline

    config = DiffusionPipeline.load_config(args.model)
    skip = {k: None for k in ("text_encoder", "tokenizer") if k in config}
    pipe = DiffusionPipeline.from_pretrained(args.model, **skip, **{family.model_subfolder: policy,
                                                                   "vae": family.vae})  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    prompts = list(args.validation_prompts)
    embeds = text_cache.get(prompts).to(accelerator.device)
    negative = text_cache.get([""] * len(prompts)).to(accelerator.device)
    settings = GenerationArguments(model=args.model, prompts_file="", output_dir="", num_frames=args.num_frames,
                                   height=args.height, width=args.width,
                                   num_inference_steps=args.validation_inference_steps,
                                   guidance_scale=args.validation_guidance_scale,
                                   max_sequence_length=args.max_sequence_length)  # fmt: skip
    was_training = policy.training
    policy.eval()
    with torch.no_grad():
        videos = sample(pipe, prompts, [video_seed(args.seed, str(i), 0) for i in range(len(prompts))], settings,
                        prompt_embeds=embeds, negative_prompt_embeds=negative)  # fmt: skip
    policy.train(was_training)
    folder = Path(args.output_dir) / "samples" / f"step-{step}"
    paths = []
    for i, frames in enumerate(videos):
        paths.append(folder / f"{i}.mp4")
        write_mp4(paths[-1], frames, fps=args.validation_fps, crf=18)
    for tracker in accelerator.trackers:
        stacked = np.stack(videos)  # [N, F, H, W, 3]
        if tracker.name == "tensorboard":
            tracker.writer.add_video("validation", torch.from_numpy(stacked).permute(0, 1, 4, 2, 3), step,
                                     fps=args.validation_fps)  # fmt: skip
        elif tracker.name == "wandb":
            import wandb

            tracker.log({"validation": [wandb.Video(str(p), caption=c) for p, c in zip(paths, prompts, strict=True)]},
                        step=step)  # fmt: skip
    return paths


@dataclass
class InferenceArguments(GenerationArguments):
    """Sample prompts with a VideoDPO-trained model (``--trained``), flags as ``data_generation.py``."""

    trained: str = field(default="", metadata={"help": "The training output folder (dpo_training.json)."})


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry (``VideoDPO/inference.py``): ``--trained OUT --prompts_file p.json --output_dir dir``
    (``--model`` is the base pipeline; the one recorded in ``dpo_training.json`` when given as ``recorded``)."""
    from unifiedreward.args import parse_args
    from unifiedreward.dpo.video_generate import _dtype, run_generation

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    (args,) = parse_args([InferenceArguments], argv, description=__doc__.split("\n\n")[0])
    if not args.trained:
        logger.error("--trained is required")
        return 2
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    base = None if args.model == "recorded" else args.model
    pipe = load_trained_video_pipeline(args.trained, base_model=base, dtype=_dtype(args.dtype, device), device=device)
    summary = run_generation(args, pipe=pipe)
    print(f"{summary['prompts']} prompt(s), {summary['videos']} video(s) -> {summary['data_file']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
