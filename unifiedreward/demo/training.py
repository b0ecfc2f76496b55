"""The demo's training: the SFT entry point run in up to three stages on a schedule fixed in steps.

Stage 1 trains on the captioning records only (``train_captioning.yaml``), which teaches a model trained from
scratch to see; stage 2 on the whole mixture (``train_data.yaml``) from stage 1's weights, its last ``--cooldown``
fraction a linear learning-rate decay to 0 (transformers' ``warmup_stable_decay`` schedule); stage 3
(``--restart_steps``) continues on the whole mixture from stage 2's weights with a fresh optimizer, seed and data
order (``--seed`` and ``--mixture_seed`` + 1), a warm-up and its own cooldown. Each stage is one
``python -m unifiedreward.train`` run, its flags saved in ``train/command.txt``. The step counts fix the model a
run trains, on any machine; the trainer's progress bar shows each stage's real total and time left, and the log
states the planned samples and, after stage 1, the time stage 2 will take at the measured rate.

``--train_minutes`` (opt-in) caps the time as well: each stage then stops after its share of the minutes (the entry
point's ``--max_train_minutes``), and the cooldown follows the time (``--time_budget_cooldown``), since the step count
the budget allows is unknown up front.
"""

from __future__ import annotations

import json
import logging
import shlex
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from unifiedreward.demo.args import DemoArguments
from unifiedreward.demo.console import quiet, say

logger = logging.getLogger(__name__)

__all__ = ["Stage", "plan_stages", "train", "train_argv"]


@dataclass(frozen=True)
class Stage:
    """One training stage: ``name``, the mixture it reads, its steps, its time cap (``None``: none) and whether it
    ends with the cooldown."""

    name: str
    data_yaml: Path
    steps: int
    minutes: float | None
    cooldown: float
    seed_offset: int = 0


def plan_stages(args: DemoArguments, data: Any) -> list[Stage]:
    """The stages of ``args``' schedule for the training data ``data`` (:class:`~unifiedreward.synth.TrainingData`).

    Stage 1 runs when ``captioning_steps > 0`` and the world has captioning records, stage 3 (``restart``) when
    ``restart_steps > 0``. The judging stages end with the cooldown. A time cap is split between the stages in
    proportion to their steps.
    """
    planned: list[tuple[str, Path, int]] = []
    if args.captioning_steps and data.captioning_yaml_path is not None:
        planned.append(("captioning", Path(data.captioning_yaml_path), int(args.captioning_steps)))
    planned.append(("judging", Path(data.yaml_path), int(args.judging_steps)))
    if getattr(args, "restart_steps", 0):
        planned.append(("restart", Path(data.yaml_path), int(args.restart_steps)))
    total = sum(steps for _, _, steps in planned)
    stages = []
    for name, path, steps in planned:
        minutes = None if args.train_minutes is None else args.train_minutes * steps / total
        cooldown = 0.0 if name == "captioning" else args.cooldown
        stages.append(Stage(name, path, steps, minutes, cooldown, seed_offset=int(name == "restart")))
    return stages


def train(args: DemoArguments, init: Path, data: Any, out: Path) -> tuple[Path, list[dict[str, Any]], list[str]]:
    """Train with the SFT entry point, stage by stage; returns ``(model folder, log history, command lines)``.

    The history of stage 2 continues stage 1's step count and carries ``"stage": 2``; the last entry of each stage
    has its ``train_runtime`` and ``train_samples_per_second``.
    """
    stages = plan_stages(args, data)
    samples = sum(s.steps for s in stages) * args.batch_size
    say(f"training schedule: {' + '.join(f'{s.steps} {s.name}' for s in stages)} steps of batch {args.batch_size} "
         f"= {samples:,} samples" + (f", capped at {args.train_minutes:g} min" if args.train_minutes else ""))  # fmt: skip
    (out / "train").mkdir(parents=True, exist_ok=True)
    model_path, history, commands, offset, rate = init, [], [], 0, None
    for number, stage in enumerate(stages, start=1):
        final = number == len(stages)
        model_dir = out / "model" / ("trained" if final else f"stage{number}_{stage.name}")
        estimate = f", ~{stage.steps * args.batch_size / rate / 60:.1f} min at {rate:.0f} samples/s" if rate else ""
        say(f"training stage {number}/{len(stages)} ({stage.name}: {stage.data_yaml.name}, {stage.steps} steps"
             f"{estimate})")  # fmt: skip
        argv = train_argv(args, model_path, stage, model_dir, out / "cache")
        commands.append("python -m unifiedreward.train " + shlex.join(argv))
        started = time.perf_counter()
        trainer = run_stage(argv, stage)
        seconds = time.perf_counter() - started
        steps = int(trainer.state.global_step)
        rate = steps * args.batch_size / max(seconds, 1e-9)
        say(f"stage {number} ({stage.name}): {steps} steps in {seconds / 60:.1f} min ({rate:.0f} samples/s)")
        for entry in trainer.state.log_history:
            history.append({**entry, "step": offset + int(entry.get("step", 0)), "stage": number,
                            "stage_name": stage.name})  # fmt: skip
        offset += steps
        model_path = model_dir
    (out / "train" / "command.txt").write_text("\n".join(commands) + "\n", encoding="utf-8")
    (out / "train" / "log_history.json").write_text(json.dumps(history, indent=1) + "\n", encoding="utf-8")
    return model_path, history, commands


def train_argv(args: DemoArguments, model: Path, stage: Stage, output_dir: Path, cache_dir: Path) -> list[str]:
    """The ``python -m unifiedreward.train`` flags of one stage.

    Warmup then a constant learning rate; a stage with a cooldown and no time cap uses ``warmup_stable_decay``
    (linear decay over the last ``cooldown`` fraction of its steps); with a time cap, ``--max_train_minutes`` and a
    cooldown over the last fraction of the time (``--time_budget_cooldown``). The sample cache is used when
    ``--sample_cache`` is on and the entry point has one (``--sample_cache_dir``).
    """
    import torch

    decay = round(stage.cooldown * stage.steps) if stage.minutes is None else 0
    schedule = ["--lr_scheduler_type", "constant_with_warmup"]
    if decay > 0:
        kwargs = {"num_decay_steps": decay, "decay_type": "linear"}
        schedule = ["--lr_scheduler_type", "warmup_stable_decay", "--lr_scheduler_kwargs", json.dumps(kwargs)]
    cache = ["--sample_cache_dir", str(cache_dir)] if args.sample_cache and _has_sample_cache() else []
    budget = []
    if stage.minutes is not None:
        budget = ["--max_train_minutes", f"{stage.minutes:g}", "--time_budget_cooldown", f"{stage.cooldown:g}"]
    return [
        "--model_name_or_path", str(model),
        "--data_path", str(stage.data_yaml),
        "--output_dir", str(output_dir),
        "--frames_upbound", str(args.num_frames),
        "--video_fps", str(64.0),  # clips are 1 s: every frame is kept (frames_upbound caps the count)
        "--model_max_length", "1024",
        "--max_bad_fraction", "0.0",
        "--max_steps", str(stage.steps),
        "--per_device_train_batch_size", str(args.batch_size),
        "--learning_rate", str(args.learning_rate),
        "--warmup_steps", str(args.warmup_steps),
        *schedule,
        *budget,
        "--weight_decay", "0.0",
        "--max_grad_norm", "1.0",
        "--logging_steps", str(max(1, min(10, stage.steps // 20 or 1))),
        "--save_strategy", "no",
        "--report_to", "none",
        "--seed", str(args.seed + stage.seed_offset),
        *(["--mixture_seed", str(args.seed + stage.seed_offset)] if stage.seed_offset else []),
        "--dataloader_num_workers", str(args.dataloader_num_workers),
        *cache,
        "--use_cpu", "false" if torch.cuda.is_available() else "true",
        "--dtype", "float32",
    ]  # fmt: skip


def _has_sample_cache() -> bool:
    """Whether the SFT entry point takes ``--sample_cache_dir`` (the pre-encoded sample cache)."""
    from unifiedreward.train import DataArguments

    return any(f.name == "sample_cache_dir" for f in fields(DataArguments))


def run_stage(argv: list[str], stage: Stage) -> Any:
    from unifiedreward.train import parse_train_args, run_training

    model_args, data_args, training_args = parse_train_args(argv)
    trainer = run_training(model_args, data_args, training_args)
    quiet()
    return trainer


