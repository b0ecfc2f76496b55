"""Output records: upstream's understanding format plus evidence, the decision log, the summary."""

from __future__ import annotations

import json

import pytest

from unifiedreward.preference import (
    Candidate,
    CandidateSet,
    SiftDecision,
    decision_record,
    expand_pairs,
    failed_record,
    pairs_from_log,
    preference_record,
    summarize,
)

pytestmark = pytest.mark.unit


def _set(video: bool = False) -> CandidateSet:
    source = {"id": 7, "prompt": "What moves?", "video" if video else "image": ["f0.png", "f1.png"] if video else "a.png",
              "source_dataset": "world"}  # fmt: skip
    candidates = [Candidate("a square", seed=11), Candidate("a circle", seed=12, meta={"finish_reason": "stop"})]
    task = "video_understanding" if video else "image_understanding"
    return CandidateSet("7", task, "What moves?", candidates, source=source)


def test_kept_record_has_upstreams_keys_in_order_and_carries_extra_keys():
    decision = SiftDecision(True, "kept", 1, 0, 80.0, 20.0, 15, {"strategy": "upstream"})
    record = preference_record(_set(), decision)
    assert list(record) == ["id", "image", "prompt", "chosen", "rejected", "chosen_score", "rejected_score",
                            "source_dataset"]  # fmt: skip
    assert record["id"] == "7" and record["chosen"] == "a circle" and record["rejected"] == "a square"
    video = preference_record(_set(video=True), decision)
    assert video["video"] == ["f0.png", "f1.png"] and "image" not in video


def test_decision_log_and_pairs():
    kept = decision_record(_set(), SiftDecision(True, "kept", 1, 0, 80.0, 20.0, 15, {"strategy": "upstream"}))
    dropped = decision_record(_set(), SiftDecision(False, "not_better", 1, 0, 50.0, 50.0, 15, {"x": 1}))
    dropped["id"] = "8"
    failed = failed_record("9", "unreadable_media", "cannot read media a.png: missing")
    log = [kept, dropped, failed]
    json.dumps(log)  # JSON-serialisable
    assert kept["candidates"] == [{"output": "a square", "seed": 11},
                                  {"output": "a circle", "seed": 12, "finish_reason": "stop"}]  # fmt: skip
    assert dropped["record"] is None
    (pair,) = pairs_from_log(log)
    assert pair["chosen"] == "a circle" and pair["evidence"] == {"strategy": "upstream"}
    summary = summarize(log, seconds=2.0)
    assert summary["inputs"] == 3 and summary["kept"] == 1
    assert summary["dropped"] == {"not_better": 1, "unreadable_media": 1}
    assert summary["failed_ids"] == {"unreadable_media": ["9"]}
    assert summary["judge_calls"] == 30 and summary["judge_calls_per_kept"] == 30
    assert summary["candidates"] == 4 and summary["candidates_per_second"] == 2.0
    assert summary["yield"] == pytest.approx(1 / 3)


def test_expand_pairs_gives_every_scored_pair_with_its_scores():
    candidates = [Candidate(f"v{i}.mp4", seed=i) for i in range(3)]
    cset = CandidateSet("g1", "video_generation", "a red circle", candidates, source={"id": "g1", "fps": 8})
    evidence = {"strategy": "pointwise", "scores": [4.0, 9.0, 6.0], "pairs": [[1, 0], [1, 2], [2, 0]]}
    line = decision_record(cset, SiftDecision(True, "kept", 1, 0, 9.0, 4.0, 3, evidence))
    pairs = expand_pairs(line)
    assert [(p["chosen"], p["rejected"], p["chosen_score"], p["rejected_score"]) for p in pairs] == [
        ("v1.mp4", "v0.mp4", 9.0, 4.0), ("v1.mp4", "v2.mp4", 9.0, 6.0), ("v2.mp4", "v0.mp4", 6.0, 4.0)]  # fmt: skip
    assert pairs[0] == line["record"]  # the first is the best-vs-worst record, every other key kept
    assert all(p["id"] == "g1" and p["prompt"] == "a red circle" and p["fps"] == 8 for p in pairs)
    assert expand_pairs({**line, "kept": False}) == []
    tournament = decision_record(cset, SiftDecision(True, "kept", 1, 0, 0.9, 0.1, 6, {"strategy": "tournament"}))
    with pytest.raises(ValueError, match="record g1: .*pointwise"):
        expand_pairs(tournament)
