"""End-to-end example on the built-in default: judge generated image and video pairs with a reward model.

By default it builds a tiny random Qwen2.5-VL reward model offline (no download), saves it, loads it back through
the same loader users call, writes synthetic images and videos to disk, and judges them with the real protocol:
pair rank and point score for image generation and video generation. A random model's answers are nonsense, so
expect ``invalid`` results with the reason the parser gives; point ``--model`` at a released checkpoint (on a GPU)
to see real verdicts::

    python -m unifiedreward.demo                                      # tiny random model, CPU, ~10 s
    python -m unifiedreward.demo --model CodeGoat24/UnifiedReward-qwen-7b --device_map auto --dtype bfloat16
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from unifiedreward.args import parse_args

logger = logging.getLogger(__name__)


@dataclass
class DemoArguments:
    """Flags of ``python -m unifiedreward.demo``."""

    output_dir: str = field(default="outputs/demo", metadata={"help": "Folder for the model, media and results."})
    model: str | None = field(
        default=None,
        metadata={"help": "Reward model path or hub id. Default: build a tiny random model offline."},
    )
    arch: str = field(
        default="qwen2_5_vl",
        metadata={"help": "Tiny architecture when --model is not given: qwen2_5_vl, qwen2_vl, qwen3_vl, llava_onevision."},
    )
    version: str = field(default="1.0", metadata={"help": "Prompt generation: 1.0, 2.0, think, think-qwen3."})
    dtype: str = field(default="auto", metadata={"help": "Model dtype: auto, float32, bfloat16, float16."})
    device_map: str | None = field(default=None, metadata={"help": "e.g. 'auto' or 'cuda:0'. Default: CPU."})
    max_new_tokens: int = field(default=32, metadata={"help": "Answer length cap."})
    num_frames: int = field(default=4, metadata={"help": "Frames sampled per video."})
    seed: int = field(default=0, metadata={"help": "Seed of the tiny model's random weights."})


CAPTION = "a red circle on a white background"


def _jsonable(value: Any) -> Any:
    if is_dataclass(value):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {_jsonable(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def write_demo_media(folder: Path, num_frames: int) -> dict[str, Path]:
    """Write the demo's synthetic media: a matching and a non-matching image and video for :data:`CAPTION`."""
    import numpy as np

    from unifiedreward.testing.media import make_image, write_video

    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "image_match": folder / "red_circle.png",
        "image_other": folder / "blue_square.png",
        "video_match": folder / "red_circle.mp4",
        "video_other": folder / "blue_square.mp4",
    }
    make_image(96, 64, (220, 30, 30), shape="circle").save(paths["image_match"])
    make_image(96, 64, (30, 30, 220), shape="square").save(paths["image_other"])
    for key, color in (("video_match", (220, 30, 30)), ("video_other", (30, 30, 220))):
        frames = np.full((max(num_frames, 8), 64, 64, 3), 255, dtype=np.uint8)
        for t in range(frames.shape[0]):  # the shape moves right over time
            x = 4 + 4 * t
            frames[t, 24:40, x : x + 16] = color
        write_video(paths[key], frames, fps=8)
    return paths


def run(args: DemoArguments) -> dict[str, Any]:
    """Run the demo and return its results (also written to ``output_dir/results.json``)."""
    from unifiedreward.judge import JudgeRequest, RewardJudge, TransformersBackend
    from unifiedreward.judge.base import GenerationConfig
    from unifiedreward.media import load_image, load_video
    from unifiedreward.modeling import load_reward_model, model_family

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model_path = args.model
    if model_path is None:
        from unifiedreward.testing.tiny_models import save_tiny_model

        model_path = str(save_tiny_model(args.arch, out / f"tiny-{args.arch}", seed=args.seed))
        print(f"[demo] built a tiny random {args.arch} reward model at {model_path}")
    model, processor = load_reward_model(model_path, dtype=args.dtype, device_map=args.device_map)
    family = model_family(model)
    print(f"[demo] loaded {model.config.model_type} ({family} prompts), {model.num_parameters():,} parameters")

    paths = write_demo_media(out / "media", args.num_frames)
    images = [load_image(paths["image_match"]), load_image(paths["image_other"])]
    videos = [load_video(paths[k], num_frames=args.num_frames) for k in ("video_match", "video_other")]
    requests = [
        JudgeRequest("image_generation", "pair_rank", images=images, fields={"prompt": CAPTION}, id="image-pair"),
        JudgeRequest("image_generation", "point_score", images=images[:1], fields={"prompt": CAPTION}, id="image-1"),
        JudgeRequest("video_generation", "pair_rank", videos=videos, fields={"prompt": CAPTION}, id="video-pair"),
        JudgeRequest("video_generation", "point_score", videos=videos[:1], fields={"prompt": CAPTION}, id="video-1"),
    ]
    backend = TransformersBackend(model, processor, batch_size=4)
    judge = RewardJudge(
        backend, family=family, version=args.version, generation=GenerationConfig(max_new_tokens=args.max_new_tokens)
    )
    results = judge.judge(requests)
    rows = []
    for request, result in zip(requests, results, strict=True):
        row = {
            "id": request.id,
            "task": request.task,
            "mode": request.mode,
            "template": judge.template_for(request).id,
            "status": result.status,
            "verdict": getattr(result, "verdict", None),
            "score": getattr(result, "score", None),
            "reason": result.reason,
            "raw": result.raw,
        }
        rows.append(_jsonable(row))
    summary = {"model": model_path, "family": family, "seconds": round(time.perf_counter() - start, 2), "results": rows}
    (out / "results.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    _print_table(rows)
    print(f"[demo] wrote {out / 'results.json'} in {summary['seconds']} s")
    return summary


def _print_table(rows: list[dict[str, Any]]) -> None:
    header = f"{'request':<11} {'template':<16} {'status':<8} {'verdict/score':<14} detail"
    print(header)
    print("-" * len(header))
    for row in rows:
        value = row["verdict"] if row["mode"] != "point_score" else row["score"]
        detail = f"{row['reason']}; " if row["status"] == "invalid" else ""
        detail += f"answer={row['raw'][:48]!r}"
        print(f"{row['id']:<11} {row['template']:<16} {row['status']:<8} {value!s:<14} {detail}")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    (args,) = parse_args([DemoArguments], argv, description=__doc__.split("\n\n")[0])
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
