"""The main job, end to end, on a CPU and without downloads: train a reward model and evaluate it, before and after.

``python -m unifiedreward.demo`` (the README's first command) runs the real pipeline on a procedurally generated
world (:mod:`unifiedreward.synth`):

1. **World**: images of simple scenes and short videos of moving shapes with their ground truth; training records
   for the four tasks x pair rank / point score in the released format, rendered with the protocol's templates
   (plus auxiliary captioning records), mixed by a ``train_data.yaml``; held-out benchmark files in the official
   GenAI-Bench / VideoGen-RewardBench / VL-RewardBench formats and point-score requests for ``unifiedreward judge``.
2. **Model**: a Qwen2-VL-architecture model with random weights (~1M parameters) and a small BPE tokenizer trained
   on the world's text (each constant prompt segment is one token, so prompts stay short), saved as a checkpoint.
3. **Evaluate before training** with the evaluation runner of ``benchmark_evaluation/eval_*.py``
   (:func:`unifiedreward.eval.runner.run_benchmark`, random order) and the point scores with the ``unifiedreward
   judge`` runner (:func:`unifiedreward.judge.cli.run_judge`, expected scores; Spearman against the truth).
4. **Train** with the reward-model SFT entry point (:func:`unifiedreward.train.parse_train_args` +
   :func:`unifiedreward.train.run_training`, i.e. ``python -m unifiedreward.train`` with the flags saved in
   ``train/command.txt``) in two stages: the captioning records (``--captioning_minutes``), then the whole mixture
   from those weights, ``--train_minutes`` in all, the last 20% of the time a learning-rate cooldown.
5. **Evaluate after training** the same way, then write a table (printed and ``results.md``), plots (training loss,
   accuracy per task before/after) and example judgments with their images (``examples.png``, ``examples.html``).

Everything is written under ``--output_dir``. On 2 CPU cores the default run takes about 12 minutes; the model
goes from unparseable answers to every answer valid and above-chance accuracy on all four tasks (60-75% pair-rank
accuracy, point-score Spearman up to +0.55 on the default ``--difficulty color``); see ``docs/demo.md`` for the
measured numbers, what limits them and the experiments behind them::

    python -m unifiedreward.demo                         # the full run (~12 min on 2 CPU cores)
    python -m unifiedreward.demo --quick                 # a few steps on a tiny world (~10 s): checks the plumbing
    python -m unifiedreward.demo --difficulty full       # candidates may differ in shape, count, position, motion
    python -m unifiedreward.demo --scale 10 --only_data  # the same world 10x larger, as a stress / regression set
    python -m unifiedreward.demo --train_minutes 25 --captioning_minutes 5  # ~27 min: reaches >= 97% on colour
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from unifiedreward.args import parse_args
from unifiedreward.demo.report import (
    PAIR_BENCHMARKS,
    TASK_LABELS,
    collect_examples,
    plot_accuracy,
    plot_examples,
    plot_loss,
    write_examples_html,
    write_report,
)

logger = logging.getLogger(__name__)

__all__ = ["PAIR_BENCHMARKS", "TASK_LABELS", "DemoArguments", "build_model", "evaluate", "main", "run", "train"]

@dataclass
class DemoArguments:
    """Flags of ``python -m unifiedreward.demo`` (``--config file.yaml`` sets defaults)."""

    output_dir: str = field(default="outputs/demo", metadata={"help": "Folder for everything the demo writes."})
    quick: bool = field(
        default=False,
        metadata={
            "help": "Plumbing check: a tiny world (8 records per task and mode, 8 held-out items per benchmark), a "
            "few training steps; finishes in well under a minute. Explicit flags still override its sizes."
        },
    )
    only_data: bool = field(
        default=False, metadata={"help": "Write the world (training records and held-out files) and stop."}
    )
    scale: float = field(
        default=1.0,
        metadata={
            "help": "Multiply the numbers of training records and held-out items (e.g. 10 for a stress / "
            "regression set); the world itself (seed, sizes) is unchanged."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of the world, the model's random weights and training."})
    num_train: int | None = field(
        default=None,
        metadata={"help": "Training records per task x mode (default 1500; --quick 8), before --scale."},
    )
    num_eval: int | None = field(
        default=None,
        metadata={"help": "Held-out pairs per benchmark (default 200; --quick 8), before --scale."},
    )
    num_eval_point: int | None = field(
        default=None,
        metadata={"help": "Held-out point-score requests per task (default 100; --quick 4), before --scale."},
    )
    difficulty: str = field(
        default="color",
        metadata={
            "help": "What tells the candidates of a pair apart (unifiedreward.synth.DifficultyMix.preset): 'color' "
            "(the colour of a scene, the start or end colour of a clip; questions about colours), which a tiny "
            "model trained from scratch on a CPU learns in minutes; 'full' (colour, shape, count, position, motion "
            "direction), which needs far more training (see docs/demo.md).",
            "choices": ["color", "full"],
        },
    )
    image_size: int = field(default=84, metadata={"help": "Side of scene images in pixels (84 = 9 image tokens)."})
    video_size: int = field(default=56, metadata={"help": "Side of video frames in pixels (even)."})
    num_frames: int = field(default=4, metadata={"help": "Frames per video (all are used in training and eval)."})
    arch: str = field(
        default="qwen2_vl",
        metadata={"help": "Model architecture: qwen2_vl or qwen2_5_vl.", "choices": ["qwen2_vl", "qwen2_5_vl"]},
    )
    hidden_size: int = field(default=128, metadata={"help": "Language model width."})
    num_layers: int = field(default=4, metadata={"help": "Language model layers."})
    vision_depth: int = field(default=4, metadata={"help": "Vision tower layers."})
    vision_size: int = field(default=64, metadata={"help": "Vision tower width."})
    reasoning: bool = field(
        default=True,
        metadata={
            "help": "Explained answers: each training answer starts with the element checklist of the point-score "
            "template ('red (color): 0, ...') before the verdict or score; pair ranks are then judged by generating "
            "and parsing (--scoring generate). False: verdict-only answers, judged from answer probabilities."
        },
    )
    num_captions: int | None = field(
        default=None,
        metadata={
            "help": "Auxiliary captioning records per kind (image, image pair, video, video pair; default 750; "
            "--quick 4), before --scale. 0: none."
        },
    )
    max_steps: int | None = field(
        default=None,
        metadata={"help": "Training steps per stage at most (default 20000; --quick 4); --train_minutes stops first."},
    )
    train_minutes: float = field(
        default=11.0,
        metadata={"help": "Stop training after this many minutes even if max_steps is not reached (0: no limit)."},
    )
    captioning_minutes: float = field(
        default=3.0,
        metadata={
            "help": "Training stage 1: minutes on the captioning records only (part of --train_minutes; 0: one stage "
            "on the whole mixture). With --train_minutes 0 both stages run --max_steps."
        },
    )
    cooldown: float = field(
        default=0.2,
        metadata={
            "help": "With --train_minutes: the last fraction of the time budget decays the learning rate linearly to "
            "0 (0: no cooldown)."
        },
    )
    batch_size: int | None = field(
        default=None,
        metadata={"help": "Training batch size (default 8: in a fixed time, more and smaller steps learn more; --quick 4)."},
    )
    learning_rate: float = field(default=3e-4, metadata={"help": "Peak learning rate (AdamW)."})
    warmup_steps: float = field(default=100, metadata={"help": "Linear warmup steps (a value < 1 is a ratio)."})
    lr_scheduler_type: str = field(
        default="constant_with_warmup", metadata={"help": "Learning-rate schedule (transformers' names)."}
    )
    dataloader_num_workers: int = field(
        default=1, metadata={"help": "DataLoader worker processes decoding media while the model trains."}
    )
    eval_batch_size: int = field(default=32, metadata={"help": "Prompts per forward pass when judging."})
    max_new_tokens: int = field(
        default=72, metadata={"help": "Answer length cap when judging (explained answers are ~50 tokens)."}
    )
    num_examples: int = field(default=2, metadata={"help": "Example judgments shown per task."})
    plots: bool = field(default=True, metadata={"help": "Write loss.png, accuracy.png and examples.png."})


_DEFAULTS = {"num_train": 1500, "num_eval": 160, "num_eval_point": 80, "num_captions": 750, "max_steps": 20000,
             "batch_size": 8}  # fmt: skip
_QUICK = {"num_train": 8, "num_eval": 8, "num_eval_point": 4, "num_captions": 4, "max_steps": 4, "batch_size": 4}


def _resolve(args: DemoArguments) -> DemoArguments:
    """Fill the size defaults (full or ``--quick``) and apply ``--scale``."""
    base = _QUICK if args.quick else _DEFAULTS
    values = {name: getattr(args, name) if getattr(args, name) is not None else base[name] for name in base}
    for name in ("num_train", "num_eval", "num_eval_point", "num_captions"):
        values[name] = max(1 if name != "num_captions" or values[name] else 0, round(values[name] * args.scale))
    return DemoArguments(**{**asdict(args), **values})


# ------------------------------------------------------------------------------------------------------------ model
def build_model(tokenizer: Any, args: DemoArguments) -> Any:
    """A randomly initialised Qwen2-VL / Qwen2.5-VL model sized by ``args``, for ``tokenizer``'s vocabulary.

    Text: ``num_layers`` x ``hidden_size`` (4 heads, 2 key-value heads, MLP 2x), tied embeddings; vision:
    ``vision_depth`` x ``vision_size``, patch 14, 2x2 merge. ``initializer_range`` is the usual 0.02.
    """
    import torch
    from transformers import AutoModelForImageTextToText, Qwen2_5_VLConfig, Qwen2VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>", "<|image_pad|>",
                                                             "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")}  # fmt: skip
    heads = 4
    half = args.hidden_size // heads // 2  # mrope sections (temporal, height, width) sum to head_dim / 2
    section = [half - 2 * (half // 3), half // 3, half // 3]
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": args.hidden_size,
        "intermediate_size": 2 * args.hidden_size,
        "num_hidden_layers": args.num_layers,
        "num_attention_heads": heads,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e4, "mrope_section": section},
        "bos_token_id": None,
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "tie_word_embeddings": True,
        "initializer_range": 0.02,
    }
    common = {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "tie_word_embeddings": True,
    }
    vision_heads = max(1, args.vision_size // 32)
    if args.arch == "qwen2_5_vl":
        vision = {"depth": args.vision_depth, "hidden_size": args.vision_size, "intermediate_size": 2 * args.vision_size,
                  "num_heads": vision_heads, "out_hidden_size": args.hidden_size, "patch_size": 14,
                  "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
                  "fullatt_block_indexes": list(range(args.vision_depth)), "tokens_per_second": 2,
                  "initializer_range": 0.02}  # fmt: skip
        config: Any = Qwen2_5_VLConfig(text_config=text, vision_config=vision, **common)
    else:
        vision = {"depth": args.vision_depth, "embed_dim": args.vision_size, "hidden_size": args.hidden_size,
                  "mlp_ratio": 2, "num_heads": vision_heads, "patch_size": 14, "spatial_merge_size": 2,
                  "temporal_patch_size": 2, "initializer_range": 0.02}  # fmt: skip
        config = Qwen2VLConfig(text_config=text, vision_config=vision, **common)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(args.seed)
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    finally:
        torch.random.set_rng_state(state)
    generation = model.generation_config
    generation.bos_token_id = None
    generation.eos_token_id = ids["<|im_end|>"]
    generation.pad_token_id = ids["<|endoftext|>"]
    generation.do_sample = False
    return model.eval()


# ------------------------------------------------------------------------------------------------------------ stages
class _Clock:
    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.stages: dict[str, float] = {}

    def stage(self, name: str, since: float) -> None:
        self.stages[name] = round(time.perf_counter() - since, 1)
        print(f"[demo] {name}: {self.stages[name]:.1f} s (total {time.perf_counter() - self.start:.0f} s)", flush=True)


def _say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def make_world(args: DemoArguments, out: Path) -> tuple[Any, Any, dict[str, Any]]:
    """Write the training records and held-out files; returns ``(training data, held-out data, world info)``."""
    from unifiedreward.synth import AUX_COMBOS, COMBOS, DifficultyMix, World, write_heldout, write_training_data

    world = World(seed=args.seed, image_size=args.image_size, video_size=args.video_size, num_frames=args.num_frames)
    mix = DifficultyMix.preset(args.difficulty)
    sizes = {**dict.fromkeys(COMBOS, args.num_train), **dict.fromkeys(AUX_COMBOS, args.num_captions)}
    train = write_training_data(out / "data" / "train", world, sizes, mix=mix, reasoning=args.reasoning,
                                progress=True)  # fmt: skip
    heldout_sizes = {
        "genai_bench_image": args.num_eval,
        "genai_bench_video": args.num_eval,
        "vl_rewardbench": args.num_eval,
        "video_understanding": args.num_eval,
        "point_score": args.num_eval_point,
    }
    heldout = write_heldout(out / "data" / "heldout", world, heldout_sizes, mix=mix, progress=True)
    info = {
        "world": world.to_dict(),
        "difficulty": args.difficulty,
        "difficulty_mix": mix.to_dict(),
        "train_records": {f"{t}/{m}": n for (t, m), n in train.counts.items()},
        "train_data_yaml": str(train.yaml_path),
        "heldout": {k: str(v) for k, v in asdict(heldout).items() if k != "counts" and v is not None},
        "heldout_counts": heldout.counts,
    }
    (out / "world.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return train, heldout, info


def make_model(args: DemoArguments, folder: Path) -> dict[str, Any]:
    """Build the tokenizer, processor and random model, and save them as a checkpoint in ``folder``."""
    from unifiedreward.synth import build_world_tokenizer
    from unifiedreward.testing.tiny_models import build_tiny_processor

    tokenizer = build_world_tokenizer()
    processor = build_tiny_processor(args.arch, tokenizer=tokenizer)
    processor.chat_template = tokenizer.chat_template  # media labelled after each image / video
    model = build_model(tokenizer, args)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return {"path": str(folder), "parameters": model.num_parameters(), "vocabulary": len(tokenizer)}


def evaluate(args: DemoArguments, model_path: Path, heldout: Any, out: Path, label: str) -> dict[str, Any]:
    """Judge every held-out file with the model at ``model_path``; returns per-task metrics.

    Pair rank: :func:`unifiedreward.eval.runner.run_benchmark` (the code of ``benchmark_evaluation/eval_*.py``)
    with ``--scoring probabilities --order random``. Point score: :func:`unifiedreward.judge.cli.run_judge`
    (``unifiedreward judge --scoring probabilities``), then Spearman of the expected score against the truth.
    """
    from unifiedreward.eval.metrics import spearman
    from unifiedreward.eval.runner import BackendArguments, EvalArguments, run_benchmark
    from unifiedreward.judge import TransformersBackend
    from unifiedreward.judge.cli import JudgeArguments, read_output, run_judge
    from unifiedreward.modeling import load_reward_model
    from unifiedreward.synth import video_understanding_benchmark

    model, processor = load_reward_model(str(model_path))
    backend = TransformersBackend(model, processor, batch_size=args.eval_batch_size)
    backend_args = BackendArguments(model=str(model_path), batch_size=args.eval_batch_size,
                                    max_new_tokens=args.max_new_tokens)  # fmt: skip
    scoring = "generate" if args.reasoning else "probabilities"
    per_task: dict[str, Any] = {}
    for task, (key, name) in PAIR_BENCHMARKS.items():
        data = getattr(heldout, key)
        bench: Any = name if name is not None else video_understanding_benchmark()
        eval_args = EvalArguments(data=str(data), output_dir=str(out / key), order="random", seed=args.seed,
                                  scoring=scoring, num_frames=args.num_frames, overwrite=True, plot=False,
                                  num_workers=1, chunk_size=64)  # fmt: skip
        _say(f"{label}: {key} ({TASK_LABELS[task]}, pair rank)")
        results = run_benchmark(bench, eval_args, backend_args, backend=backend)
        per_task[task] = _pair_summary(task, results, out / key / "predictions.jsonl", Path(data))
    _say(f"{label}: point scores (all tasks)")
    judged = out / "point_score" / "judged.jsonl"
    judged.parent.mkdir(parents=True, exist_ok=True)
    judge_args = JudgeArguments(input=str(heldout.point_score), output=str(judged), scoring="probabilities",
                                num_frames=args.num_frames, max_new_tokens=args.max_new_tokens,
                                batch_size=args.eval_batch_size,
                                overwrite=True, num_workers=1)  # fmt: skip
    run_judge(judge_args, backend=backend)
    records = read_output(judged)
    for task in TASK_LABELS:
        rows = [r for r in records if r["task"] == task]
        scored = [(_score(r), r["meta"]["truth"]) for r in rows if _score(r) is not None]
        rho = spearman([s for s, _ in scored], [t for _, t in scored]) if len(scored) >= 3 else None
        rho = None if rho is None or math.isnan(rho) else rho
        per_task[task]["point"] = {"spearman": rho, "valid": len(scored), "items": len(rows)}
    (out / "summary.json").write_text(json.dumps(per_task, indent=2) + "\n", encoding="utf-8")
    return per_task


def _score(record: Mapping[str, Any]) -> float | None:
    value = record.get("expected_score")
    return float(value) if value is not None else (float(record["score"]) if record.get("score") is not None else None)


def _attribute(row: Mapping[str, Any]) -> str | None:
    """What makes the candidates of a held-out row differ: the wrong attribute (``synth-wrong-color`` ->
    ``color``) of a generation pair, or the question type of an understanding pair."""
    if row.get("query_source"):
        return str(row["query_source"]).removeprefix("synth-")
    for key in ("left_model", "right_model"):
        if str(row.get(key, "")).startswith("synth-wrong-"):
            return str(row[key]).removeprefix("synth-wrong-")
    return None


def _pair_summary(task: str, results: Mapping[str, Any], predictions: Path, data: Path) -> dict[str, Any]:
    """Pair-rank accuracy of one benchmark run, per attribute, plus the benchmark's own headline numbers.

    Accuracy = correct verdicts / items whose gold is not a tie; an unparsed answer or a tie verdict counts as wrong
    (the same rule as GenAI-Bench's *diff*; chance is 50% for a model that always answers). ``by_attribute``: the
    same accuracy per attribute that differs between the candidates (``data``: the benchmark file, for the rows'
    attributes).
    """
    rows = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines() if line.strip()]
    source = {str(r["id"]): r for r in map(json.loads, data.read_text(encoding="utf-8").splitlines()) if r}
    gold = [r for r in rows if r.get("gold_pref") in ("first", "second") and r.get("status") != "media_error"]
    correct = sum(r.get("verdict") == r["gold_pref"] for r in gold)
    by_attribute: dict[str, list[int]] = {}
    for r in gold:
        attribute = _attribute(source.get(str(r["id"]), {})) or "other"
        tally = by_attribute.setdefault(attribute, [0, 0])
        tally[0] += int(r.get("verdict") == r["gold_pref"])
        tally[1] += 1
    valid = sum(r.get("status") == "valid" for r in rows)
    keys = ("tau", "diff", "without_ties", "official_4way", "overall", "ur_overall")
    headline = {k: v for k, v in results["headline"].items() if k in keys}
    return {"pair": {"accuracy": correct / len(gold) if gold else None, "n": len(gold), "valid": valid,
                     "items": len(rows), "by_attribute": {k: {"accuracy": c / n, "n": n}
                                                         for k, (c, n) in sorted(by_attribute.items())},
                     **headline}}  # fmt: skip


def train(args: DemoArguments, init: Path, data: Any, out: Path) -> tuple[Path, list[dict[str, Any]], list[str]]:
    """Train with the SFT entry point, in up to two stages; returns ``(model folder, log history, command lines)``.

    Stage 1 (``--captioning_minutes`` > 0): the captioning records only (``train_captioning.yaml``), which teaches a
    model trained from scratch to see; stage 2: the whole mixture (``train_data.yaml``), from stage 1's weights, for
    the rest of ``--train_minutes``. Each stage is one ``python -m unifiedreward.train`` run (its flags are in
    ``train/command.txt``); the history of stage 2 continues stage 1's step count and carries ``"stage": 2``.
    """
    stages: list[tuple[str, Path, float]] = []
    stage1 = args.captioning_minutes > 0 and data.captioning_yaml_path is not None
    if stage1:
        stages.append(("captioning", Path(data.captioning_yaml_path), args.captioning_minutes))
    rest = args.train_minutes - (args.captioning_minutes if stage1 else 0.0) if args.train_minutes > 0 else 0.0
    if args.train_minutes > 0 and rest <= 0:
        raise ValueError("--captioning_minutes must be below --train_minutes")
    stages.append(("judging", Path(data.yaml_path), rest))
    (out / "train").mkdir(parents=True, exist_ok=True)
    model_path, history, commands, offset = init, [], [], 0
    for number, (name, yaml_path, minutes) in enumerate(stages, start=1):
        final = number == len(stages)
        model_dir = out / "model" / ("trained" if final else f"stage{number}_{name}")
        _say(f"training stage {number}/{len(stages)} ({name}: {yaml_path.name}"
             + (f", {minutes:g} min" if minutes > 0 else "") + ")")  # fmt: skip
        argv = _train_argv(args, model_path, yaml_path, model_dir)
        commands.append("python -m unifiedreward.train " + " ".join(argv))
        trainer = _run_stage(argv, minutes, args.cooldown if final else 0.0)
        steps = 0
        for entry in trainer.state.log_history:
            steps = max(steps, int(entry.get("step", 0)))
            history.append({**entry, "step": offset + int(entry.get("step", 0)), "stage": number, "stage_name": name})
        offset += steps
        model_path = model_dir
    (out / "train" / "command.txt").write_text("\n".join(commands) + "\n", encoding="utf-8")
    (out / "train" / "log_history.json").write_text(json.dumps(history, indent=1) + "\n", encoding="utf-8")
    return model_path, history, commands


def _train_argv(args: DemoArguments, model: Path, data_yaml: Path, output_dir: Path) -> list[str]:
    import torch

    return [
        "--model_name_or_path", str(model),
        "--data_path", str(data_yaml),
        "--output_dir", str(output_dir),
        "--frames_upbound", str(args.num_frames),
        "--video_fps", str(64.0),  # clips are 1 s: every frame is kept (frames_upbound caps the count)
        "--model_max_length", "1024",
        "--max_bad_fraction", "0.0",
        "--max_steps", str(args.max_steps),
        "--per_device_train_batch_size", str(args.batch_size),
        "--learning_rate", str(args.learning_rate),
        "--warmup_steps", str(args.warmup_steps),
        "--lr_scheduler_type", args.lr_scheduler_type,
        "--weight_decay", "0.0",
        "--max_grad_norm", "1.0",
        "--logging_steps", str(max(1, min(10, args.max_steps // 20 or 1))),
        "--save_strategy", "no",
        "--report_to", "none",
        "--seed", str(args.seed),
        "--dataloader_num_workers", str(args.dataloader_num_workers),
        "--use_cpu", "false" if torch.cuda.is_available() else "true",
        "--dtype", "float32",
    ]  # fmt: skip


def _run_stage(argv: list[str], minutes: float, cooldown: float) -> Any:
    from unifiedreward.train import parse_train_args, run_training

    model_args, data_args, training_args = parse_train_args(argv)
    callbacks = [_time_budget(minutes, cooldown)] if minutes > 0 else []
    trainer = run_training(model_args, data_args, training_args, callbacks=callbacks)
    _quiet()
    return trainer


def _time_budget(minutes: float, cooldown: float) -> Any:
    """A :class:`~transformers.TrainerCallback` that ends training after ``minutes`` of wall time.

    The scheduler cannot know how many steps fit in the budget, so the last ``cooldown`` fraction of the *time* is a
    linear learning-rate cooldown to 0 (a warmup-stable-decay schedule): after each step the scheduler's learning
    rate is multiplied by ``min(1, (1 - t) / cooldown)``, ``t`` the elapsed fraction of the budget.
    """
    from transformers import TrainerCallback

    class TimeBudget(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()
            self.deadline = self.start + 60 * minutes

        def on_step_end(self, args, state, control, optimizer=None, **kwargs):
            now = time.perf_counter()
            if now > self.deadline:
                _say(f"training time budget of {minutes:g} min reached at step {state.global_step}")
                control.should_training_stop = True
                control.should_log = True
            elif cooldown > 0 and optimizer is not None:
                left = (self.deadline - now) / (60 * minutes)
                factor = min(1.0, left / cooldown)
                if factor < 1.0:
                    for group in optimizer.param_groups:  # the scheduler resets lr from its base at every step
                        group["lr"] *= factor
            return control

    return TimeBudget()


def _quiet() -> None:
    """After training: back to warnings only (``run_training`` sets the package's loggers to INFO)."""
    import transformers

    logging.getLogger("unifiedreward").setLevel(logging.WARNING)
    transformers.utils.logging.set_verbosity_warning()


# -------------------------------------------------------------------------------------------------------------- run
def run(args: DemoArguments) -> dict[str, Any]:
    """Run the demo (see the module docstring); returns the summary written to ``output_dir/results.json``."""
    args = _resolve(args)
    out = Path(args.output_dir)
    for stale in ("data", "eval", "model", "train"):
        if (out / stale).exists():
            shutil.rmtree(out / stale)
    out.mkdir(parents=True, exist_ok=True)
    clock = _Clock()

    t = time.perf_counter()
    _say(f"generating the world in {out / 'data'} (seed {args.seed}; {args.num_train} training records per task "
         f"and mode, {args.num_eval} held-out pairs per benchmark)")  # fmt: skip
    train_data, heldout, world_info = make_world(args, out)
    clock.stage("world", t)
    if args.only_data:
        summary = {"world": world_info, "stages": clock.stages, "seconds": round(time.perf_counter() - clock.start)}
        (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        return summary

    t = time.perf_counter()
    init_dir = out / "model" / "init"
    model_info = make_model(args, init_dir)
    _say(f"built a random {args.arch} model ({model_info['parameters']:,} parameters, vocabulary "
         f"{model_info['vocabulary']}) at {init_dir}")  # fmt: skip
    clock.stage("model", t)

    t = time.perf_counter()
    before = evaluate(args, init_dir, heldout, out / "eval" / "before", "before training")
    clock.stage("eval before", t)

    t = time.perf_counter()
    _say(f"training: batch {args.batch_size}, at most {args.max_steps} steps per stage"
         + (f" and {args.train_minutes:g} min in all" if args.train_minutes > 0 else "") + " (python -m unifiedreward.train)")
    model_dir, history, commands = train(args, init_dir, train_data, out)
    clock.stage("train", t)

    train_steps = max([h.get("step", 0) for h in history] or [0])
    t = time.perf_counter()
    after = evaluate(args, model_dir, heldout, out / "eval" / "after", "after training")
    clock.stage("eval after", t)

    t = time.perf_counter()
    examples = collect_examples(out, heldout, args.num_examples)
    if args.plots:
        plot_loss(history, out / "loss.png")
        plot_accuracy(before, after, out / "accuracy.png")
        plot_examples(examples, out / "examples.png")
    write_examples_html(examples, out)
    clock.stage("report", t)
    summary = {
        "settings": asdict(args),
        "world": world_info,
        "model": model_info,
        "train_commands": commands,
        "train_steps": train_steps,
        "before": before,
        "after": after,
        "examples": examples,
        "stages": clock.stages,
        "seconds": round(time.perf_counter() - clock.start, 1),
    }
    table = write_report(args, out, summary)
    print()
    print(table)
    print()
    print(f"[demo] {summary['seconds']:.0f} s in total; wrote {out / 'results.md'}, loss.png, accuracy.png, "
          f"examples.png, examples.html")  # fmt: skip
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    (args,) = parse_args([DemoArguments], argv, prog="python -m unifiedreward.demo", description=__doc__.split("\n\n")[0])
    run(args)
    return 0

