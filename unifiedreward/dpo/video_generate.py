"""``VideoDPO/data_generation.py``: N videos per prompt from a diffusers video pipeline, as mp4, seeds recorded.

Upstream (protocol reference §4.3) sampled T2V-Turbo with one unseeded random seed per prompt that it never stored,
wrote ``videos/{idx:06}-{k}.mp4`` and rewrote ``data.json`` dropping prompts already generated. Here:

* the pipeline is any :class:`diffusers.WanPipeline` / :class:`diffusers.AnimateDiffPipeline` (folder or hub id;
  ``--motion_adapter`` adds an AnimateDiff adapter to an SD 1.5 base);
* video ``k`` of prompt ``id`` is drawn with its own generator seeded ``input_seed(seed, "<id>:<k>")`` (recorded in the
  output), so any video is reproducible alone, whatever the batching, sharding or resumption;
* files: ``<output_dir>/videos/<id>-<k>.mp4`` (h264, ``--crf``), the run log ``<output_dir>/data.jsonl`` (one line
  per prompt, appended and fsynced per chunk by :func:`unifiedreward.io.run_resumable`: a killed run resumes where it
  stopped, a run with other settings is refused) and ``<output_dir>/data.json``, the prompts in input order::

      {"id": "17", "caption": "...", "videos": ["videos/17-0.mp4", ...], "seeds": [..], "fps": 8, "num_frames": 16}

  (paths relative to ``output_dir``: the file ``VideoDPO/sift_dpo_data.py`` reads). ``--shard i/n`` writes
  ``data.shard-i-of-n.jsonl``; ``--merge`` joins the shards into ``data.jsonl`` / ``data.json``.

Prompts file: a JSON list (JSONL for ``.jsonl``) of ``{"prompt": ...}`` (upstream), ``{"caption": ...}`` or strings;
``id`` optional (default: the position).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from unifiedreward.errors import DataError, UnifiedRewardError
from unifiedreward.io import (
    id_key,
    merge_jsonl,
    parse_shard,
    read_json,
    read_jsonl,
    run_resumable,
    select_shard,
    shard_path,
    write_json_atomic,
)
from unifiedreward.preference.sampling import input_seed

logger = logging.getLogger(__name__)

__all__ = ["GenerationArguments", "load_pipeline", "main", "read_prompts", "run_generation", "video_seed"]


def _f(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class GenerationArguments:
    """N videos per prompt from a diffusers video pipeline (module docstring)."""

    model: str = field(metadata={"help": "Pipeline folder or hub id (WanPipeline / AnimateDiffPipeline), e.g. "
                                         "Wan-AI/Wan2.1-T2V-1.3B-Diffusers."})  # fmt: skip
    prompts_file: str = field(metadata={"help": "JSON list (JSONL for .jsonl) of {'prompt'} / {'caption'} / strings."})
    output_dir: str = field(metadata={"help": "Where videos/, data.jsonl (run log) and data.json go."})
    motion_adapter: str | None = _f(None, "AnimateDiff MotionAdapter (folder or hub id) for a base saved without one.")
    num_videos: int = _f(10, "Videos per prompt (upstream: 5 calls x 2 = 10).")
    num_frames: int = _f(16, "Frames per video (Wan: 4k+1, e.g. 33 or 81).")
    height: int = _f(320, "Frame height (Wan 1.3B: 480).")
    width: int = _f(512, "Frame width (Wan 1.3B: 832).")
    fps: int = _f(8, "Frame rate written into the mp4 (upstream 8; Wan's native 16).")
    num_inference_steps: int = _f(25, "Denoising steps (upstream's T2V-Turbo: 4).")
    guidance_scale: float = _f(7.5, "Classifier-free guidance scale (Wan: 5.0).")
    negative_prompt: str | None = _f(None, "Negative prompt.")
    max_sequence_length: int = _f(512, "Wan: text tokens.")
    seed: int = _f(0, "Run seed; video k of prompt id uses input_seed(seed, '<id>:<k>').")
    batch_size: int = _f(2, "Videos per pipeline call.")
    dtype: str = _f("auto", "Pipeline dtype: auto (bfloat16 on CUDA, else float32), bfloat16, float16, float32.")
    device: str | None = _f(None, "Device (default: cuda:<LOCAL_RANK> when CUDA is present, else cpu).")
    crf: int = _f(10, "h264 quality (lower = better; upstream 10).")
    chunk_size: int = _f(1, "Prompts generated and logged together.")
    shard: str | None = _f(None, "'i/n': only the prompts whose position is i modulo n (one process per GPU).")
    merge: bool = _f(False, "Join the shards' logs into data.jsonl / data.json; no generation.")
    overwrite: bool = _f(False, "Start over (the run log and its settings are replaced).")
    progress: bool = _f(True, "Show a progress bar (stderr).")


SETTINGS_KEYS = ("model", "motion_adapter", "num_videos", "num_frames", "height", "width", "fps", "num_inference_steps",
                 "guidance_scale", "negative_prompt", "max_sequence_length", "seed", "crf", "shard")  # fmt: skip


def video_seed(seed: int, record_id: str, k: int) -> int:
    """The seed of video ``k`` of prompt ``record_id``."""
    return input_seed(seed, f"{record_id}:{k}")


def read_prompts(path: str | Path) -> list[dict[str, Any]]:
    """``[{"id", "caption", ...}]`` from a prompts file (module docstring); DataError names file and record."""
    path = Path(path)
    records = read_jsonl(path, require_id=False) if path.suffix == ".jsonl" else read_json(path, what="prompts")
    if not isinstance(records, list):
        raise DataError("expected a JSON list of prompts", path=path)
    out, seen = [], set()
    for position, record in enumerate(records):
        record = {"prompt": record} if isinstance(record, str) else record
        caption = record.get("caption", record.get("prompt")) if isinstance(record, dict) else None
        key = id_key(record.get("id", position)) if isinstance(record, dict) else str(position)
        if not isinstance(caption, str) or not caption.strip():
            raise DataError(f"prompt #{position} needs a string 'prompt' or 'caption'", path=path, record_id=key)
        if key in seen:
            raise DataError("id used twice", path=path, record_id=key)
        seen.add(key)
        out.append({**record, "id": key, "caption": caption})
    return out


def _dtype(name: str, device: str) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, name)


def load_pipeline(model: str, *, motion_adapter: str | None = None, dtype: torch.dtype = torch.float32,
                  device: str = "cpu") -> Any:  # fmt: skip
    """A Wan / AnimateDiff pipeline on ``device`` (``motion_adapter`` turns an SD 1.5 base into AnimateDiff)."""
    from diffusers import AnimateDiffPipeline, DiffusionPipeline, MotionAdapter

    if motion_adapter:
        adapter = MotionAdapter.from_pretrained(motion_adapter, dtype=dtype)
        pipe = AnimateDiffPipeline.from_pretrained(model, motion_adapter=adapter, dtype=dtype)
    else:
        pipe = DiffusionPipeline.from_pretrained(model, dtype=dtype)
    if type(pipe).__name__ == "WanPipeline" and pipe.vae is not None and dtype != torch.float32:
        pipe.vae.to(torch.float32)  # Wan's VAE is unstable in half precision
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def to_uint8(frames: Any) -> np.ndarray:
    """Pipeline output frames ``[F, H, W, 3]`` in [0, 1] → uint8."""
    array = np.asarray(frames, dtype=np.float32)
    return (array.clip(0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def sample(pipe: Any, prompts: Sequence[str], seeds: Sequence[int], args: Any, **embeds: Any) -> list[np.ndarray]:
    """One video per (prompt, seed) as uint8 ``[F, H, W, 3]``; each draw has its own seeded generator."""
    device = pipe._execution_device
    generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
    kwargs: dict[str, Any] = dict(num_frames=args.num_frames, height=args.height, width=args.width,
                                  num_inference_steps=args.num_inference_steps, guidance_scale=args.guidance_scale,
                                  generator=generators, output_type="np")  # fmt: skip
    if embeds:
        kwargs.update(embeds)
    else:
        kwargs["prompt"] = list(prompts)
        if args.negative_prompt is not None:
            kwargs["negative_prompt"] = [args.negative_prompt] * len(prompts)
    if type(pipe).__name__.startswith("Wan"):
        kwargs["max_sequence_length"] = args.max_sequence_length
    frames = pipe(**kwargs).frames
    return [to_uint8(video) for video in frames]


def write_mp4(path: Path, frames: np.ndarray, *, fps: int, crf: int) -> None:
    """Write ``frames`` atomically (a temporary file renamed into place)."""
    from unifiedreward.synth.media import write_video

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    write_video(tmp, frames, fps=fps, codec_options={"crf": str(crf)})
    os.replace(tmp, path)


class _Generator:
    def __init__(self, args: GenerationArguments, pipe: Any = None):
        self.args, self.pipe = args, pipe

    def setup(self, _pending: Sequence[dict[str, Any]] = ()) -> None:
        if self.pipe is None:
            args = self.args
            device = args.device or (
                f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu"
            )
            self.pipe = load_pipeline(args.model, motion_adapter=args.motion_adapter, device=device,
                                      dtype=_dtype(args.dtype, device))  # fmt: skip

    def process(self, chunk: Sequence[dict[str, Any]], _loaded: Sequence[Any]) -> list[dict[str, Any]]:
        args, root = self.args, Path(self.args.output_dir)
        jobs = [(r, k, video_seed(args.seed, r["id"], k)) for r in chunk for k in range(args.num_videos)]
        files: dict[tuple[str, int], str] = {}
        for start in range(0, len(jobs), args.batch_size):
            batch = jobs[start : start + args.batch_size]
            videos = sample(self.pipe, [r["caption"] for r, _, _ in batch], [s for _, _, s in batch], args)
            for (record, k, _), frames in zip(batch, videos, strict=True):
                relative = f"videos/{record['id']}-{k}.mp4"
                write_mp4(root / relative, frames, fps=args.fps, crf=args.crf)
                files[(record["id"], k)] = relative
        out = []
        for record in chunk:
            extra = {k: v for k, v in record.items() if k not in ("id", "caption", "prompt", "videos", "seeds")}
            out.append({"id": record["id"], "caption": record["caption"],
                        "videos": [files[(record["id"], k)] for k in range(args.num_videos)],
                        "seeds": [video_seed(args.seed, record["id"], k) for k in range(args.num_videos)],
                        "fps": args.fps, "num_frames": args.num_frames, **extra})  # fmt: skip
        return out


def _finish(args: GenerationArguments, log: Path, order: Sequence[str]) -> Path:
    position = {key: i for i, key in enumerate(order)}
    records = sorted(read_jsonl(log), key=lambda r: position[id_key(r["id"])])
    target = Path(args.output_dir) / "data.json"
    write_json_atomic(target, records)
    return target


def run_generation(args: GenerationArguments, *, pipe: Any = None) -> dict[str, Any]:
    """Generate (or resume, or merge); returns ``{"prompts", "videos", "data_file", "seconds"}``.

    Args:
        args: the flags.
        pipe: a ready pipeline (else loaded from ``--model`` when the first prompt is due).
    """
    if args.num_videos < 1 or args.batch_size < 1 or args.chunk_size < 1:
        raise ValueError("--num_videos, --batch_size and --chunk_size must be >= 1")
    if args.merge and args.shard:
        raise ValueError("--merge joins all shards: do not pass --shard with it")
    prompts = read_prompts(args.prompts_file)
    order = [p["id"] for p in prompts]
    root = Path(args.output_dir)
    log = root / "data.jsonl"
    if args.merge:
        shards = sorted(root.glob("data.shard-*-of-*.jsonl"))
        merge_jsonl(shards, log, order=order)
        target = _finish(args, log, order)
        return {"prompts": len(order), "videos": len(order) * args.num_videos, "data_file": str(target)}
    shard = parse_shard(args.shard)
    items = select_shard(prompts, *shard) if shard else prompts
    output = shard_path(log, shard)
    worker = _Generator(args, pipe)
    settings = {key: getattr(args, key) for key in SETTINGS_KEYS}
    if getattr(args, "trained", None):  # VideoDPO/inference.py: the trained weights define the output too
        settings["trained"] = args.trained
    stats = run_resumable(items, key=lambda r: r["id"], output=output, process=worker.process, setup=worker.setup,
                          chunk_size=args.chunk_size, num_workers=0, settings=settings, overwrite=args.overwrite,
                          desc="generate", progress=args.progress)  # fmt: skip
    target = _finish(args, output, order) if shard is None else output
    return {"prompts": len(items), "videos": len(items) * args.num_videos, "data_file": str(target),
            "seconds": stats.seconds, "generated_prompts": stats.processed}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry (``VideoDPO/data_generation.py``)."""
    from unifiedreward.args import parse_args

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    (args,) = parse_args([GenerationArguments], argv, description=__doc__.split("\n\n")[0])
    try:
        summary = run_generation(args)
    except (UnifiedRewardError, ValueError) as err:
        logger.error("%s", err)
        return 2
    logger.info("settings: %s", asdict(args))
    print(f"{summary['prompts']} prompt(s), {summary['videos']} video(s) -> {summary['data_file']}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
