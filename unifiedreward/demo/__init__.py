"""The main job, end to end, on a CPU and without downloads: train a reward model and evaluate it, before and after.

``python -m unifiedreward.demo`` (the README's first command) runs the real pipeline on a procedurally generated
world (:mod:`unifiedreward.synth`):

1. **World**: images of simple scenes and short videos of moving shapes with their ground truth; training records
   for the four tasks x pair rank / point score in the released format, rendered with the protocol's templates
   (plus auxiliary captioning records), mixed by a ``train_data.yaml``; held-out benchmark files in the official
   GenAI-Bench / VideoGen-RewardBench / VL-RewardBench formats and point-score requests for ``unifiedreward judge``.
2. **Model**: a Qwen2-VL-architecture model with random weights (~1M parameters, :mod:`unifiedreward.tiny`) and a
   small BPE tokenizer trained on the world's text (each constant prompt segment is one token, so prompts stay
   short), saved as a checkpoint.
3. **Evaluate before training** with the evaluation runner of ``benchmark_evaluation/eval_*.py`` and the point
   scores with the ``unifiedreward judge`` runner (:mod:`unifiedreward.demo.evaluation`).
4. **Train** with the reward-model SFT entry point (``python -m unifiedreward.train``, flags saved in
   ``train/command.txt``) in up to three stages on a schedule fixed in steps (:mod:`unifiedreward.demo.training`):
   the captioning records (``--captioning_steps``), the whole mixture from those weights (``--judging_steps``),
   and a restart on the whole mixture with a fresh optimizer (``--restart_steps``), the judging stages ending with
   a learning-rate cooldown. Every machine trains the same model; only the time differs.
5. **Evaluate after training** the same way.
6. **Closed loop** (:mod:`unifiedreward.demo.policy_loop`, ``--policy_loop``; ``--loop_only`` runs it alone): a
   policy VLM answers colour questions, ``infer+sift.py``'s pipeline picks DPO pairs from its samples with the
   trained reward model, DPO trains the policy, and its held-out accuracy is compared with ground-truth and random
   pairs.
7. **Diffusion closed loop** (:mod:`unifiedreward.demo.diffusion_loop`, ``--diffusion_loop``;
   ``--diffusion_loop_only`` runs it alone): a tiny text-to-image model pre-trained from scratch draws the world's
   scenes, ``DiffusionDPO/sift_dpo_data.py``'s code picks pairs from its images with the trained reward model,
   ``DiffusionDPO/train.py``'s Diffusion-DPO trains it, and its ground-truth rate (checked on the pixels) is
   compared with ground-truth and random pairs.
8. **Video closed loop** (:mod:`unifiedreward.demo.video_loop`, ``--video_loop``; ``--video_loop_only`` runs it
   alone): the same with a tiny text-to-video model (AnimateDiff) and ``VideoDPO/``'s generation, sifting and
   Diffusion-DPO on its clips.
9. **Report**: write a table (printed and ``results.md``), plots (training loss,
   accuracy per task before/after) and example judgments with their images (:mod:`unifiedreward.demo.report`).

Everything is written under ``--output_dir``. ``docs/demo.md`` has the measured accuracy, the time on 2 CPU cores
and the experiments behind the default schedule::

    python -m unifiedreward.demo                         # the full run
    python -m unifiedreward.demo --quick                 # a few steps on a tiny world (~10 s): checks the plumbing
    python -m unifiedreward.demo --difficulty full       # candidates may differ in shape, count, position, motion
    python -m unifiedreward.demo --scale 10 --only_data  # the same world 10x larger, as a stress / regression set
    python -m unifiedreward.demo --judging_steps 4000    # a shorter schedule (lower accuracy)
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from unifiedreward.args import parse_args
from unifiedreward.demo.args import DemoArguments, model_size, resolve
from unifiedreward.demo.console import say
from unifiedreward.demo.diffusion_loop import diffusion_loop_table, run_diffusion_loop
from unifiedreward.demo.evaluation import evaluate
from unifiedreward.demo.policy_loop import loop_table, plot_loop, run_policy_loop
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
from unifiedreward.demo.training import train
from unifiedreward.demo.video_loop import run_video_loop, video_loop_table

logger = logging.getLogger(__name__)

__all__ = [
    "PAIR_BENCHMARKS",
    "TASK_LABELS",
    "DemoArguments",
    "build_model",
    "evaluate",
    "main",
    "make_model",
    "make_world",
    "run",
    "train",
]


def build_model(tokenizer: Any, args: DemoArguments) -> Any:
    """A randomly initialised Qwen2-VL / Qwen2.5-VL model sized by ``args`` (:func:`~unifiedreward.demo.args.
    model_size`), for ``tokenizer``'s vocabulary, seeded by ``args.seed``."""
    from unifiedreward.tiny import build_model as build_tiny

    return build_tiny(args.arch, tokenizer, model_size(args), seed=args.seed)


class _Clock:
    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.stages: dict[str, float] = {}

    def stage(self, name: str, since: float) -> None:
        self.stages[name] = round(time.perf_counter() - since, 1)
        print(f"[demo] {name}: {self.stages[name]:.1f} s (total {time.perf_counter() - self.start:.0f} s)", flush=True)


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
    from unifiedreward.tiny import build_processor

    tokenizer = build_world_tokenizer()
    processor = build_processor(args.arch, tokenizer)
    processor.chat_template = tokenizer.chat_template  # media labelled after each image / video
    model = build_model(tokenizer, args)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return {"path": str(folder), "parameters": model.num_parameters(), "vocabulary": len(tokenizer)}


# -------------------------------------------------------------------------------------------------------------- run
def run(args: DemoArguments) -> dict[str, Any]:
    """Run the demo (see the module docstring); returns the summary written to ``output_dir/results.json``."""
    args = resolve(args)
    out = Path(args.output_dir)
    if args.loop_only or args.diffusion_loop_only or args.video_loop_only:
        return run_loop_only(args, out)
    for stale in ("data", "eval", "model", "train"):
        if (out / stale).exists():
            shutil.rmtree(out / stale)
    out.mkdir(parents=True, exist_ok=True)
    clock = _Clock()

    t = time.perf_counter()
    say(f"generating the world in {out / 'data'} (seed {args.seed}; {args.num_train} training records per task "
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
    say(f"built a random {args.arch} model ({model_info['parameters']:,} parameters, vocabulary "
         f"{model_info['vocabulary']}) at {init_dir}")  # fmt: skip
    clock.stage("model", t)

    t = time.perf_counter()
    before = evaluate(args, init_dir, heldout, out / "eval" / "before", "before training")
    clock.stage("eval before", t)

    t = time.perf_counter()
    model_dir, history, commands = train(args, init_dir, train_data, out)
    clock.stage("train", t)

    train_steps = max([h.get("step", 0) for h in history] or [0])
    t = time.perf_counter()
    after = evaluate(args, model_dir, heldout, out / "eval" / "after", "after training")
    clock.stage("eval after", t)

    reward_seconds = round(time.perf_counter() - clock.start, 1)
    loop = None
    if args.policy_loop:
        t = time.perf_counter()
        loop = run_policy_loop(args, out, model_dir, _policy_start(out, init_dir))
        clock.stage("policy loop", t)
    diffusion = None
    if args.diffusion_loop:
        t = time.perf_counter()
        diffusion = run_diffusion_loop(args, out, model_dir)
        _copy_grid(out)
        clock.stage("diffusion loop", t)
    video = None
    if args.video_loop:
        t = time.perf_counter()
        video = run_video_loop(args, out, model_dir)
        _copy_grid(out)
        clock.stage("video loop", t)

    t = time.perf_counter()
    examples = collect_examples(out, heldout, args.num_examples)
    if args.plots:
        plot_loss(history, out / "loss.png")
        plot_accuracy(before, after, out / "accuracy.png")
        plot_examples(examples, out / "examples.png")
        if loop is not None:
            plot_loop(loop, out / "policy_loop.png")
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
        "policy_loop": loop,
        "diffusion_loop": diffusion,
        "video_loop": video,
        "stages": clock.stages,
        "reward_model_seconds": reward_seconds,
        "seconds": round(time.perf_counter() - clock.start, 1),
    }
    table = write_report(args, out, summary)
    print()
    print(table)
    for part, table_of in ((loop, loop_table), (diffusion, diffusion_loop_table), (video, video_loop_table)):
        if part is not None:
            print()
            print(table_of(part))
    print()
    print(f"[demo] {summary['seconds']:.0f} s in total; wrote {out / 'results.md'}, loss.png, accuracy.png, "
          f"examples.png, examples.html" + (", policy_loop.png" if loop is not None and args.plots else "")
          + (", diffusion_loop.png" if diffusion is not None else "")
          + (", video_loop.png" if video is not None else ""))  # fmt: skip
    return summary


def _policy_start(out: Path, init_dir: Path) -> Path:
    """The closed loop's starting policy: the captioning-stage weights when stage 1 ran, else the initial model."""
    stage1 = out / "model" / "stage1_captioning"
    return stage1 if (stage1 / "config.json").exists() else init_dir


def _copy_grid(out: Path) -> None:
    """The loops' before/after pictures to the top of the output folder."""
    for source, target in (("diffusion_loop/grid.png", "diffusion_loop.png"), ("video_loop/strip.png",
                                                                                "video_loop.png")):  # fmt: skip
        if (out / source).is_file():
            shutil.copyfile(out / source, out / target)


def run_loop_only(args: DemoArguments, out: Path) -> dict[str, Any]:
    """``--loop_only`` / ``--diffusion_loop_only`` / ``--video_loop_only``: a closed loop on a finished run in
    ``out``, merged into its ``results.json`` / ``.md``; returns the loop's summary.

    Raises:
        FileNotFoundError: ``out`` holds no trained reward model (``model/trained``).
    """
    reward_model = out / "model" / "trained"
    flag = ("--video_loop_only" if args.video_loop_only else "--diffusion_loop_only" if args.diffusion_loop_only
            else "--loop_only")  # fmt: skip
    if not (reward_model / "config.json").exists():
        raise FileNotFoundError(f"{reward_model}: no trained reward model; run the demo first (without {flag})")
    if args.video_loop_only:
        key, prefixes, table = "video_loop", ("t2v_",), video_loop_table
        loop = run_video_loop(args, out, reward_model)
        _copy_grid(out)
    elif args.diffusion_loop_only:
        key, prefixes, table = "diffusion_loop", ("t2i_",), diffusion_loop_table
        loop = run_diffusion_loop(args, out, reward_model)
        _copy_grid(out)
    else:
        key, prefixes, table = "policy_loop", ("loop_",), loop_table
        loop = run_policy_loop(args, out, reward_model, _policy_start(out, out / "model" / "init"))
        if args.plots:
            plot_loop(loop, out / "policy_loop.png")
    results = out / "results.json"
    summary = json.loads(results.read_text(encoding="utf-8")) if results.exists() else None
    if summary is not None and "after" in summary:
        summary[key] = loop
        settings = {**summary["settings"], **{k: v for k, v in asdict(args).items() if k.startswith(prefixes)}}
        known = set(DemoArguments.__dataclass_fields__)
        write_report(DemoArguments(**{k: v for k, v in settings.items() if k in known}), out, summary)
    else:
        (out / key / "results.md").write_text(table(loop) + "\n", encoding="utf-8")
    print()
    print(table(loop))
    return loop


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    (args,) = parse_args(
        [DemoArguments], argv, prog="python -m unifiedreward.demo", description=__doc__.split("\n\n")[0]
    )
    run(args)
    return 0
