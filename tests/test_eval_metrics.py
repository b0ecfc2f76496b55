"""Evaluation metrics on hand-computed cases: GenAI-Bench, UR tau/diff, Ties Matter vs VideoAlign, VL-RewardBench,
correlations and the video-QA judge summary. Each nontrivial expectation carries its hand computation."""

from __future__ import annotations

import itertools
import math
import random
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from unifiedreward.eval.metrics import (
    GENAIBENCH_VERDICTS,
    AccuracyResult,
    TieStats,
    accuracy_without_ties,
    average_ranks,
    genaibench_accuracy,
    majority_vote,
    pearson,
    preference_sign,
    spearman,
    tie_calibrated_accuracy,
    tie_sufficient_stats,
    ur_tau_diff,
    videoqa_judge_summary,
    vlrewardbench_accuracy,
    vlrewardbench_category,
    vlrewardbench_category_upstream_ur,
    vlrewardbench_source,
)

pytestmark = pytest.mark.unit


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


# ----------------------------------------------------------------------------------------------------- package import
def test_eval_package_is_import_light():
    code = "import sys, unifiedreward.eval; print(sorted(m for m in ('torch', 'transformers', 'scipy', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


# -------------------------------------------------------------------------------------------------------- GenAI-Bench
def test_genaibench_four_way_with_tie_predictions_and_unparsed():
    gold = ["leftvote", "rightvote", "tievote", "bothbad_vote", "tievote", "bothbad_vote", "leftvote", "rightvote"]
    pred = ["left", "left", "tie", "tie", "tie_bad", "tie_good", None, "right"]
    # correct: yes, no, yes ([[A=B]] matches tievote), yes ([[A=B]] matches bothbad), no (bad vs good tie),
    # no (good vs bad tie), no (unparsed counts wrong), yes -> 4 / 8 over ALL items
    res = genaibench_accuracy(gold, pred)
    assert res == AccuracyResult(n=8, n_correct=4, n_invalid=1, denominator=8, accuracy=0.5)
    assert res.rounded_percent() == 50.0


def test_genaibench_tie_kinds():
    # "tie" ([[A=B]]) is correct for both tie gold kinds; the specific kinds only for their own
    assert genaibench_accuracy(["tievote", "bothbad_vote"], ["tie", "tie"]).accuracy == 1.0
    assert genaibench_accuracy(["tievote", "bothbad_vote"], ["tie_good", "tie_bad"]).accuracy == 1.0
    assert genaibench_accuracy(["tievote", "bothbad_vote"], ["tie_bad", "tie_good"]).accuracy == 0.0
    # a tie prediction on a non-tie gold item is wrong
    assert genaibench_accuracy(["leftvote", "rightvote"], ["tie", "tie_good"]).accuracy == 0.0


def test_genaibench_unparsed_is_wrong_not_tie():
    res = genaibench_accuracy(["tievote", "bothbad_vote", "tievote"], [None, None, None])
    assert (res.n_correct, res.n_invalid, res.denominator, res.accuracy) == (0, 3, 3, 0.0)


def test_genaibench_rounding_full_precision_kept():
    # 2 / 3 correct: the return value keeps full precision; the leaderboard prints round(66.666..., 2) = 66.67
    res = genaibench_accuracy(["leftvote", "rightvote", "leftvote"], ["left", "right", "right"])
    assert res.accuracy == pytest.approx(2 / 3, abs=0)
    assert res.percent == pytest.approx(200 / 3)
    assert res.rounded_percent(2) == 66.67


def test_genaibench_verdict_tokens_and_validation():
    preds = [GENAIBENCH_VERDICTS.get(tok) for tok in ["[[A>>B]]", "[[B>A]]", "[[A=B]]", "[[A=B=Bad]]", "[[C]]"]]
    assert preds == ["left", "right", "tie", "tie_bad", None]
    res = genaibench_accuracy(["leftvote", "rightvote", "bothbad_vote", "bothbad_vote", "leftvote"], preds)
    assert (res.n_correct, res.n_invalid) == (4, 1)
    with pytest.raises(ValueError, match="vote_type"):
        genaibench_accuracy(["tie"], ["tie"])
    with pytest.raises(ValueError, match="prediction"):
        genaibench_accuracy(["leftvote"], ["first"])
    with pytest.raises(ValueError, match="same length"):
        genaibench_accuracy(["leftvote"], [])
    assert math.isnan(genaibench_accuracy([], []).accuracy)


# ------------------------------------------------------------------------------------------------- UR tau and diff
def test_ur_tau_diff_hand_computed():
    gold = ["leftvote", "rightvote", "tievote", "bothbad_vote", "A", "B", "same"]
    pred = ["first", "second", "tie", None, "tie", "first", "tie"]
    # tau: correct = 1, 1, 1 (tievote -> tie), 0 (unparsed), 0, 0, 1 (same -> tie) = 4 / 7; 1 invalid
    # diff: non-tie gold = items 0, 1, 4, 5 -> first ok, second ok, tie wrong, first wrong = 2 / 4; 0 invalid
    res = ur_tau_diff(gold, pred)
    assert res.tau == AccuracyResult(7, 4, 1, 7, 4 / 7)
    assert res.diff == AccuracyResult(4, 2, 0, 4, 0.5)


def test_ur_tau_diff_unparsed_never_tie():
    gold = ["tievote", "bothbad_vote", "leftvote"]
    res = ur_tau_diff(gold, [None, None, None])
    # unparsed is wrong everywhere, and the non-tie unparsed item is reported in diff.n_invalid
    assert (res.tau.n_correct, res.tau.n_invalid, res.tau.accuracy) == (0, 3, 0.0)
    assert (res.diff.n, res.diff.n_correct, res.diff.n_invalid, res.diff.accuracy) == (1, 0, 1, 0.0)
    # what upstream's video scripts do (unparsed -> tie) must be asked for explicitly, and it inflates tau
    assert ur_tau_diff(gold, ["tie", "tie", "tie"]).tau.accuracy == pytest.approx(2 / 3)


def test_ur_tau_diff_all_ties_and_no_ties():
    all_ties = ur_tau_diff(["tievote", "same", 0], ["tie", "first", "tie"])
    assert all_ties.tau.accuracy == pytest.approx(2 / 3)
    assert all_ties.diff.n == 0 and math.isnan(all_ties.diff.accuracy)
    no_ties = ur_tau_diff(["A", "B", 1, -1], ["first", "second", "second", "tie"])
    # no gold ties: tau == diff = 2 / 4
    assert no_ties.tau.accuracy == no_ties.diff.accuracy == 0.5


def test_ur_tau_diff_accepts_verdict_enum():
    from unifiedreward.protocol.templates import Verdict

    res = ur_tau_diff(["leftvote", "rightvote", "tievote"], [Verdict.FIRST, Verdict.FIRST, Verdict.TIE])
    assert res.tau.n_correct == 2


def test_preference_sign():
    assert [preference_sign(x) for x in ("A", "left", "leftvote", "first", 1)] == [1] * 5
    assert [preference_sign(x) for x in ("B", "right", "rightvote", "second", -1)] == [-1] * 5
    assert [preference_sign(x) for x in ("same", "tie", "tievote", "bothbad_vote", 0)] == [0] * 5
    for bad in (None, True, "a", "Tie", 2):
        with pytest.raises(ValueError):
            preference_sign(bad)


# --------------------------------------------------------------------------------- Ties Matter / VideoAlign accuracy
def _pairs_from_rows(human: list[float], metric: list[float]) -> tuple[list[int], list[float]]:
    """All within-row pairs (i < j) as benchmark pairs: h = sign(human_i - human_j), m = metric_i - metric_j."""
    h, m = [], []
    for i, j in itertools.combinations(range(len(human)), 2):
        h.append(_sign(human[i] - human[j]))
        m.append(metric[i] - metric[j])
    return h, m


def test_ties_matter_google_golden_no_human_ties():
    # mt-metrics-eval tau_optimization_test: metric [0,2,6,8] vs human [1,2,3,4] -> thresholds [0,2,4,6,8],
    # taus [6/6, 4/6, 3/6, 1/6, 0/6]. Pair |m|: 2,6,8,4,6,2, all concordant. eps=0: 6 C; eps=2: two pairs -> T_m
    # (4/6); eps=4: 3/6; eps=6: 1/6; eps=8: 0/6. Best eps = 0 ("no new ties").
    h, m = _pairs_from_rows([1, 2, 3, 4], [0, 2, 6, 8])
    res = tie_calibrated_accuracy(h, m)
    assert res.thresholds == (0.0, 2.0, 4.0, 6.0, 8.0)
    assert res.accuracies == pytest.approx([1, 4 / 6, 3 / 6, 1 / 6, 0])
    assert (res.accuracy, res.epsilon) == (1.0, 0.0)
    assert res.stats == TieStats(concordant=6)


def test_ties_matter_google_golden_with_human_ties():
    # human [1,1,1,4]: pairs (0,1),(0,2),(1,2) are human ties with |m| = 2, 6, 4; (0,3),(1,3),(2,3) are
    # concordant with |m| = 8, 6, 2. eps=0: 3 C -> 3/6; eps=2: +T_hm(0,1) -C(2,3) -> 3/6; eps=4: +T_hm(1,2) -> 4/6;
    # eps=6: +T_hm(0,2) -C(1,3) -> 4/6; eps=8: -C(0,3) -> 3/6. Best 4/6, smallest such eps = 4.
    h, m = _pairs_from_rows([1, 1, 1, 4], [0, 2, 6, 8])
    res = tie_calibrated_accuracy(h, m)
    assert res.thresholds == (0.0, 2.0, 4.0, 6.0, 8.0)
    assert res.accuracies == pytest.approx([3 / 6, 3 / 6, 4 / 6, 4 / 6, 3 / 6])
    assert res.accuracy == pytest.approx(4 / 6)
    assert res.epsilon == 4.0


def test_three_correct_pairs_no_ties_reference_example():
    # benchmarks.md §1.4 (a): 3 correct pairs, no ties. Ties Matter keeps the no-new-ties state -> 1.0 at eps 0.
    # VideoAlign moves the smallest-|m| pair to a tie before recording: states 2/3, 1/3, 0/3 -> 0.667.
    h, m = [1, -1, 1], [0.5, -1.0, 2.0]
    tm = tie_calibrated_accuracy(h, m)
    va = tie_calibrated_accuracy(h, m, mode="videoalign")
    assert (tm.accuracy, tm.epsilon) == (1.0, 0.0)
    assert va.accuracy == pytest.approx(2 / 3)
    assert va.epsilon == 0.5
    assert va.thresholds == (0.5, 1.0, 2.0)
    assert va.accuracies == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert va.stats == TieStats(concordant=2, ties_model=1)


def test_all_gold_ties():
    # h all 0, |m| = 0.5, 1, 2: eps=0 -> 3 T_h -> 0; eps=0.5 -> 1/3; eps=1 -> 2/3; eps=2 -> 3/3
    h, m = [0, 0, 0], [0.5, -1.0, 2.0]
    for mode in ("ties_matter", "videoalign"):
        res = tie_calibrated_accuracy(h, m, mode=mode)
        assert (res.accuracy, res.epsilon) == (1.0, 2.0)
        assert res.stats == TieStats(ties_both=3)
    assert tie_calibrated_accuracy(h, m).accuracies == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert math.isnan(accuracy_without_ties(h, m).accuracy)


def test_exact_zero_margins():
    h, m = [1, 0, -1, 0], [0.0, 0.0, -3.0, 2.0]
    # Ties Matter, eps=0: pair0 (h=1, m=0) T_m; pair1 T_hm; pair2 C; pair3 T_h -> (1 + 1) / 4 = 0.5
    #   eps=2: pair3 -> T_hm -> 3/4; eps=3: pair2 -> T_m -> 2/4. Best 0.75 at eps 2.
    tm = tie_calibrated_accuracy(h, m)
    assert tm.thresholds == (0.0, 2.0, 3.0)
    assert tm.accuracies == pytest.approx([0.5, 0.75, 0.5])
    assert (tm.accuracy, tm.epsilon) == (0.75, 2.0)
    # VideoAlign, eps=-1 start: pair0 D (m=0 is discordant), pair1 T_h, pair2 C, pair3 T_h = 1/4 (not recorded);
    #   move pair0 (0) -> 1/4; pair1 (0) -> 2/4; pair3 (2) -> 3/4; pair2 (3) -> 2/4. Best 0.75 at eps 2.
    va = tie_calibrated_accuracy(h, m, mode="videoalign")
    assert va.thresholds == (0.0, 0.0, 2.0, 3.0)
    assert va.accuracies == pytest.approx([0.25, 0.5, 0.75, 0.5])
    assert (va.accuracy, va.epsilon) == (0.75, 2.0)
    # without ties: non-tie gold pairs 0 and 2; m == 0 counts as discordant -> 1 / 2
    assert accuracy_without_ties(h, m) == AccuracyResult(2, 1, 0, 2, 0.5)
    # sufficient statistics at the two conventions for "no ties"
    assert tie_sufficient_stats(h, m, 0.0) == TieStats(concordant=1, ties_human=1, ties_model=1, ties_both=1)
    assert tie_sufficient_stats(h, m, -1.0) == TieStats(concordant=1, discordant=1, ties_human=2)


def test_videoalign_depends_on_row_order_and_overstates():
    # Two pairs with the same |m| = 1: a gold tie and a correct non-tie pair.
    # Ties Matter: eps=0 -> C only = 1/2; eps=1 -> T_hm + T_m = 1/2. Best 0.5 at eps 0, whatever the order.
    # VideoAlign, tie first: start 1/2; move tie -> 2/2 (recorded!); move the other -> 1/2  => 1.0
    # VideoAlign, tie second: move the concordant pair -> 0/2; move tie -> 1/2                  => 0.5
    # 1.0 is not achievable by any threshold: a threshold cannot split equal |m|.
    h1, m1 = [0, 1], [1.0, 1.0]
    h2, m2 = [1, 0], [1.0, 1.0]
    assert tie_calibrated_accuracy(h1, m1, mode="videoalign").accuracy == 1.0
    assert tie_calibrated_accuracy(h2, m2, mode="videoalign").accuracy == 0.5
    for h, m in ((h1, m1), (h2, m2)):
        res = tie_calibrated_accuracy(h, m)
        assert (res.accuracy, res.epsilon, res.thresholds) == (0.5, 0.0, (0.0, 1.0))
    # every achievable threshold gives at most 0.5
    assert max(tie_sufficient_stats(h1, m1, eps).accuracy for eps in (-1.0, 0.0, 0.5, 1.0, 2.0)) == 0.5


def test_duplicated_margins_are_grouped():
    # Discrete judge margins (+1 / 0 / -1): h = [1, 1, -1, 0, 0, 1], m = [1, 1, 1, 0, 1, -1]
    # eps=0: pair0 C, pair1 C, pair2 D, pair3 T_hm, pair4 T_h, pair5 D -> (2 + 1) / 6 = 0.5
    # eps=1 (all five |m| = 1 move together): T_m x4 (pairs 0,1,2,5), T_hm x2 -> 2/6
    res = tie_calibrated_accuracy([1, 1, -1, 0, 0, 1], [1, 1, 1, 0, 1, -1])
    assert res.thresholds == (0.0, 1.0)
    assert res.accuracies == pytest.approx([0.5, 2 / 6])
    assert (res.accuracy, res.epsilon) == (0.5, 0.0)


def _brute_force_ties_matter(h: list[int], m: list[float]) -> tuple[float, float]:
    """Max of tie_sufficient_stats(eps).accuracy over eps in {0} ∪ {|m_i|} (smallest eps on ties), plus a check that
    no other eps >= 0 (midpoints between candidates, beyond the largest) does better."""
    cands = sorted({0.0} | {abs(x) for x in m})
    accs = [tie_sufficient_stats(h, m, eps).accuracy for eps in cands]
    best = max(accs)
    probes = [(a + b) / 2 for a, b in itertools.pairwise(cands)] + [cands[-1] + 1.0]
    assert all(tie_sufficient_stats(h, m, eps).accuracy <= best for eps in probes)
    return best, cands[accs.index(best)]


def _brute_force_videoalign(h: list[int], m: list[float]) -> float:
    """Stable-sort pairs by |m|; for k = 1..n make the first k pairs ties (the rest untied, m == 0 discordant)."""
    order = sorted(range(len(h)), key=lambda i: abs(m[i]))
    best = -1.0
    for k in range(1, len(h) + 1):
        tied = set(order[:k])
        correct = sum((h[i] == 0) if i in tied else (h[i] * m[i] > 0) for i in range(len(h)))
        best = max(best, correct / len(h))
    return best


def test_ties_matter_row_order_invariant_and_matches_brute_force():
    rng = random.Random(0)
    for trial in range(30):
        n = rng.randint(1, 40)
        h = [rng.choice([-1, 0, 1]) for _ in range(n)]
        # discrete margins with many duplicates and exact zeros (trial parity alternates the granularity)
        m = [float(rng.choice([-2, -1, 0, 1, 2])) * (0.5 if trial % 2 else 1) for _ in range(n)]
        ref = tie_calibrated_accuracy(h, m)
        assert (ref.accuracy, ref.epsilon) == _brute_force_ties_matter(h, m)
        assert tie_calibrated_accuracy(h, m, mode="videoalign").accuracy == _brute_force_videoalign(h, m)
        for _ in range(5):
            idx = list(range(n))
            rng.shuffle(idx)
            shuffled = tie_calibrated_accuracy([h[i] for i in idx], [m[i] for i in idx])
            assert (shuffled.accuracy, shuffled.epsilon, shuffled.thresholds, shuffled.accuracies) == (
                ref.accuracy,
                ref.epsilon,
                ref.thresholds,
                ref.accuracies,
            )


def test_videoalign_changes_with_row_order_on_discrete_margins():
    # Some permutation of a discrete-margin data set changes the VideoAlign result; Ties Matter never changes.
    h = [1, 0, 0, -1, 1, 0]
    m = [1.0, 1.0, -1.0, -1.0, 1.0, 0.0]
    results = set()
    for perm in itertools.permutations(range(len(h))):
        results.add(tie_calibrated_accuracy([h[i] for i in perm], [m[i] for i in perm], mode="videoalign").accuracy)
    assert len(results) > 1
    # Ties Matter: eps=0: C = pairs 0,3,4 = 3, T_hm = pair5 -> 4/6; eps=1: T_hm = 3 -> 3/6. Best 4/6 at 0.
    tm = tie_calibrated_accuracy(h, m)
    assert (tm.accuracy, tm.epsilon) == (pytest.approx(4 / 6), 0.0)
    # VideoAlign starts at 3 C / 6; moving pair5 (|m| = 0, gold tie) gives 4/6. Inside the |m| = 1 group, if the two
    # gold ties (pairs 1, 2) come first the recorded states are 5/6 and 6/6 (the 3 C pairs still untied) -> 1.0;
    # if the three C pairs come first: 3/6, 2/6, 1/6, then 2/6, 3/6 -> best stays 4/6.
    # one tie first, then the C pairs: 5/6 -> 0.833
    assert sorted(results) == pytest.approx([4 / 6, 5 / 6, 1.0])


def test_videoalign_equals_ties_matter_minus_state_zero_on_distinct_margins():
    # With distinct nonzero |m| the only difference is the missing eps=0 state.
    rng = random.Random(1)
    for _ in range(20):
        n = rng.randint(1, 25)
        h = [rng.choice([-1, 0, 1]) for _ in range(n)]
        m = [rng.uniform(-3, 3) for _ in range(n)]
        m = [x if x != 0 else 0.1 for x in m]
        tm = tie_calibrated_accuracy(h, m)
        va = tie_calibrated_accuracy(h, m, mode="videoalign")
        assert va.accuracy == max(tm.accuracies[1:])
        assert tm.accuracy == max(tm.accuracies[0], va.accuracy)


def test_tie_calibration_validation_and_empty():
    res = tie_calibrated_accuracy([], [])
    assert res.n == 0 and math.isnan(res.accuracy) and math.isnan(res.epsilon)
    with pytest.raises(ValueError, match="gold"):
        tie_calibrated_accuracy([2], [1.0])
    with pytest.raises(ValueError, match="finite"):
        tie_calibrated_accuracy([1], [float("nan")])
    with pytest.raises(ValueError, match="mode"):
        tie_calibrated_accuracy([1], [1.0], mode="google")
    with pytest.raises(ValueError, match="same length"):
        tie_calibrated_accuracy([1, 0], [1.0])
    # numpy inputs and float gold labels are accepted
    assert tie_calibrated_accuracy(np.array([1.0, -1.0]), np.array([0.3, -0.2])).accuracy == 1.0


def test_accuracy_without_ties_hand_computed():
    # non-tie pairs: (1, 2) C, (-1, -1) C, (1, 0) D (zero margin), (-1, 3) D; the gold tie is dropped -> 2 / 4
    res = accuracy_without_ties([1, -1, 0, 1, -1], [2.0, -1.0, 5.0, 0.0, 3.0])
    assert res == AccuracyResult(n=4, n_correct=2, n_invalid=0, denominator=4, accuracy=0.5)


# ---------------------------------------------------------------------------------------------------- VL-RewardBench
def _synthetic_vlrb_ids() -> list[str]:
    """1,250 ids following the official patterns, with the official per-source counts."""
    ids = [f"hallucination_pair-{i}" for i in range(448)]  # POVID
    ids += [f"RLAIF-V-{i}" for i in range(233)]
    ids += [f"RLHF-V-Dataset_{i}" for i in range(34)] + [f"RLHF_{i}" for i in range(34)]
    ids += [f"mathverse_{i}" for i in range(167)]
    ids += [f"mmmu_validation_{i}" for i in range(151)]
    ids += [f"wildvision-battle_{i}" for i in range(173)]
    ids += ["jailbreak_1", "jailbreak_2", "LRVInstruction-000012", "LRVInstruction_7", "politics_3"]
    ids += ["politics-4", "svit_5", "svit_6", "svit-7", "jailbreak-8"]  # 10 VLFeedback items
    assert len(ids) == 1250
    return ids


def test_vlrewardbench_category_counts_official_and_upstream():
    ids = _synthetic_vlrb_ids()
    from collections import Counter

    assert Counter(map(vlrewardbench_source, ids)) == {
        "povid": 448,
        "reasoning_tasks": 318,
        "rlaif-v": 233,
        "wildvision-battle": 173,
        "rlhf-v": 68,
        "vlfeedback": 10,
    }
    assert Counter(map(vlrewardbench_category, ids)) == {"general": 183, "hallucination": 749, "reasoning": 318}
    # UR's buggy map: the 448 POVID items fall through to vlfeedback -> general
    assert Counter(map(vlrewardbench_category_upstream_ur, ids)) == {
        "general": 631,
        "hallucination": 301,
        "reasoning": 318,
    }
    assert vlrewardbench_category("hallucination_pair-10032") == "hallucination"
    assert vlrewardbench_category_upstream_ur("hallucination_pair-10032") == "general"
    assert vlrewardbench_category("something_new") == "general"  # unknown prefix -> vlfeedback, as officially


_VLRB_IDS = [
    "hallucination_pair-1",
    "hallucination_pair-2",
    "RLAIF-V-3",
    "RLHF-V_4",
    "mathverse_5",
    "mmmu_6",
    "wildvision-battle_7",
    "svit_8",
]
_VLRB_OUT = [True, True, True, None, True, False, False, None]


def test_vlrewardbench_official_unparsed_excluded():
    # official map: general = {7: F, 8: None}; hallucination = {1: T, 2: T, 3: T, 4: None}; reasoning = {5: T, 6: F}
    # exclude unparsed: general 0/1, hallucination 3/3, reasoning 1/2; overall 4/6; macro (0 + 1 + 0.5)/3 = 0.5
    res = vlrewardbench_accuracy(_VLRB_IDS, _VLRB_OUT)
    assert res.per_category["general"] == AccuracyResult(2, 0, 1, 1, 0.0)
    assert res.per_category["hallucination"] == AccuracyResult(4, 3, 1, 3, 1.0)
    assert res.per_category["reasoning"] == AccuracyResult(2, 1, 0, 2, 0.5)
    assert res.overall == AccuracyResult(8, 4, 2, 6, 4 / 6)
    assert res.macro == pytest.approx(0.5)


def test_vlrewardbench_upstream_rules():
    # unparsed wrong, official map: general 0/2, hallucination 3/4, reasoning 1/2; overall 4/8; macro 1.25/3 = 5/12
    res = vlrewardbench_accuracy(_VLRB_IDS, _VLRB_OUT, unparsed="wrong")
    assert [res.per_category[c].accuracy for c in ("general", "hallucination", "reasoning")] == [0.0, 0.75, 0.5]
    assert res.overall == AccuracyResult(8, 4, 2, 8, 0.5)
    assert res.macro == pytest.approx(5 / 12)
    # UR's scripts: buggy map + unparsed wrong. general = {1: T, 2: T, 7: F, 8: None} 2/4,
    # hallucination = {3: T, 4: None} 1/2, reasoning 1/2; overall still 4/8; macro 0.5
    ur = vlrewardbench_accuracy(_VLRB_IDS, _VLRB_OUT, category_fn=vlrewardbench_category_upstream_ur, unparsed="wrong")
    assert [ur.per_category[c].accuracy for c in ("general", "hallucination", "reasoning")] == [0.5, 0.5, 0.5]
    assert ur.overall.accuracy == 0.5
    assert ur.macro == pytest.approx(0.5)


def test_vlrewardbench_empty_category_and_validation():
    res = vlrewardbench_accuracy(["mathverse_1", "RLAIF-V-2"], [True, False])
    assert res.per_category["general"].n == 0 and math.isnan(res.per_category["general"].accuracy)
    assert math.isnan(res.macro)
    assert res.overall.accuracy == 0.5
    with pytest.raises(ValueError, match="unparsed"):
        vlrewardbench_accuracy([], [], unparsed="drop")
    with pytest.raises(ValueError, match="category_fn"):
        vlrewardbench_accuracy(["x"], [True], category_fn=lambda _: "other")


def test_majority_vote_strict_majority_no_tie_break():
    assert majority_vote([True, True, False]) is True
    assert majority_vote([False]) is False
    assert majority_vote([True, False]) is None  # 1-1: no strict majority -> undecided ("other")
    assert majority_vote([True, True, False, False]) is None
    # unparsed votes count in k: 2 of 5 is not > 5/2, although True beats False 2-1 among the parsed samples
    assert majority_vote([True, True, None, None, False]) is None
    assert majority_vote([True, None, None]) is None  # unparsed majority ("doesntMatch")
    assert majority_vote([None, True, True]) is True
    assert majority_vote(["a", "b", "a", "c", "a"]) == "a"  # 3 > 5/2
    assert majority_vote(["a", "a", "b", "b", "c"]) is None
    samples = [True, False, False, True, True]  # k = 1, 3, 5 prefixes -> True, False, True
    assert [majority_vote(samples[:k]) for k in (1, 3, 5)] == [True, False, True]
    with pytest.raises(ValueError):
        majority_vote([])


# ------------------------------------------------------------------------------------------------------ correlations
def test_average_ranks():
    assert average_ranks([10, 20, 20, 30]).tolist() == [1.0, 2.5, 2.5, 4.0]
    assert average_ranks([3, 1, 2]).tolist() == [3.0, 1.0, 2.0]
    assert average_ranks([5, 5, 5]).tolist() == [2.0, 2.0, 2.0]
    # 0.5 x3 at ranks 2,3,4 -> 3; 0.1 -> 1; 0.9 x2 at ranks 5,6 -> 5.5
    assert average_ranks([0.5, 0.9, 0.1, 0.5, 0.9, 0.5]).tolist() == [3.0, 5.5, 1.0, 3.0, 5.5, 3.0]
    assert average_ranks([]).size == 0


def _brute_pearson(x: list[float], y: list[float]) -> float:
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy)


def test_pearson_hand_computed():
    # x = [1,2,3], y = [2,4,7]: dx = [-1,0,1], dy = [-7/3,-1/3,8/3]; sxy = 5, sxx = 2, syy = 114/9
    # r = 5 / sqrt(2 * 114 / 9) = 15 / sqrt(228)
    assert pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(15 / math.sqrt(228))
    assert pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(_brute_pearson([1, 2, 3], [2, 4, 7]))
    assert pearson([1, 2, 3], [6, 4, 2]) == pytest.approx(-1.0)
    assert pearson([0.0, 1.0], [3.0, 5.0]) == pytest.approx(1.0)


def test_spearman_hand_computed_with_ties():
    # no ties: d = rank differences [-1, 1, -1, 1, 0], sum d^2 = 4 -> 1 - 6*4 / (5 * 24) = 0.8
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    # ties: ranks x = [1, 2.5, 2.5, 4, 5], y = [1, 4, 2.5, 2.5, 5]; rho = Pearson of the ranks
    x, y = [1, 2, 2, 3, 4], [1, 3, 2, 2, 5]
    expected = _brute_pearson([1, 2.5, 2.5, 4, 5], [1, 4, 2.5, 2.5, 5])
    # by hand: deviations from 3: dx = [-2,-.5,-.5,1,2], dy = [-2,1,-.5,-.5,2]; sxy = 4-.5+.25-.5+4 = 7.25,
    # sxx = syy = 4+.25+.25+1+4 = 9.5 -> 7.25 / 9.5
    assert expected == pytest.approx(7.25 / 9.5)
    assert spearman(x, y) == pytest.approx(expected)
    # monotone but nonlinear -> 1
    assert spearman([1, 2, 3, 4], [1, 8, 27, 1000]) == pytest.approx(1.0)


def test_correlations_match_scipy_when_available():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, size=50).astype(float)  # many ties
    y = x + rng.normal(size=50)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic)


@pytest.mark.parametrize("fn", [pearson, spearman])
def test_correlations_undefined_are_nan(fn):
    assert math.isnan(fn([], []))
    assert math.isnan(fn([1.0], [2.0]))  # n < 2
    assert math.isnan(fn([3, 3, 3], [1, 2, 3]))  # constant input
    assert math.isnan(fn([1, 2, 3], [0.5, 0.5, 0.5]))
    assert math.isnan(fn([1, 2, float("nan")], [1, 2, 3]))
    with pytest.raises(ValueError, match="same length"):
        fn([1, 2], [1, 2, 3])


# ------------------------------------------------------------------------------------------------------ video QA
@dataclass
class _Grade:
    correct: bool | None
    score: float | None


def test_videoqa_judge_summary_hand_computed():
    grades = [(True, 5), (False, 1), None, (None, None), _Grade(True, 4.8), _Grade(False, 2.0), _Grade(True, None)]
    # valid: yes 5, no 1, yes 4.8, no 2.0 -> 4 valid (2 yes, 2 no); invalid: None, (None, None), score missing = 3
    # accuracy = 2 / 4; invalid-as-wrong = 2 / 7; mean score = (5 + 1 + 4.8 + 2) / 4 = 3.2; truncated: 12 / 4 = 3
    res = videoqa_judge_summary(grades)
    assert (res.n, res.n_valid, res.n_invalid, res.n_yes, res.n_no) == (7, 4, 3, 2, 2)
    assert res.accuracy == 0.5
    assert res.accuracy_invalid_as_wrong == pytest.approx(2 / 7)
    assert res.mean_score == pytest.approx(3.2)
    assert videoqa_judge_summary(grades, truncate_scores=True).mean_score == 3.0


def test_videoqa_judge_summary_with_protocol_grades_and_edge_cases():
    from unifiedreward.protocol import GradeResult

    res = videoqa_judge_summary([GradeResult(True, 4.0, "raw"), GradeResult(None, None, "garbage", reason="x")])
    assert (res.n_valid, res.n_invalid, res.accuracy, res.mean_score) == (1, 1, 1.0, 4.0)
    none = videoqa_judge_summary([None, None])
    assert none.n_invalid == 2 and math.isnan(none.accuracy) and math.isnan(none.mean_score)
    assert none.accuracy_invalid_as_wrong == 0.0
    empty = videoqa_judge_summary([])
    assert empty.n == 0 and math.isnan(empty.accuracy_invalid_as_wrong)
    with pytest.raises(ValueError):
        videoqa_judge_summary([{"pred": "yes", "score": 4}])
    with pytest.raises(ValueError, match="finite"):
        videoqa_judge_summary([(True, float("inf"))])
