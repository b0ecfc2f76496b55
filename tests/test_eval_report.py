"""The benchmark report (``results.md``): table cells of metrics that were not computed, undefined or present, on
GenAI-Bench records scored from generated verdicts (no margins) and from answer probabilities (margins)."""

from __future__ import annotations

import math

import pytest

from unifiedreward.eval.benchmarks import get_benchmark
from unifiedreward.eval.report import NOT_COMPUTED, fmt, format_results, metric_cell, render_markdown
from unifiedreward.eval.scoring import METRIC_DEFINITIONS, compute_metrics

pytestmark = pytest.mark.unit

MARGIN_GROUP = "Tie-calibrated accuracy from answer probabilities"

# gold (vote_type), verdict, P(first), P(second): margins P(first) - P(second) = [.6, -.4, 0, -.2]
ROWS = [
    ("leftvote", "first", 0.7, 0.1),
    ("rightvote", "second", 0.2, 0.6),
    ("tievote", "tie", 0.3, 0.3),
    ("leftvote", "second", 0.3, 0.5),
]


def _records(scoring: str) -> list[dict]:
    records = []
    for k, (gold, verdict, first, second) in enumerate(ROWS):
        record = {"id": str(k), "gold": gold, "gold_pref": None, "status": "valid", "verdict": verdict,
                  "swapped": False, "reason": None}  # fmt: skip
        if scoring == "probabilities":
            record["probabilities"] = {"first": first, "second": second, "tie": 1 - first - second}
            record["margin"] = first - second
        else:  # the runner's margin from a generated verdict: +1 / -1 / 0
            record["margin"] = {"first": 1.0, "second": -1.0, "tie": 0.0}[verdict]
        records.append(record)
    return records


def _results(scoring: str) -> tuple[object, dict]:
    bench = get_benchmark("genai_bench_image")
    scored = compute_metrics(bench, _records(scoring))
    settings = {"model": "/ckpt/tiny", "backend": "transformers", "family": "qwen", "version": "v1",
                "template": "T-IG-PAIR-QWEN", "order": "as_given", "seed": 0, "scoring": scoring, "split": "test_v1",
                "limit": None}  # fmt: skip
    results = {"title": bench.title, "settings": settings, "counts": scored["counts"], "metrics": scored["metrics"],
               "headline": scored["headline"], "metric_definitions": METRIC_DEFINITIONS[bench.metric_set]}  # fmt: skip
    return bench, results


def _our_row(markdown: str, title: str) -> list[str]:
    """The cells of our row in the table under the heading ``## <title>...``."""
    section = markdown.split(f"## {title}", 1)[1]
    row = next(line for line in section.splitlines() if line.startswith("| **ours"))
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_fmt_and_metric_cell_tell_not_computed_from_undefined():
    assert fmt(58.333) == "58.33" and fmt(58.35, 1) == "58.4"
    assert fmt(None) == fmt(math.nan) == "–"
    headline = {"tau": 50.0, "without_ties": None}
    assert metric_cell(headline, "tau") == "50.00"
    assert metric_cell(headline, "without_ties") == "–"  # computed, empty denominator
    assert metric_cell(headline, "with_ties") == NOT_COMPUTED == "n/a"  # not computed in this run


def test_genai_report_without_margins_never_prints_none():
    bench, results = _results("generate")
    headline = results["headline"]
    assert "without_ties" not in headline and "with_ties" not in headline
    markdown = render_markdown(bench, results)
    assert "None" not in markdown
    assert MARGIN_GROUP not in markdown  # the margin table is dropped as a whole
    # tau: items 0, 1, 2 right of 4; official 4-way the same; diff: non-tie gold 0, 1, 3 -> 2 of 3
    assert _our_row(markdown, "UnifiedReward paper metrics")[1:3] == ["75.00", "66.67"]
    assert "None" not in format_results(results)
    # a consumer's own GenAI-Bench table (e.g. the demo's "w/o ties (margins)" column) gets "n/a", not None
    copied = {k: v for k, v in headline.items() if k in ("tau", "without_ties", "official_4way")}
    assert [metric_cell(copied, k) for k in ("tau", "without_ties", "official_4way")] == ["75.00", "n/a", "75.00"]


def test_genai_report_with_margins_fills_the_without_ties_column():
    bench, results = _results("probabilities")
    # without ties: non-tie gold 0, 1, 3 with margins .6, -.4, -.2 -> C = 2 (items 0, 1) of 3
    assert results["headline"]["without_ties"] == pytest.approx(66.67, abs=0.01)
    markdown = render_markdown(bench, results)
    assert "None" not in markdown
    cells = _our_row(markdown, MARGIN_GROUP)
    assert cells[3] == "66.67"  # model | w/ ties (Ties Matter) | w/ ties (VideoAlign) | w/o ties | source
    # a metric of a shown group that this run did not compute reads "n/a" (not "–", which means undefined)
    del results["headline"]["without_ties"]
    assert _our_row(render_markdown(bench, results), MARGIN_GROUP)[3] == "n/a"
