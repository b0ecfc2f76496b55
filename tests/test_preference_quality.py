"""Ground-truth quality harness: world candidate sets, the noisy oracle, precision / yield / calls per kept pair."""

from __future__ import annotations

import pytest

from unifiedreward.judge import RewardJudge
from unifiedreward.preference.quality import NoisyOracle, evaluate, main, world_sets

pytestmark = pytest.mark.unit


def test_world_sets_are_deterministic_and_labelled():
    sets, truth = world_sets(6, 4, seed=3)
    again, _ = world_sets(6, 4, seed=3)
    assert [[c.output for c in s.candidates] for s in sets] == [[c.output for c in s.candidates] for s in again]
    for cset in sets:
        assert cset.task == "image_understanding" and cset.image is not None and len(cset) == 4
        assert all((cset.prompt, c.output) in truth for c in cset.candidates)
    assert any(truth.values()) and not all(truth.values())
    tagged, _ = world_sets(1, 3, seed=3, tag_samples=True)
    assert [c.output[-5:] for c in tagged[0].candidates] == [" (#0)", " (#1)", " (#2)"]


def test_a_perfect_oracle_gives_precision_one_and_the_expected_costs():
    sets, truth = world_sets(8, 4, seed=1, tag_samples=True)
    oracle = NoisyOracle(truth, accuracy=0.999, position_bias=0.0, logit_noise=0.0, score_noise=0.0)
    results = evaluate(sets, truth, RewardJudge(oracle, family="qwen"))
    mixed = results["upstream"]["oracle_yield"]
    assert 0 < mixed <= 1
    for name, row in results.items():
        assert row["precision"] == 1.0, name
        assert row["kept"] <= mixed * row["sets"]
    assert results["pointwise"]["judge_calls"] == 8 * 4
    assert results["tournament"]["judge_calls"] == 8 * 4 * 3


def test_cli_prints_the_table(capsys):
    assert main(["--sets", "4", "--num_candidates", "4"]) == 0
    out = capsys.readouterr().out
    assert "noisy oracle" in out and "upstream" in out and "tournament" in out and "pointwise" in out
