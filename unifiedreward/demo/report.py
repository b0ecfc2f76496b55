"""The demo's report: the before/after table, ``results.md`` / ``results.json``, plots and example judgments.

Used by :func:`unifiedreward.demo.run`; every function reads the summaries that :func:`unifiedreward.demo.evaluate`
writes and the held-out files (:class:`unifiedreward.synth.HeldoutData`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from unifiedreward.demo.diffusion_loop import diffusion_loop_table
from unifiedreward.demo.policy_loop import loop_table
from unifiedreward.demo.video_loop import video_loop_table

__all__ = [
    "PAIR_BENCHMARKS",
    "TASK_LABELS",
    "collect_examples",
    "plot_accuracy",
    "plot_examples",
    "plot_loss",
    "results_table",
    "target_lines",
    "write_examples_html",
    "write_report",
]

TASK_LABELS: dict[str, str] = {
    "image_generation": "image generation",
    "image_understanding": "image understanding",
    "video_generation": "video generation",
    "video_understanding": "video understanding",
}
#: task -> (benchmark key in the held-out data, the runner's benchmark name or None for the synthetic video one)
PAIR_BENCHMARKS: dict[str, tuple[str, str | None]] = {
    "image_generation": ("genai_bench_image", "genai_bench_image"),
    "image_understanding": ("vl_rewardbench", "vl_rewardbench"),
    "video_generation": ("genai_bench_video", "genai_bench_video"),
    "video_understanding": ("video_understanding", None),
}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _rho(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def results_table(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """The markdown table of pair-rank accuracy and point-score Spearman per task, before and after training."""
    header = "| task | pair-rank accuracy before | after | point-score Spearman before | after | valid answers after |"
    lines = [header, "|---|---|---|---|---|---|"]
    for task, label in TASK_LABELS.items():
        b, a = before[task], after[task]
        lines.append(
            f"| {label} | {_pct(b['pair']['accuracy'])} | **{_pct(a['pair']['accuracy'])}** | "
            f"{_rho(b['point']['spearman'])} | **{_rho(a['point']['spearman'])}** | "
            f"{a['pair']['valid']}/{a['pair']['items']}, {a['point']['valid']}/{a['point']['items']} |"
        )
    mean_b = _mean([before[t]["pair"]["accuracy"] for t in TASK_LABELS])
    mean_a = _mean([after[t]["pair"]["accuracy"] for t in TASK_LABELS])
    rho_b = _mean([before[t]["point"]["spearman"] for t in TASK_LABELS])
    rho_a = _mean([after[t]["point"]["spearman"] for t in TASK_LABELS])
    lines.append(
        f"| **mean of the four** | {_pct(mean_b)} | **{_pct(mean_a)}** | {_rho(rho_b)} | **{_rho(rho_a)}** | |"
    )
    return "\n".join(lines)


def _percent(value: Any) -> str:
    """A value that is already a percentage, or ``n/a``."""
    return "n/a" if value is None else f"{float(value):.1f}"


#: The main job's targets: pair-rank accuracy and point-score Spearman on each task, and the run's wall time.
TARGET_ACCURACY = 0.85
TARGET_SPEARMAN = 0.7
TARGET_MINUTES = 12.0


def target_lines(after: Mapping[str, Any], seconds: float) -> list[str]:
    """One markdown line per target: the value reached and ``met`` / ``not met``.

    Accuracy and Spearman depend only on the schedule (steps), not on the machine; the wall time does.
    """
    met = {True: "met", False: "not met"}
    lines = []
    for task, label in TASK_LABELS.items():
        acc, rho = after[task]["pair"]["accuracy"], after[task]["point"]["spearman"]
        ok = acc is not None and acc >= TARGET_ACCURACY and rho is not None and rho >= TARGET_SPEARMAN
        lines.append(f"- {label}: pair-rank accuracy {_pct(acc)} (>= {100 * TARGET_ACCURACY:.0f}%), Spearman "
                     f"{_rho(rho)} (>= {TARGET_SPEARMAN}): {met[ok]}")  # fmt: skip
    minutes = seconds / 60
    lines.append(f"- whole run <= {TARGET_MINUTES:g} min on 2 CPU cores: {minutes:.1f} min on this machine "
                 f"({met[minutes <= TARGET_MINUTES]}; the time depends on the machine, the accuracy does not)")  # fmt: skip
    return lines


def loop_target_lines(loop: Mapping[str, Any]) -> list[str]:
    """The closed loop's targets (issue: reward-model pairs raise held-out accuracy by >= 10 points, at least half
    of the ground-truth pairs' gain, random pairs do not help (read as: gain <= +2 points, as the diffusion issue
    states it), the stage takes <= 6 minutes); plus the margin of the reward-model pairs over random ones."""
    met = {True: "met", False: "not met"}
    arms = loop["arms"]
    reward, truth, rand = (arms.get(name, {}).get("gain") for name in ("reward model", "ground truth", "random"))
    lines = []
    if reward is not None:
        lines.append(f"- reward-model pairs: {reward * 100:+.1f} points (>= +10): {met[reward >= 0.10]}")
        if truth is not None:
            half = reward >= truth / 2
            lines.append(f"- at least half the ground-truth pairs' gain ({truth * 100:+.1f}): {met[half]}")
    if rand is not None:
        lines.append(f"- random pairs do not help (<= +2 points): {rand * 100:+.1f}: {met[rand <= 0.02]}")
        if reward is not None:
            lines.append(f"- reward-model pairs beat random pairs by >= 10 points: {(reward - rand) * 100:+.1f}: "
                         f"{met[reward - rand >= 0.10]}")  # fmt: skip
    minutes = loop["seconds"] / 60
    lines.append(f"- closed loop <= 6 min on 2 CPU cores: {minutes:.1f} min on this machine ({met[minutes <= 6]})")
    return lines


def diffusion_target_lines(loop: Mapping[str, Any], stage: str = "diffusion loop") -> list[str]:
    """The diffusion loop's targets on one run (issue: reward-model pairs raise the ground-truth rate (``all``) by
    >= 5 points on average over seeds and >= 2 on each, ground-truth pairs at least as much, random pairs <= +2 and
    >= 3 below the reward-model arm, no attribute falls by more than 3 points in the reward-model and ground-truth
    arms, the stage takes <= 6 minutes); the video loop (``stage``) has the same targets."""
    met = {True: "met", False: "not met"}
    arms = loop["arms"]
    gain = {name: arms[name]["gains"] for name in arms}
    lines = []
    if "reward model" in gain:
        reward = gain["reward model"]["all"]
        lines.append(f"- reward-model pairs: {reward * 100:+.1f} points on every attribute right (>= +2 on each "
                     f"seed, >= +5 on average): {met[reward >= 0.02]} on this seed")  # fmt: skip
        if "ground truth" in gain:
            truth = gain["ground truth"]["all"]
            lines.append(f"- ground-truth pairs at least as much: {truth * 100:+.1f}: {met[truth >= reward]}")
        if "random" in gain:
            rand = gain["random"]["all"]
            lines.append(f"- random pairs <= +2 and >= 3 below the reward model: {rand * 100:+.1f}: "
                         f"{met[rand <= 0.02 and reward - rand >= 0.03]}")  # fmt: skip
    worst = {name: min(gain[name][k] for k in gain[name] if k != "all") for name in ("reward model", "ground truth")
             if name in gain}  # fmt: skip
    if worst:
        cells = ", ".join(f"{name} {value * 100:+.1f}" for name, value in worst.items())
        lines.append(f"- no attribute falls by more than 3 points (worst: {cells}): "
                     f"{met[min(worst.values()) >= -0.03]}")  # fmt: skip
    minutes = loop["seconds"] / 60
    lines.append(f"- {stage} <= 6 min on 2 CPU cores: {minutes:.1f} min on this machine ({met[minutes <= 6]})")
    return lines


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if len(present) == len(values) and present else None


def write_report(args: Any, out: Path, summary: Mapping[str, Any]) -> str:
    """``results.md`` (table, targets, settings) and ``results.json``; returns the markdown."""
    before, after = summary["before"], summary["after"]
    table = results_table(before, after)
    targets = target_lines(after, summary.get("reward_model_seconds") or summary["seconds"])
    loop = summary.get("policy_loop")
    loop_lines = ["", loop_table(loop), "", *loop_target_lines(loop)] if loop else []
    diffusion = summary.get("diffusion_loop")
    if diffusion:
        loop_lines += ["", diffusion_loop_table(diffusion), "", *diffusion_target_lines(diffusion),
                       "", ("Images before / after DPO (rows: base, then each arm; columns: held-out captions in "
                       "`diffusion_loop/grid.txt`): `diffusion_loop.png`.")]  # fmt: skip
    video = summary.get("video_loop")
    if video:
        loop_lines += ["", video_loop_table(video), "", *diffusion_target_lines(video, "video loop"),
                       "", ("Frames before / after DPO (rows: base, then each arm; columns: held-out captions in "
                       "`video_loop/strip.txt`, each clip's frames left to right): `video_loop.png`.")]  # fmt: skip
    genai = []
    for task in ("image_generation", "video_generation"):
        pair = after[task]["pair"]
        cells = " | ".join(_percent(pair.get(key)) for key in ("tau", "diff", "without_ties", "official_4way"))
        genai.append(f"| {TASK_LABELS[task]} | {cells} |")
    model_line = (
        f"Model: {summary['model']['parameters']:,} parameters ({args.arch}, text {args.num_layers}x"
        f"{args.hidden_size}, vision {args.vision_depth}x{args.vision_size}), vocabulary "
        f"{summary['model']['vocabulary']}; {summary['train_steps']} steps of batch {args.batch_size} in all "
        f"({len(summary['train_commands'])} stage(s): {args.captioning_steps} captioning + {args.judging_steps} "
        f"judging + {getattr(args, 'restart_steps', 0)} restart planned), lr {args.learning_rate:g} (warmup {args.warmup_steps:g}, cooldown {args.cooldown:g}), "
        f"difficulty '{args.difficulty}'."
    )
    stages = ", ".join(f"{k} {v}" for k, v in summary["stages"].items())
    intro = (
        "Pair-rank accuracy: held-out pairs without ties, argmax over the template's answer sentences (chance 50%). "
        "GenAI-Bench-style files: the UnifiedReward paper's *diff*; VL-RewardBench-style files: overall accuracy. "
        "Point score: Spearman of the expected score against the true score."
    )
    genai_intro = (
        "GenAI-Bench-style metrics after training (percent; tau counts ties, 3-way; diff: non-tie pairs; w/o ties "
        "from the margins P(first) - P(second), n/a when pairs are judged by generating (explained answers, the "
        "default); official 4-way: a tie answer is right for tievote and bothbad_vote):"
    )
    text = "\n".join(
        [
            "# Synthetic-world demo: a reward model trained from scratch on CPU",
            "",
            intro,
            "",
            table,
            "",
            "Targets (issue: every task, on any 2-core machine):",
            "",
            *targets,
            *loop_lines,
            "",
            genai_intro,
            "",
            "| task | tau | diff | w/o ties (margins) | official 4-way |",
            "|---|---|---|---|---|",
            *genai,
            "",
            model_line,
            "Training commands (one per stage):",
            "",
            *[f"    {command}" for command in summary["train_commands"]],
            "",
            f"Stage times (s): {stages}; total {summary['seconds']:.0f} s.",
            "",
            "Per-benchmark outputs (predictions.jsonl, results.json, results.md): `eval/before/*`, `eval/after/*`.",
        ]
    )
    (out / "results.md").write_text(text + "\n", encoding="utf-8")
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    return table


def plot_loss(history: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Training loss (per logging step) against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    colors = ("#ff7f0e", "#1f77b4", "#2ca02c")
    for stage in sorted({h.get("stage", 1) for h in history}):
        points = [(h["step"], h["loss"]) for h in history if "loss" in h and h.get("stage", 1) == stage]
        if points:
            name = next(h.get("stage_name", "") for h in history if h.get("stage", 1) == stage)
            ax.plot([p[0] for p in points], [p[1] for p in points], color=colors[(stage - 1) % 3],
                    label=f"stage {stage}: {name}" if name else None)  # fmt: skip
    if any(h.get("stage_name") for h in history):
        ax.legend(fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (answer tokens)")
    ax.set_title("Reward-model SFT on the synthetic world")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_accuracy(before: Mapping[str, Any], after: Mapping[str, Any], path: Path) -> None:
    """Bars: pair-rank accuracy and point-score Spearman per task, before and after training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [TASK_LABELS[t].replace(" ", "\n", 1) for t in TASK_LABELS]
    xs = range(len(labels))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, sub, title, floor in (
        (left, "pair", "accuracy", "pair-rank accuracy (held out)", 0.5),
        (right, "point", "spearman", "point-score Spearman (held out)", 0.0),
    ):
        lowest = 0.0
        for offset, data, name, color in ((-0.2, before, "before", "#bbbbbb"), (0.2, after, "after", "#2ca02c")):
            raw = [data[t][key][sub] for t in TASK_LABELS]
            values = [v if v is not None else 0.0 for v in raw]
            lowest = min(lowest, *values)
            bars = ax.bar([x + offset for x in xs], values, width=0.4, label=name, color=color)
            for bar, value, shown in zip(bars, values, raw, strict=True):
                ax.annotate("n/a" if shown is None else f"{value:.2f}", (bar.get_x() + bar.get_width() / 2, value),
                            ha="center", va="bottom" if value >= 0 else "top", fontsize=7)  # fmt: skip
        ax.axhline(floor, color="#d62728", linestyle="--", linewidth=1, label="chance")
        ax.set_xticks(list(xs), labels, fontsize=8)
        ax.set_ylim(lowest - 0.1 if lowest < 0 else 0.0, 1.2)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, loc="upper center", ncols=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def collect_examples(out: Path, heldout: Any, per_task: int) -> list[dict[str, Any]]:
    """A few held-out items per task with their media, truth and the verdicts before and after training."""
    examples: list[dict[str, Any]] = []
    for task, (key, _) in PAIR_BENCHMARKS.items():
        data_path = Path(getattr(heldout, key))
        rows = [json.loads(line) for line in data_path.read_text(encoding="utf-8").splitlines() if line.strip()]
        before = _predictions(out / "eval" / "before" / key / "predictions.jsonl")
        after = _predictions(out / "eval" / "after" / key / "predictions.jsonl")
        chosen = [r for r in rows if r.get("vote_type", "x") in ("x", "leftvote", "rightvote")][:per_task]
        for row in chosen:
            media = [row[k] for k in ("left_image", "right_image", "left_video", "right_video", "image_path", "video")
                     if k in row]  # fmt: skip
            text = row.get("prompt") or row["query"]
            answers = row.get("response")
            examples.append({
                "task": task, "mode": "pair_rank", "id": row["id"], "text": text, "answers": answers,
                "media": [str(data_path.parent / m) for m in media],
                "truth": row.get("vote_type") or ("first" if row["human_ranking"] == [0, 1] else "second"),
                "before": _verdict(before.get(str(row["id"]))), "after": _verdict(after.get(str(row["id"]))),
                "after_answer": _raw(after.get(str(row["id"]))),
            })  # fmt: skip
    point_before = _predictions(out / "eval" / "before" / "point_score" / "judged.jsonl")
    point_after = _predictions(out / "eval" / "after" / "point_score" / "judged.jsonl")
    requests = [json.loads(line) for line in Path(heldout.point_score).read_text(encoding="utf-8").splitlines()]
    for task in TASK_LABELS:
        for row in [r for r in requests if r["task"] == task][:1]:
            media = row.get("images") or row.get("videos")
            text = row.get("prompt") or f"Q: {row['question']}  A: {row['response']}"
            examples.append({
                "task": task, "mode": "point_score", "id": row["id"], "text": text, "answers": None,
                "media": [str(Path(heldout.point_score).parent / m) for m in media], "truth": row["meta"]["truth"],
                "before": _point(point_before.get(row["id"])), "after": _point(point_after.get(row["id"])),
                "after_answer": _raw(point_after.get(row["id"])),
            })  # fmt: skip
    return examples


def _predictions(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {str(r["id"]): r for r in rows}


def _raw(record: Mapping[str, Any] | None) -> str:
    """The model's whole answer (the explained checklist and the verdict), as generated."""
    return "" if record is None else str(record.get("raw") or "")


def _verdict(record: Mapping[str, Any] | None) -> str:
    if record is None:
        return "n/a"
    shown = record.get("verdict") or f"invalid ({str(record.get('reason') or '')[:40]})"
    probs = record.get("probabilities") or {}
    if probs:
        shown += f" (P1 {probs.get('first', 0):.2f}, P2 {probs.get('second', 0):.2f}"
        shown += f", tie {probs['tie']:.2f})" if "tie" in probs else ")"
    return shown + (" [shown swapped]" if record.get("swapped") else "")


def _point(record: Mapping[str, Any] | None) -> str:
    if record is None:
        return "n/a"
    if record.get("status") != "valid":
        return f"invalid ({str(record.get('reason') or '')[:40]})"
    expected = record.get("expected_score")
    return f"{record.get('score'):g}" + (f" (expected {expected:.2f})" if expected is not None else "")


def _thumbnail(path: str, height: int = 84) -> Any:
    """An image, or a strip of a video's frames, as an RGB array of the given height."""
    import numpy as np
    from PIL import Image

    if path.endswith(".mp4"):
        from unifiedreward.media import load_video

        frames = [Image.fromarray(f) for f in load_video(path).frames]
    else:
        frames = [Image.open(path).convert("RGB")]
    frames = [f.resize((round(f.width * height / f.height), height), Image.NEAREST) for f in frames]
    strip = Image.new("RGB", (sum(f.width for f in frames) + 2 * (len(frames) - 1), height), (255, 255, 255))
    x = 0
    for frame in frames:
        strip.paste(frame, (x, 0))
        x += frame.width + 2
    return np.asarray(strip)


def plot_examples(examples: Sequence[Mapping[str, Any]], path: Path) -> None:
    """A grid: one row per example (its media, the text, the truth and both verdicts)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not examples:
        return
    width = max(len(e["media"]) for e in examples)
    fig, axes = plt.subplots(len(examples), width + 1, figsize=(2.2 * width + 6.5, 1.45 * len(examples)),
                             gridspec_kw={"width_ratios": [1] * width + [3.2]}, squeeze=False)  # fmt: skip
    for row, example in zip(axes, examples, strict=True):
        for k, ax in enumerate(row[:-1]):
            ax.axis("off")
            if k < len(example["media"]):
                ax.imshow(_thumbnail(example["media"][k]))
                ax.set_title(f"{'video' if example['media'][k].endswith('.mp4') else 'image'} {k + 1}", fontsize=7)
        text_ax = row[-1]
        text_ax.axis("off")
        lines = [f"{TASK_LABELS[example['task']]}, {example['mode'].replace('_', ' ')}: {example['text']}"]
        if example["answers"]:
            lines += [f"answer 1: {example['answers'][0]}", f"answer 2: {example['answers'][1]}"]
        lines += [f"truth: {example['truth']}", f"before: {example['before']}", f"after: {example['after']}"]
        text_ax.text(0, 0.5, "\n".join(lines), fontsize=7, va="center", family="monospace", wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_examples_html(examples: Sequence[Mapping[str, Any]], out: Path) -> Path:
    """``examples.html``: the same examples with the images and playable videos (paths relative to ``out``)."""
    import html

    rows = []
    for example in examples:
        media = []
        for item in example["media"]:
            rel = Path(item).resolve().relative_to(out.resolve()).as_posix()
            if rel.endswith(".mp4"):
                media.append(f'<video src="{rel}" width="112" autoplay loop muted></video>')
            else:
                media.append(f'<img src="{rel}" width="112" style="image-rendering: pixelated">')
        answers = ""
        if example["answers"]:
            answers = "<br>".join(f"answer {k + 1}: {html.escape(a)}" for k, a in enumerate(example["answers"]))
        rows.append(
            f"<tr><td>{html.escape(TASK_LABELS[example['task']])}<br>{example['mode']}</td><td>{''.join(media)}</td>"
            f"<td>{html.escape(str(example['text']))}<br>{answers}</td><td>{html.escape(str(example['truth']))}</td>"
            f"<td>{html.escape(example['before'])}</td><td>{html.escape(example['after'])}"
            f"<pre>{html.escape(example.get('after_answer', ''))}</pre></td></tr>"
        )
    page = (
        "<!doctype html><meta charset='utf-8'><title>unifiedreward demo: example judgments</title>"
        "<style>body{font-family:sans-serif} td{border-top:1px solid #ccc;padding:4px;vertical-align:top}</style>"
        "<h1>Example judgments on held-out items</h1><table><tr><th>task</th><th>media</th><th>caption / question"
        "</th><th>truth</th><th>before training</th><th>after training</th></tr>" + "".join(rows) + "</table>"
    )
    path = out / "examples.html"
    path.write_text(page, encoding="utf-8")
    return path
