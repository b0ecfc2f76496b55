"""Candidate images for Diffusion-DPO: K images per prompt from any diffusers text-to-image pipeline
(``DiffusionDPO/data_generation.py``; protocol reference §4.2).

Input: a JSON list (or JSONL) of ``{"prompt": "..."}`` (``"id"`` optional, default the position; other keys are
carried). Output (``--output_dir out``):

* ``out/images/image_<id>_<j>.png`` — image ``j`` of input ``id``, drawn with its own seed
  ``seed_j = sha256("<run seed>:<id>/<j>")`` (31 bits) on a ``--generator_device`` generator (CPU by default, so a
  seed gives the same image on any GPU); upstream drew one unseeded, unrecorded seed per prompt;
* ``out/generation.jsonl`` — the resume log, one line per input (``{"id", "caption", "images", "seeds", ...}``);
* ``out/data.json`` — the log in input order (what ``sift_dpo_data.py`` reads): input keys plus ``id``,
  ``caption``, ``images`` (file names under ``out/images``) and ``seeds``.

Resume by id (run the same command again; changed settings are refused, ``--overwrite`` starts over). ``--shard i/n``
(one process per GPU: ``CUDA_VISIBLE_DEVICES=i``) writes ``out/generation.shard-i-of-n.jsonl``; ``--merge`` joins
the shards into ``generation.jsonl`` and ``data.json``. SDXL-Turbo as upstream: ``--num_inference_steps 1
--guidance_scale 0``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

__all__ = ["GenerationArguments", "image_seed", "read_prompts", "run_generation", "safe_name"]

IMAGE_DIR = "images"
LOG_FILE = "generation.jsonl"
DATA_FILE = "data.json"


def _f(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class GenerationArguments:
    """K candidate images per prompt from a diffusers text-to-image pipeline."""

    data_path: str = field(metadata={"help": "JSON list or JSONL of {'prompt'} ('id' optional; other keys kept)."})
    output_dir: str = field(metadata={"help": "Output folder: images/, generation.jsonl (resume log), data.json."})
    pretrained_model: str = field(metadata={"help": "Pipeline folder or hub id (SD 1.5, SDXL, sdxl-turbo, SD3.5)."})
    num_images: int = _f(10, "Images per prompt (upstream 10 = 5 rounds of 2).")
    num_inference_steps: int = _f(1, "Sampling steps (SDXL-Turbo 1 as upstream; SD 1.5 / SDXL ~30; SD3.5 ~28).")
    guidance_scale: float = _f(0.0, "Classifier-free guidance (SDXL-Turbo 0 as upstream; others 5-7).")
    height: int | None = _f(None, "Image height (default: the model's native size).")
    width: int | None = _f(None, "Image width (default: the model's native size).")
    negative_prompt: str | None = _f(None, "Negative prompt (with guidance > 1).")
    max_sequence_length: int | None = _f(None, "T5 tokens of SD3 captions (default: the pipeline's).")
    seed: int = _f(0, "Run seed; every image's seed is derived from it, the input id and the image index.")
    images_per_call: int = _f(10, "Images per pipeline call (memory); a prompt's images may span several calls.")
    variant: str | None = _f(None, "Weights variant to load (e.g. fp16).")
    dtype: str = _f("float32", "Weights dtype: float32, float16, bfloat16.")
    device: str | None = _f(None, "Device (default: cuda if available, else cpu).")
    generator_device: str = _f("cpu", "Device of the seeded generators (cpu: same images for a seed on any GPU).")
    chunk_size: int = _f(4, "Prompts written together; a killed run loses at most one chunk.")
    shard: str | None = _f(None, "'i/n': only the prompts whose position is i modulo n (then --merge).")
    merge: bool = _f(False, "Join the shards' logs into generation.jsonl and data.json; nothing is generated.")
    overwrite: bool = _f(False, "Delete this run's log and start over.")
    progress: bool = _f(True, "Show a progress bar (stderr).")


SETTINGS_KEYS = ("pretrained_model", "num_images", "num_inference_steps", "guidance_scale", "height", "width",
                 "negative_prompt", "max_sequence_length", "seed", "variant", "dtype", "generator_device", "shard")  # fmt: skip

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(key: str) -> str:
    """An id as a file-name fragment (characters other than ``[A-Za-z0-9_.-]`` become ``_``)."""
    return _UNSAFE.sub("_", key)


def image_seed(run_seed: int, record_id: str, index: int) -> int:
    """The seed of image ``index`` of input ``record_id`` (module docstring)."""
    return input_seed(run_seed, f"{record_id}/{index}")


def read_prompts(path: str | Path) -> list[dict[str, Any]]:
    """The prompt records of ``path`` with string ``id`` keys, checked before any model loads.

    Raises:
        DataError: unreadable file, a record without a string ``prompt``, or an id used twice.
    """
    path = Path(path)
    records = read_jsonl(path, require_id=False) if path.suffix == ".jsonl" else read_json(path, what="data file")
    if not isinstance(records, list):
        raise DataError("expected a JSON list of records", path=path)
    out, seen = [], set()
    for position, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
            raise DataError(f"record #{position} needs a string 'prompt'", path=path)
        key = id_key(record.get("id", position))
        if key in seen:
            raise DataError("id used twice", path=path, record_id=key)
        seen.add(key)
        out.append({**record, "id": key})
    return out


def finish_job(log_path: Path, final_path: Path, order: Sequence[str], to_output: Callable[[dict], Any]) -> list:
    """Write ``final_path`` (a JSON list) from the log at ``log_path`` in input ``order``; returns the list.

    ``to_output`` maps a log line to its output record (``None``: left out).
    """
    position = {key: i for i, key in enumerate(order)}
    lines = sorted(read_jsonl(log_path), key=lambda line: position[id_key(line["id"])])
    records = [r for r in (to_output(line) for line in lines) if r is not None]
    write_json_atomic(final_path, records)
    return records


def merge_logs(output_dir: Path, log_name: str, order: Sequence[str]) -> Path:
    """Join ``<log stem>.shard-i-of-n.jsonl`` in ``output_dir`` into ``log_name`` (input ``order``)."""
    log = output_dir / log_name
    found = sorted(output_dir.glob(f"{log.stem}.shard-*-of-*{log.suffix}"))
    if not found:
        raise DataError("no shard logs to merge", path=log)
    counts = {re.search(r"-of-(\d+)", p.name).group(1) for p in found}
    if len(counts) != 1 or len(found) != int(next(iter(counts))):
        raise DataError(f"need every shard of one shard count, found {[p.name for p in found]}", path=log)
    merge_jsonl(found, log, order=order)
    return log


def _torch_dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


class _Generator:
    """The pipeline (loaded on first use) and the per-chunk generation."""

    def __init__(self, args: GenerationArguments, pipe: Any = None):
        self.args = args
        self.pipe = pipe
        self.images_dir = Path(args.output_dir) / IMAGE_DIR
        self.images = 0

    def setup(self, _pending: Sequence[Any] = ()) -> None:
        import torch

        args = self.args
        self.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.pipe is None:
            from diffusers import DiffusionPipeline

            logger.info("loading %s", args.pretrained_model)
            self.pipe = DiffusionPipeline.from_pretrained(args.pretrained_model, dtype=_torch_dtype(args.dtype),
                                                          variant=args.variant)  # fmt: skip
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.images_dir.mkdir(parents=True, exist_ok=True)

    def _call(self, prompt: str, seeds: list[int]) -> list[Any]:
        import torch

        args = self.args
        kwargs: dict[str, Any] = {}
        for name in ("height", "width", "negative_prompt", "max_sequence_length"):
            if getattr(args, name) is not None:
                kwargs[name] = getattr(args, name)
        generators = [torch.Generator(args.generator_device).manual_seed(s) for s in seeds]
        result = self.pipe(prompt, num_images_per_prompt=len(seeds), generator=generators,
                           num_inference_steps=args.num_inference_steps, guidance_scale=args.guidance_scale,
                           **kwargs)  # fmt: skip
        return list(result.images)

    def process(self, chunk: Sequence[dict[str, Any]], _loaded: Sequence[Any]) -> list[dict[str, Any]]:
        args = self.args
        lines = []
        for record in chunk:
            seeds = [image_seed(args.seed, record["id"], j) for j in range(args.num_images)]
            names = [f"image_{safe_name(record['id'])}_{j}.png" for j in range(args.num_images)]
            for start in range(0, args.num_images, args.images_per_call):
                part = slice(start, start + args.images_per_call)
                for image, name in zip(self._call(record["prompt"], seeds[part]), names[part], strict=True):
                    image.save(self.images_dir / name)
            self.images += len(names)
            lines.append({**record, "caption": record["prompt"], "images": names, "seeds": seeds})
        return lines


def run_generation(args: GenerationArguments, *, pipe: Any = None) -> dict[str, Any]:
    """Generate (or resume, or merge); returns ``{"prompts", "images", "data_file", "seconds"}``.

    Args:
        args: the flags.
        pipe: a ready pipeline (else loaded from ``--pretrained_model`` when the first prompt is due).
    """
    if args.num_images < 1 or args.images_per_call < 1:
        raise ValueError("--num_images and --images_per_call must be >= 1")
    if args.merge and args.shard:
        raise ValueError("--merge joins all shards: do not pass --shard with it")
    out = Path(args.output_dir)
    records = read_prompts(args.data_path)
    order = [r["id"] for r in records]
    if args.merge:
        log = merge_logs(out, LOG_FILE, order)
        data = finish_job(log, out / DATA_FILE, order, lambda line: line)
        return {"prompts": len(data), "images": sum(len(r["images"]) for r in data), "data_file": str(out / DATA_FILE),
                "seconds": None}  # fmt: skip
    shard = parse_shard(args.shard)
    if shard is not None:
        records = select_shard(records, *shard)
    log = shard_path(out / LOG_FILE, shard)
    job = _Generator(args, pipe)
    settings = {key: getattr(args, key) for key in SETTINGS_KEYS}
    stats = run_resumable(records, key=lambda r: r["id"], output=log, process=job.process, setup=job.setup,
                          chunk_size=args.chunk_size, settings=settings, overwrite=args.overwrite,
                          desc="generate", progress=args.progress)  # fmt: skip
    result = {"prompts": len(records), "images": job.images, "seconds": stats.seconds, "data_file": None}
    if shard is None:
        finish_job(log, out / DATA_FILE, order, lambda line: line)
        result["data_file"] = str(out / DATA_FILE)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry (``DiffusionDPO/data_generation.py``)."""
    from unifiedreward.args import parse_args

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    (args,) = parse_args([GenerationArguments], list(sys.argv[1:] if argv is None else argv),
                         description=__doc__.split("\n\n")[0])  # fmt: skip
    try:
        result = run_generation(args)
    except (UnifiedRewardError, ValueError) as err:
        logger.error("%s", err)
        return 2
    print(f"{result['images']} image(s) generated for {result['prompts']} prompt(s) -> {args.output_dir}")
    return 0
