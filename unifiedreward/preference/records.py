"""Output records of preference construction: the per-input decision log, the preference pairs, the summary.

Two files per run:

* the **decision log** (``<output>.decisions.jsonl``, written incrementally by the job engine, the resume key): one
  line per input record, kept or not::

      {"id": "17", "kept": true, "reason": "kept", "judge_calls": 15,
       "candidates": [{"output": "...", "seed": 1234}, ...],
       "record": {"id": "17", "image": "a.jpg", "prompt": "...", "chosen": "...", ...} | null,
       "evidence": {...}, "error": "..." (inputs that could not be processed)}

* the **preference pairs** (``<output>``; a JSON list for ``.json``, else JSONL), built from the log: the kept
  inputs, in input order, in upstream's understanding format (protocol reference §4.1) plus ``evidence``::

      {"id", "image" | "video", "prompt", "chosen", "rejected", "chosen_score", "rejected_score", <other input keys>,
       "evidence"}

  ``image`` / ``video`` is the input's media reference exactly as given (a path, a frame folder or a list of frame
  files), so the DPO loader resolves it against the same media folder. Generation sets (DiffusionDPO / VideoDPO)
  get ``{"id", "prompt", "chosen", "rejected", "chosen_score", "rejected_score", ..., "evidence"}`` with media
  paths as ``chosen`` / ``rejected``; their pipelines map that onto their own formats.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from unifiedreward.preference.candidates import CandidateSet
from unifiedreward.preference.strategies import SiftDecision

MEDIA_KEYS = ("image", "video")
_OWN_KEYS = ("id", "prompt", "chosen", "rejected", "chosen_score", "rejected_score", "evidence")


def preference_record(candidate_set: CandidateSet, decision: SiftDecision) -> dict[str, Any] | None:
    """The preference pair of a kept decision (module docstring), ``None`` when the set was dropped."""
    if not decision.kept:
        return None
    source = dict(candidate_set.source)
    record: dict[str, Any] = {"id": candidate_set.id}
    for key in MEDIA_KEYS:
        if key in source:
            record[key] = source[key]
    record.update(
        prompt=candidate_set.prompt,
        chosen=candidate_set.candidates[decision.chosen].output,
        rejected=candidate_set.candidates[decision.rejected].output,
        chosen_score=decision.chosen_score,
        rejected_score=decision.rejected_score,
    )
    for key, value in source.items():
        if key not in record and key not in _OWN_KEYS:
            record[key] = value
    return record


def decision_record(candidate_set: CandidateSet, decision: SiftDecision) -> dict[str, Any]:
    """The decision-log line of one sifted set."""
    return {
        "id": candidate_set.id,
        "kept": decision.kept,
        "reason": decision.reason,
        "judge_calls": decision.judge_calls,
        "candidates": [{"output": c.output, "seed": c.seed, **dict(c.meta)} for c in candidate_set.candidates],
        "record": preference_record(candidate_set, decision),
        "evidence": decision.evidence,
    }


def failed_record(record_id: str, reason: str, error: str) -> dict[str, Any]:
    """The decision-log line of an input that could not be sifted (``reason`` e.g. ``"unreadable_media"``)."""
    return {"id": record_id, "kept": False, "reason": reason, "judge_calls": 0, "candidates": [], "record": None,
            "evidence": {}, "error": error}  # fmt: skip


def pairs_from_log(log: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The preference pairs of the kept lines of a decision log, in log order, each with its ``evidence``."""
    return [{**line["record"], "evidence": line["evidence"]} for line in log if line.get("kept")]


def expand_pairs(line: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every pair of a kept ``pointwise`` decision-log line: its ``record`` with ``chosen`` / ``rejected`` and their
    scores replaced by each ``[better, worse]`` of ``evidence["pairs"]`` (largest score difference first; the first
    is the best-vs-worst pair of ``record`` unless scores tie). A dropped line gives ``[]``.

    Raises:
        ValueError: the line was not sifted by ``pointwise`` (no per-candidate scores to pair).
    """
    if not line.get("kept"):
        return []
    evidence = line["evidence"]
    if "pairs" not in evidence:
        raise ValueError(
            f"record {line['id']}: every-pair output needs a pointwise decision log with evidence "
            f"'pairs' (strategy {evidence.get('strategy')!r}; re-sift with --strategy pointwise)"
        )
    outputs, scores = [c["output"] for c in line["candidates"]], evidence["scores"]
    return [{**line["record"], "chosen": outputs[better], "rejected": outputs[worse], "chosen_score": scores[better],
             "rejected_score": scores[worse]} for better, worse in evidence["pairs"]]  # fmt: skip


def summarize(log: Sequence[Mapping[str, Any]], *, seconds: float | None = None) -> dict[str, Any]:
    """Counts over a decision log.

    Returns:
        ``{"inputs", "kept", "dropped": {reason: count}, "failed_ids": {reason: [ids]}, "judge_calls",
        "judge_calls_per_kept", "candidates", "yield", "seconds", "candidates_per_second"}``; ``failed_ids`` lists
        the inputs that were not sifted at all (unreadable media, policy errors), ``yield`` = kept / inputs.
    """
    kept = sum(1 for line in log if line.get("kept"))
    dropped = Counter(line["reason"] for line in log if not line.get("kept"))
    failed: dict[str, list[str]] = {}
    for line in log:
        if "error" in line:
            failed.setdefault(line["reason"], []).append(line["id"])
    calls = sum(int(line.get("judge_calls", 0)) for line in log)
    candidates = sum(len(line.get("candidates", [])) for line in log)
    return {
        "inputs": len(log),
        "kept": kept,
        "dropped": dict(sorted(dropped.items())),
        "failed_ids": failed,
        "judge_calls": calls,
        "judge_calls_per_kept": calls / kept if kept else None,
        "candidates": candidates,
        "yield": kept / len(log) if log else None,
        "seconds": seconds,
        "candidates_per_second": candidates / seconds if seconds else None,
    }
