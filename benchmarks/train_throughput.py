"""SFT training throughput and padding, with and without length-grouped batching.

    python benchmarks/train_throughput.py                     # tiny random Qwen2.5-VL on CPU (a minute)
    python benchmarks/train_throughput.py --shape 7b --device cuda --samples 96 --batch_size 4 \\
        --activation_checkpointing --optim sgd                # Qwen2.5-VL-7B-shaped, random weights, one GPU

The data are synthetic records in the released (LLaVA) format, written to a temporary folder: a mix of text-only,
one-image and two-image records (``--text_only``, ``--pairs`` fractions) whose answers and prompts have random
lengths, so batches need padding. Each mode runs the real training path (:class:`SupervisedDataset` with lazy
media decoding and assistant-only labels, :class:`SFTCollator`, :class:`RewardSFTTrainer`) for ``--steps`` steps,
of which the first ``--warmup`` are not timed:

* ``random``: the Trainer's default random sampler;
* ``group_by_length``: :class:`EpochLengthGroupedSampler` over the dataset's length estimates.

Reported per mode: samples/s and tokens/s (non-padding tokens, media tokens included) over the timed steps
(forward, backward, optimizer; the batch is already loaded), the fraction of padding tokens in the batches, and
"wall samples/s" from the first timed step to the last one, data loading and media decoding included. Also the
achieved model TFLOP/s and, on CUDA, the model FLOPs utilisation,

    MFU = [6 * (N_lm * T + N_vision * P) + 12 * L * d * sum_i S_i^2] / step time / peak FLOP/s,

with N_lm the language-model parameters without the input embedding (the LM head included), T the non-padding
tokens, N_vision the vision-tower parameters, P the image patches, L/d the decoder depth/width and S_i the
non-padding length of sample i (causal attention counted in full, as in the PaLM paper's convention).
Activation-checkpointing recomputation is not counted. ``--peak_tflops`` defaults to 989 on CUDA (H100/H200 dense
BF16); achieved TFLOP/s are printed on every device.

``--shape 7b`` builds a Qwen2.5-VL-7B-shaped model (the released checkpoint's text and vision configs) with
random weights and the tiny tokenizer (its ids are a subset of the 152,064-entry vocabulary), with the real
image-processor geometry. Full fine-tuning with AdamW needs ~16 bytes per parameter (it does not fit one 80 GB
GPU without DeepSpeed); ``--optim sgd`` (no optimizer state) keeps the forward/backward cost, which MFU measures.
``--text_layers`` / ``--vision_depth`` shrink the 7B shape (e.g. to check the script on a CPU: 1 and 1).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

WORDS = ("image", "caption", "quality", "alignment", "better", "score", "the", "red", "bicycle", "video", "answer")


def build(
    shape: str, device: str, dtype: torch.dtype, text_layers: int | None = None, vision_depth: int | None = None
):
    """``(model, processor)``: the tiny test model, or a 7B-shaped random one (optionally with fewer layers)."""
    from unifiedreward.testing.shapes import build_qwen25_vl

    model, processor = build_qwen25_vl(
        shape, device=device, dtype=dtype, text_layers=text_layers, vision_depth=vision_depth
    )
    return model.train(), processor


def make_records(root: Path, n: int, *, image_range: tuple[int, int], text_only: float, pairs: float,
                 max_words: int, seed: int = 0) -> Path:  # fmt: skip
    """Write ``n`` synthetic LLaVA-format records (and their images) under ``root``; returns the JSON path."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        draw = rng.random()
        n_images = 0 if draw < text_only else (2 if draw < text_only + pairs else 1)
        names = []
        for k in range(n_images):
            w, h = (int(x) for x in rng.integers(image_range[0], image_range[1] + 1, 2))
            name = f"{i}_{k}.jpg"
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / name, quality=90)
            names.append(name)
        prompt = " ".join(rng.choice(WORDS, int(rng.integers(8, max_words))))
        answer = " ".join(rng.choice(WORDS, int(rng.integers(2, max_words // 4 + 3))))
        record = {"id": f"bench{i}", "conversations": [{"from": "human", "value": "<image>\n" * n_images + prompt},
                                                       {"from": "gpt", "value": answer}]}  # fmt: skip
        if names:
            record["image"] = names if len(names) > 1 else names[0]
        records.append(record)
    path = root / "train.json"
    path.write_text(json.dumps(records))
    return path


def flop_counts(model) -> dict[str, int]:
    """Parameter counts used by the MFU formula (see the module docstring)."""
    inner = model.model
    embed = inner.language_model.embed_tokens.weight
    lm = sum(p.numel() for p in inner.language_model.parameters()) - embed.numel()
    head = model.lm_head.weight
    lm += head.numel()  # the LM head's matmul runs even when tied to the embedding
    text = model.config.text_config
    return {
        "lm": lm,
        "vision": sum(p.numel() for p in inner.visual.parameters()),
        "layers": text.num_hidden_layers,
        "hidden": text.hidden_size,
    }


def run_mode(mode: str, model, processor, dataset, args, device: str, dtype: torch.dtype, out: Path) -> dict:
    from transformers import TrainerCallback

    from unifiedreward.data.sft import SFTCollator
    from unifiedreward.train import RewardSFTTrainer, RewardTrainingArguments

    stats: list[dict[str, float]] = []
    times: list[float] = []
    begins: list[float] = []
    ends: list[float] = []

    class Measured(RewardSFTTrainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            mask = inputs["attention_mask"]
            lengths = mask.sum(dim=1).float()
            stats.append({
                "samples": float(mask.shape[0]), "tokens": float(lengths.sum()), "slots": float(mask.numel()),
                "patches": float(inputs["pixel_values"].shape[0]) if "pixel_values" in inputs else 0.0,
                "sq": float((lengths**2).sum()),
            })  # fmt: skip
            return super().training_step(model, inputs, num_items_in_batch)

    class Timer(TrainerCallback):
        def on_step_begin(self, *_, **__):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            self.start = time.perf_counter()
            begins.append(self.start)

        def on_step_end(self, *_, **__):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            ends.append(time.perf_counter())
            times.append(ends[-1] - self.start)

    training_args = RewardTrainingArguments(
        output_dir=str(out / mode), per_device_train_batch_size=args.batch_size, max_steps=args.steps,
        learning_rate=1e-5, optim=args.optim, save_strategy="no", logging_steps=10**6, report_to="none",
        disable_tqdm=True, use_cpu=device == "cpu", bf16=dtype == torch.bfloat16 and device != "cpu",
        train_sampling_strategy=mode, dataloader_num_workers=args.workers, seed=0,
        activation_checkpointing=args.activation_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if args.activation_checkpointing else None,
    )  # fmt: skip
    trainer = Measured(model=model, args=training_args, train_dataset=dataset, processing_class=processor,
                       data_collator=SFTCollator(dataset.pad_token_id), callbacks=[Timer()])  # fmt: skip
    trainer.train()
    keep = slice(args.warmup, None)
    seconds = sum(times[keep])
    totals = {key: sum(s[key] for s in stats[keep]) for key in stats[0]}
    all_tokens = {key: sum(s[key] for s in stats) for key in ("tokens", "slots")}
    result = {
        "mode": mode,
        "steps": len(times[keep]),
        "samples_per_s": totals["samples"] / seconds,
        "tokens_per_s": totals["tokens"] / seconds,
        "padding": 1 - all_tokens["tokens"] / all_tokens["slots"],
        "wall_samples_per_s": totals["samples"] / (ends[-1] - begins[args.warmup]),
        "seconds": seconds,
    }
    counts = flop_counts(model)
    flops = 6 * (counts["lm"] * totals["tokens"] + counts["vision"] * totals["patches"])
    flops += 12 * counts["layers"] * counts["hidden"] * totals["sq"]
    result["tflops"] = flops / seconds / 1e12
    if args.peak_tflops:
        result["mfu"] = result["tflops"] / args.peak_tflops
    if device.startswith("cuda"):
        result["max_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=["tiny", "7b"], default="tiny", help="Model shape (random weights).")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda.")
    parser.add_argument("--dtype", default=None, help="float32 / bfloat16 (default: bf16 on CUDA, fp32 on CPU).")
    parser.add_argument("--samples", type=int, default=128, help="Synthetic records.")
    parser.add_argument("--batch_size", type=int, default=8, help="Per-device batch size.")
    parser.add_argument("--steps", type=int, default=16, help="Training steps per mode.")
    parser.add_argument("--warmup", type=int, default=2, help="Untimed first steps.")
    parser.add_argument("--text_only", type=float, default=0.4, help="Fraction of text-only records.")
    parser.add_argument("--pairs", type=float, default=0.3, help="Fraction of two-image records (rest: one image).")
    parser.add_argument("--max_words", type=int, default=None, help="Longest prompt in words (tiny 120, 7b 600).")
    parser.add_argument("--image_min", type=int, default=None, help="Smallest image side (tiny 28, 7b 224).")
    parser.add_argument("--image_max", type=int, default=None, help="Largest image side (tiny 112, 7b 768).")
    parser.add_argument("--image_max_pixels", type=int, default=262144, help="As --image_max_pixels in training.")
    parser.add_argument("--optim", default="adamw_torch", help="Trainer optimizer (sgd: no optimizer state).")
    parser.add_argument("--activation_checkpointing", action="store_true", help="Recompute activations.")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes.")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (CPU runs).")
    parser.add_argument(
        "--peak_tflops",
        type=float,
        default=None,
        help="Peak dense TFLOP/s for MFU (default on CUDA: 989, H100/H200 BF16; none on CPU).",
    )
    parser.add_argument("--text_layers", type=int, default=None, help="7b: fewer decoder layers (to fit memory).")
    parser.add_argument("--vision_depth", type=int, default=None, help="7b: fewer vision blocks.")
    parser.add_argument("--modes", default="random,group_by_length", help="Comma-separated samplers to compare.")
    args = parser.parse_args()
    device = args.device
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if device.startswith("cuda") else
                                                           torch.float32)  # fmt: skip
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.peak_tflops is None and device.startswith("cuda"):
        args.peak_tflops = 989.0
    tiny = args.shape == "tiny"
    max_words = args.max_words or (120 if tiny else 600)
    image_range = (args.image_min or (28 if tiny else 224), args.image_max or (112 if tiny else 768))

    from unifiedreward.data import build_mixture, load_mixture
    from unifiedreward.data.sft import MediaOptions, SupervisedDataset

    model, processor = build(args.shape, device, dtype, args.text_layers, args.vision_depth)
    model.config.use_cache = model.config.text_config.use_cache = False
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = make_records(root, args.samples, image_range=image_range, text_only=args.text_only, pairs=args.pairs,
                            max_words=max_words)  # fmt: skip
        records = build_mixture(load_mixture(path, media_folder=root))
        dataset = SupervisedDataset(records, processor, family="qwen", model_max_length=32768,
                                    media=MediaOptions(image_max_pixels=args.image_max_pixels))  # fmt: skip
        name = torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or "cpu"
        print(f"machine: {name} | torch {torch.__version__} | threads {torch.get_num_threads()} | {args.shape} model, "
              f"{model.num_parameters():,} params | {dtype} | {args.samples} records, batch {args.batch_size}, "
              f"{args.steps} steps ({args.warmup} untimed), optim {args.optim}"
              f"{', activation checkpointing' if args.activation_checkpointing else ''}")  # fmt: skip
        rows = [run_mode(mode, model, processor, dataset, args, device, dtype, root / "out")
                for mode in args.modes.split(",")]  # fmt: skip
    header = f"{'sampler':<16} {'samples/s':>10} {'tokens/s':>10} {'padding':>8} {'wall samples/s':>15} {'TFLOP/s':>8}"
    if "mfu" in rows[0]:
        header += f" {'MFU':>6}"
    if "max_memory_gib" in rows[0]:
        header += f" {'mem GiB':>8}"
    print(header)
    for row in rows:
        line = (f"{row['mode']:<16} {row['samples_per_s']:>10.2f} {row['tokens_per_s']:>10.0f} {row['padding']:>8.1%} "
                f"{row['wall_samples_per_s']:>15.2f} {row['tflops']:>8.3g}")  # fmt: skip
        if "mfu" in row:
            line += f" {row['mfu']:>6.1%}"
        if "max_memory_gib" in row:
            line += f" {row['max_memory_gib']:>8.1f}"
        print(line)


if __name__ == "__main__":
    main()
