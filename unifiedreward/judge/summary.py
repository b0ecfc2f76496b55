"""Summaries of judge outputs: counts per status, verdict and task/mode, mean scores, grouped failure reasons.

:func:`summarize_records` is written into ``<output>.summary.json`` by ``unifiedreward judge`` (and its merge), and
:func:`format_summary` prints it; :func:`reason_group` is also how the benchmark runner groups failure reasons.
"""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["format_summary", "reason_group", "summarize_records", "summary_path"]


def summary_path(output: str | os.PathLike) -> Path:
    """``<output>.summary.json``."""
    output = Path(output)
    return output.with_name(output.name + ".summary.json")


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def reason_group(reason: str) -> str:
    """A reason without its specifics, for counting: the text before the first ``": "``, numbers replaced by ``N``
    (``"media error: cannot read media a.png: ..."`` -> ``"media error"``, ``"score 7 outside (1, 5)"`` ->
    ``"score N outside (N, N)"``)."""
    head = reason.split(": ", 1)[0].strip()
    return _NUMBER.sub("N", head)[:120] or "(no reason)"


def summarize_records(records: Iterable[Mapping[str, Any]], *, top_reasons: int = 10) -> dict[str, Any]:
    """Counts over result records: per status, per verdict, per ``task/mode`` (with the mean valid score of point
    scores), and the most frequent reasons of non-valid records (grouped by :func:`reason_group`, one full example
    each). ``invalid`` counts every record whose status is not ``"valid"`` (``statuses`` splits them, e.g.
    ``"inconsistent"`` for ``--order both``)."""
    statuses: Counter[str] = Counter()
    verdicts: Counter[str] = Counter({"first": 0, "second": 0, "tie": 0})
    groups: dict[str, dict[str, Any]] = {}
    score_lists: dict[str, list[float]] = defaultdict(list)
    reasons: Counter[str] = Counter()
    examples: dict[str, str] = {}
    total = 0
    for record in records:
        total += 1
        status = str(record.get("status"))
        statuses[status] += 1
        name = f"{record.get('task')}/{record.get('mode')}"
        group = groups.setdefault(name, {"total": 0, "valid": 0, "invalid": 0, "statuses": Counter()})
        group["total"] += 1
        group["valid" if status == "valid" else "invalid"] += 1
        group["statuses"][status] += 1
        verdict = record.get("verdict")
        if verdict is not None:
            verdicts[str(verdict)] += 1
            group.setdefault("verdicts", {"first": 0, "second": 0, "tie": 0})
            group["verdicts"][str(verdict)] = group["verdicts"].get(str(verdict), 0) + 1
        score = record.get("score")
        if status == "valid" and isinstance(score, (int, float)) and not isinstance(score, bool):
            score_lists[name].append(float(score))
        if status != "valid":
            reason = str(record.get("reason") or "(no reason)")
            key = reason_group(reason)
            reasons[key] += 1
            examples.setdefault(key, reason)
    for name, scores in score_lists.items():
        groups[name]["mean_score"] = round(sum(scores) / len(scores), 6)
    for group in groups.values():
        group["statuses"] = dict(sorted(group["statuses"].items()))
    return {
        "total": total,
        "valid": statuses.get("valid", 0),
        "invalid": total - statuses.get("valid", 0),
        "statuses": dict(sorted(statuses.items())),
        "verdicts": dict(verdicts),
        "by_task_mode": dict(sorted(groups.items())),
        "invalid_reasons": [
            {"reason": key, "count": count, "example": examples[key][:300]}
            for key, count in reasons.most_common(top_reasons)
        ],
    }


def format_summary(summary: Mapping[str, Any]) -> str:
    """A few human-readable lines of a :func:`run_judge` or :func:`merge_outputs` summary."""
    results = summary["results"]
    lines = []
    if "merged_files" in summary:
        lines.append(
            f"merged {len(summary['merged_files'])} file(s) into {summary['output']}: {summary['records']} records, "
            f"{summary['missing']} missing"
        )
    else:
        rate = f", {summary['requests_per_s']} req/s" if summary.get("requests_per_s") else ""
        lines.append(
            f"judged {summary['judged']} request(s) in {summary['wall_s']} s ({summary['judge_s']} s judging{rate}); "
            f"{summary['skipped_done']} already done"
        )
    statuses = ", ".join(f"{count} {status}" for status, count in results["statuses"].items())
    lines.append(f"{summary['output']}: {results['total']} records ({statuses or 'none'})")
    for name, group in results["by_task_mode"].items():
        detail = f"  {name}: {group['total']} ({group['valid']} valid"
        if "verdicts" in group:
            detail += ", " + ", ".join(f"{k} {v}" for k, v in group["verdicts"].items())
        if "mean_score" in group:
            detail += f", mean score {group['mean_score']:.3f}"
        lines.append(detail + ")")
    for item in results["invalid_reasons"]:
        lines.append(f"  not valid x{item['count']}: {item['reason']} (e.g. {item['example'][:100]!r})")
    lines.append(f"summary: {summary_path(summary['output'])}")
    return "\n".join(lines)
