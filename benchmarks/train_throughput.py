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

``--workload demo`` measures the demo's target workload instead: the synthetic world and model of
``python -m unifiedreward.demo`` (built with :mod:`unifiedreward.synth`, ``--demo_records`` records per task x mode,
half as many captioning records per kind), the demo's stage-2 flags (its judging mixture, batch size, DataLoader
workers, ``model_max_length``, frames) and three data paths: ``live`` (media decoded and the processor run for every
sample), ``cache-cold`` (the first epoch through ``--sample_cache_dir``: encoded and written) and ``cache-warm``
(a later epoch or run: read back). Reported per path: data-only samples/s (the DataLoader alone, as the trainer
configures it) and training samples/s (wall time of ``--steps`` steps after ``--warmup``), split into the model's
forward/backward/optimizer time and the time the step waited for data.

    python benchmarks/train_throughput.py --workload demo --threads 2      # 2 CPU cores, a few minutes
"""

from __future__ import annotations

import argparse
import json
import os
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


# ------------------------------------------------------------------------------------------------- demo workload
def build_demo(root: Path, records: int, seed: int = 0) -> list[str]:
    """Write the demo's world and initial model under ``root``; returns the demo's stage-2 training flags."""
    from unifiedreward.demo import make_model, make_world
    from unifiedreward.demo.args import DemoArguments, resolve
    from unifiedreward.demo.training import plan_stages, train_argv

    args = resolve(DemoArguments(output_dir=str(root), seed=seed, num_train=records, num_captions=max(1, records // 2),
                                 num_eval=1, num_eval_point=1))  # fmt: skip
    data, _, _ = make_world(args, root)
    make_model(args, root / "model" / "init")
    stage = plan_stages(args, data)[-1]  # the judging stage: the whole mixture
    argv = train_argv(args, root / "model" / "init", stage, root / "run", root / "cache")
    return [a for a in argv if a not in ("--sample_cache_dir", str(root / "cache"))]


def data_only(dataset, training_args, batches: int) -> float:
    """Samples/s of the DataLoader alone (shuffled, the trainer's batch size and worker count)."""
    from unifiedreward.data.sft import SFTCollator

    loader = torch.utils.data.DataLoader(
        dataset, batch_size=training_args.per_device_train_batch_size, shuffle=True,
        generator=torch.Generator().manual_seed(0), num_workers=training_args.dataloader_num_workers,
        collate_fn=SFTCollator(dataset.pad_token_id),
    )  # fmt: skip
    start, samples = time.perf_counter(), 0
    for number, batch in enumerate(loader):
        samples += batch["input_ids"].shape[0]
        if number + 1 == batches:
            break
    return samples / (time.perf_counter() - start)


def train_demo(dataset, processor, model_dir: str, training_args, steps: int, warmup: int) -> dict:
    """Train ``steps`` steps; wall samples/s after ``warmup`` steps, and the model's share of the time."""
    from transformers import TrainerCallback

    from unifiedreward.data.sft import SFTCollator
    from unifiedreward.modeling import load_reward_model
    from unifiedreward.train import RewardSFTTrainer

    begins: list[float] = []
    ends: list[float] = []
    sizes: list[int] = []
    forward: list[float] = []
    step_calls: list[float] = []

    class Measured(RewardSFTTrainer):
        def training_step(self, model, inputs, num_items_in_batch=None):  # forward + backward
            sizes.append(int(inputs["input_ids"].shape[0]))
            start = time.perf_counter()
            loss = super().training_step(model, inputs, num_items_in_batch)
            step_calls.append(time.perf_counter() - start)
            return loss

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # forward
            start = time.perf_counter()
            out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            forward.append(time.perf_counter() - start)
            return out

    class Timer(TrainerCallback):  # the batch is fetched before on_step_begin: begin..end is the model's time
        def on_step_begin(self, *_, **__):
            begins.append(time.perf_counter())

        def on_step_end(self, *_, **__):
            ends.append(time.perf_counter())

    model, _ = load_reward_model(model_dir)
    training_args.max_steps = steps
    trainer = Measured(model=model.train(), args=training_args, train_dataset=dataset, processing_class=processor,
                       data_collator=SFTCollator(dataset.pad_token_id), callbacks=[Timer()])  # fmt: skip
    trainer.train()
    wall = ends[-1] - ends[warmup - 1]
    model_time = sum(e - b for b, e in zip(begins[warmup:], ends[warmup:], strict=True))
    samples, timed = sum(sizes[warmup:]), steps - warmup
    fwd, fwd_bwd = sum(forward[warmup:]), sum(step_calls[warmup:])
    return {"samples_per_s": samples / wall, "model_s_per_step": model_time / timed,
            "forward_s": fwd / timed, "backward_s": (fwd_bwd - fwd) / timed,
            "optimizer_s": (model_time - fwd_bwd) / timed,
            "data_wait_s_per_step": (wall - model_time) / timed}  # fmt: skip


def run_demo(args) -> None:
    """The ``--workload demo`` measurement (see the module docstring); prints one table."""
    import dataclasses

    from unifiedreward.modeling import load_reward_model, model_family
    from unifiedreward.train import build_dataset, parse_train_args

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        argv = build_demo(root, args.demo_records)
        model_args, data_args, training_args = parse_train_args(argv + ["--disable_tqdm", "true"])
        model, processor = load_reward_model(model_args.model_name_or_path)
        family = model_family(model)
        cache_args = dataclasses.replace(data_args, sample_cache_dir=str(root / "cache"))
        live = build_dataset(data_args, processor, family)
        print(f"machine: {platform.processor() or 'cpu'}, {os.cpu_count()} cores visible | torch {torch.__version__} | "
              f"threads {torch.get_num_threads()} | demo model {model.num_parameters():,} params | {len(live)} records "
              f"(judging mixture, {args.demo_records}/task x mode) | batch {training_args.per_device_train_batch_size}, "
              f"{training_args.dataloader_num_workers} DataLoader worker(s)")  # fmt: skip
        batches = args.data_batches
        cold = build_dataset(cache_args, processor, family)  # first epoch: encoded and written
        rows = {"cache-cold": {"data_samples_per_s": data_only(cold, training_args, batches)}}
        for index in range(len(cold)):  # the rest of the first epoch (not timed)
            cold[index]
        cached = build_dataset(cache_args, processor, family)  # a later epoch or run
        rows["live"], rows["cache-warm"] = {}, {}
        # alternate the two paths and keep each one's best round: the cores are shared with other jobs
        for round_number in range(args.rounds):
            for name, dataset in (("live", live), ("cache-warm", cached)):
                row = {"data_samples_per_s": data_only(dataset, training_args, batches)}
                targs = dataclasses.replace(training_args, output_dir=str(root / "run" / f"{name}{round_number}"))
                row |= train_demo(dataset, processor, model_args.model_name_or_path, targs, args.steps, args.warmup)
                best = rows[name]
                best["data_samples_per_s"] = max(best.get("data_samples_per_s", 0.0), row["data_samples_per_s"])
                if row["samples_per_s"] > best.get("samples_per_s", 0.0):
                    best |= {key: value for key, value in row.items() if key != "data_samples_per_s"}
        size = sum(f.stat().st_size for f in cached.cache.folder.glob("*.bin"))
    print(f"cache: {size / 2**20:.0f} MiB for {len(cached)} records ({size / len(cached) / 1024:.0f} KiB/sample)")
    print(f"{'data path':<12} {'data-only samples/s':>20} {'train samples/s':>16} {'model s/step':>13} "
          f"{'(fwd / bwd / optim)':>22} {'data wait s/step':>17}")  # fmt: skip
    for name, row in rows.items():
        split = f"{row['forward_s']:.3f} / {row['backward_s']:.3f} / {row['optimizer_s']:.3f}" if row.get("forward_s") else ""
        train = (f"{row['samples_per_s']:>16.1f} {row['model_s_per_step']:>13.3f} {split:>22} "
                 f"{row['data_wait_s_per_step']:>17.3f}" if "samples_per_s" in row else "")  # fmt: skip
        print(f"{name:<12} {row['data_samples_per_s']:>20.1f} {train}")
    warm, live_row = rows["cache-warm"], rows["live"]
    print(f"speed-up with the warm cache: data-only x{warm['data_samples_per_s'] / live_row['data_samples_per_s']:.1f}, "
          f"training x{warm['samples_per_s'] / live_row['samples_per_s']:.2f}")  # fmt: skip


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
    parser.add_argument("--workload", choices=["synthetic", "demo"], default="synthetic",
                        help="synthetic: the sampler comparison above; demo: the demo's data with and without the "
                        "sample cache.")  # fmt: skip
    parser.add_argument("--demo_records", type=int, default=96, help="demo: training records per task x mode.")
    parser.add_argument("--data_batches", type=int, default=40, help="demo: batches of the data-only measurement.")
    parser.add_argument("--rounds", type=int, default=2, help="demo: alternating rounds per path (best one kept).")
    args = parser.parse_args()
    if args.workload == "demo":
        if args.threads:
            torch.set_num_threads(args.threads)
        run_demo(args)
        return
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
