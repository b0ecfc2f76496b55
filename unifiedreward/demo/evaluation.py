"""The demo's evaluation: every held-out file judged with the real runners, summarised per task.

Pair rank: :func:`unifiedreward.eval.runner.run_benchmark` (the code of ``benchmark_evaluation/eval_*.py``);
point score: :func:`unifiedreward.judge.cli.run_judge` (``unifiedreward judge``), then Spearman of the expected score
against the truth. Each run leaves the runner's own ``predictions.jsonl`` / ``results.json`` under ``eval/``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unifiedreward.demo.args import DemoArguments
from unifiedreward.demo.console import say
from unifiedreward.demo.report import PAIR_BENCHMARKS, TASK_LABELS

__all__ = ["evaluate", "pair_summary"]


def evaluate(args: DemoArguments, model_path: Path, heldout: Any, out: Path, label: str) -> dict[str, Any]:
    """Judge every held-out file with the model at ``model_path``; returns per-task metrics.

    Pair rank: :func:`unifiedreward.eval.runner.run_benchmark` (the code of ``benchmark_evaluation/eval_*.py``)
    with ``--scoring probabilities --order random``. Point score: :func:`unifiedreward.judge.cli.run_judge`
    (``unifiedreward judge --scoring probabilities``), then Spearman of the expected score against the truth.
    """
    from unifiedreward.eval.arguments import BackendArguments, EvalArguments
    from unifiedreward.eval.metrics import spearman
    from unifiedreward.eval.runner import run_benchmark
    from unifiedreward.io.files import read_jsonl
    from unifiedreward.judge import TransformersBackend
    from unifiedreward.judge.arguments import JudgeArguments
    from unifiedreward.judge.cli import run_judge
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
        say(f"{label}: {key} ({TASK_LABELS[task]}, pair rank)")
        results = run_benchmark(bench, eval_args, backend_args, backend=backend)
        per_task[task] = pair_summary(task, results, out / key / "predictions.jsonl", Path(data))
    say(f"{label}: point scores (all tasks)")
    judged = out / "point_score" / "judged.jsonl"
    judged.parent.mkdir(parents=True, exist_ok=True)
    judge_args = JudgeArguments(input=str(heldout.point_score), output=str(judged), scoring="probabilities",
                                num_frames=args.num_frames, max_new_tokens=args.max_new_tokens,
                                batch_size=args.eval_batch_size,
                                overwrite=True, num_workers=1)  # fmt: skip
    run_judge(judge_args, backend=backend)
    records = read_jsonl(judged)
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


def pair_summary(task: str, results: Mapping[str, Any], predictions: Path, data: Path) -> dict[str, Any]:
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


