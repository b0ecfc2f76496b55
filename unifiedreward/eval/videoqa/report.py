"""Video-QA report: ``results.json``, ``results.md`` (beside the UnifiedReward paper's DPO table), ``results.png``.

Accuracy = yes / (yes + no) and the mean score over the parsed grades, as upstream, with the unparsed count and the
accuracy counting them as "no" beside them (:func:`unifiedreward.eval.metrics.videoqa_judge_summary`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unifiedreward.eval.report import fmt
from unifiedreward.eval.videoqa.arguments import VideoQAArguments
from unifiedreward.eval.videoqa.data import QAItem
from unifiedreward.io import to_jsonable, write_json_atomic

__all__ = ["PUBLISHED", "TITLES", "write_report"]

#: UnifiedReward paper, DPO comparison (LLaVA-Video-7B policy; judge gpt-3.5-turbo-1106): (accuracy %, score).
PUBLISHED: dict[str, tuple[tuple[str, float, float], ...]] = {
    "msrvtt": (("LLaVA-Video-7B", 52.8, 3.24), ("w/ Houd-DPO", 56.8, 3.34), ("w/ TPO", 55.0, 3.25),
               ("w/ UnifiedReward DPO", 65.0, 3.45)),
    "msvd": (("LLaVA-Video-7B", 69.7, 3.90), ("w/ Houd-DPO", 72.8, 3.97), ("w/ TPO", 72.6, 3.93),
             ("w/ UnifiedReward DPO", 78.3, 4.01)),
    "tgif": (("LLaVA-Video-7B", 51.9, 3.37), ("w/ Houd-DPO", 54.9, 3.45), ("w/ TPO", 53.7, 3.40),
             ("w/ UnifiedReward DPO", 59.7, 3.51)),
}  # fmt: skip
PUBLISHED_SOURCE = "UnifiedReward paper, DPO comparison (32 frames, judge gpt-3.5-turbo-1106, parsed grades only)"
TITLES = {"msrvtt": "MSRVTT-QA", "msvd": "MSVD-QA", "tgif": "TGIF-QA"}


def write_report(
    args: VideoQAArguments, items: Sequence[QAItem], answers: dict[str, dict[str, Any]],
    grades: dict[str, dict[str, Any]], answer_settings: dict[str, Any], judge_settings: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    from unifiedreward.eval.metrics import videoqa_judge_summary

    graded = [grades[item.id] for item in items if item.id in grades]
    summary = videoqa_judge_summary(
        [(g["correct"], g["score"]) if g.get("status") == "valid" else None for g in graded],
        truncate_scores=args.truncate_scores,
    )
    answer_status = Counter(str(answers[item.id].get("status")) for item in items)
    grade_status = Counter(str(g.get("status")) for g in graded)
    metrics = to_jsonable(summary)
    metrics["accuracy_percent"] = None if math.isnan(summary.accuracy) else round(100 * summary.accuracy, 2)
    metrics["accuracy_invalid_as_wrong_percent"] = (
        None if math.isnan(summary.accuracy_invalid_as_wrong) else round(100 * summary.accuracy_invalid_as_wrong, 2)
    )
    results = {
        "benchmark": args.dataset,
        "title": TITLES[args.dataset],
        "settings": {
            **answer_settings,
            **judge_settings,
            "truncate_scores": args.truncate_scores,
            "limit": args.limit,
        },
        "counts": {
            "questions": len(items),
            "answered": answer_status.get("valid", 0),
            "media_errors": answer_status.get("media_error", 0),
            "policy_errors": answer_status.get("error", 0),
            "graded": len(graded),
            "grade_valid": grade_status.get("valid", 0),
            "grade_invalid": grade_status.get("invalid", 0),
            "judge_errors": grade_status.get("error", 0),
        },
        "metrics": metrics,
        "metric_definitions": {
            "accuracy": "yes / (yes + no) over the parsed grades (upstream 'Accuracy'; eval_gpt.py).",
            "mean_score": "mean judge score (0-5) over the parsed grades (upstream 'Average score'); floats kept "
            "unless --truncate_scores (upstream's int()).",
            "accuracy_invalid_as_wrong": "yes / all graded answers: unparsed grades and judge errors counted as 'no'.",
            "n_invalid": "graded answers whose grade could not be parsed (upstream dropped them silently) or whose "
            "judge request failed; questions whose video could not be read are not graded (media_errors).",
        },
        "published": [
            {"model": m, "accuracy": a, "score": s, "source": PUBLISHED_SOURCE} for m, a, s in PUBLISHED[args.dataset]
        ],
    }
    output_dir = Path(args.output_dir)
    write_json_atomic(output_dir / "results.json", to_jsonable(results))
    (output_dir / "results.md").write_text(_markdown(results), encoding="utf-8")
    if args.plot:
        _plot(results, output_dir / "results.png")
    return results


def _markdown(results: dict[str, Any]) -> str:
    s, c, m = results["settings"], results["counts"], results["metrics"]
    lines = [
        f"# {results['title']}: results",
        "",
        f"Policy `{s['model']}` ({s['policy_backend']}, {s['num_frames']} frames, max {s['max_new_tokens']} new "
        f"tokens, greedy); judge `{s['judge_model']}` at {s['judge_base_url']} with {s['system_template']} / "
        f"{s['user_template']}" + (", scores truncated as upstream" if s["truncate_scores"] else "") + ".",
        "",
        (
            f"Questions {c['questions']}: {c['answered']} answered ({c['media_errors']} unreadable videos, "
            f"{c['policy_errors']} policy errors); {c['graded']} graded: {c['grade_valid']} parsed, "
            f"{c['grade_invalid']} unparsed, {c['judge_errors']} judge errors."
        ),
        "",
        "| model | accuracy (%) | score (0-5) | accuracy, unparsed = no (%) | source |",
        "|---|---:|---:|---:|---|",
        (
            f"| **ours: {Path(str(s['model'])).name}** | {fmt(m['accuracy_percent'])} | {fmt(m['mean_score'])} | "
            f"{fmt(m['accuracy_invalid_as_wrong_percent'])} | this run |"
        ),
    ]
    lines += [f"| {p['model']} | {fmt(p['accuracy'], 1)} | {fmt(p['score'])} | – | {p['source']} |"
              for p in results["published"]]  # fmt: skip
    lines += ["", "## Metric definitions", ""]
    lines += [f"* **{k}**: {v}" for k, v in results["metric_definitions"].items()]
    return "\n".join(lines) + "\n"


def _plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    m = results["metrics"]
    names = [f"ours: {Path(str(results['settings']['model'])).name}"] + [p["model"] for p in results["published"]]
    accuracy = [m["accuracy_percent"]] + [p["accuracy"] for p in results["published"]]
    score = [m["mean_score"]] + [p["score"] for p in results["published"]]
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(names) + 1.6))
    for ax, values, label, limit in ((axes[0], accuracy, "accuracy (%)", 100), (axes[1], score, "score (0-5)", 5)):
        clean = [0.0 if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]
        bars = ax.barh(range(len(names)), clean, color=["C1"] + ["C0"] * (len(names) - 1))
        bars[0].set_edgecolor("black")
        for y, v in enumerate(values):
            ax.text(limit * 0.01, y, fmt(v), va="center", fontsize=8)
        ax.set_yticks(range(len(names)))
        ax.set_yticklabels(names if ax is axes[0] else [], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, limit)
        ax.set_xlabel(label)
    fig.suptitle(f"{results['title']} (first row: this run)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
