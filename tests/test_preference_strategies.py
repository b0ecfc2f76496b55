"""Sifting strategies on a scripted judge: chosen / rejected / kept decisions and judge-call counts.

The scripted backends answer from the candidate labels they see in the rendered prompt (``<<a>>`` in an answer text,
or a candidate image's colour), so the real :class:`RewardJudge` renders, parses and combines orders, and every
test knows the outcome in advance.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from PIL import Image

from unifiedreward.judge import Generation, RewardJudge
from unifiedreward.preference import (
    Candidate,
    CandidateSet,
    PointwiseConfig,
    TournamentConfig,
    UpstreamConfig,
    fit_bradley_terry,
    pointwise,
    sift,
    tournament,
    upstream,
)
from unifiedreward.preference.bradley_terry import sigmoid

pytestmark = pytest.mark.unit

_LABEL = re.compile(r"<<(\w+)>>")
_COLOURS = {"r": (255, 0, 0), "g": (0, 255, 0), "b": (0, 0, 255), "k": (0, 0, 0)}


def _labels(prompt) -> list[str]:
    labels = _LABEL.findall(prompt.text())
    if labels:
        return labels
    by_colour = {rgb: name for name, rgb in _COLOURS.items()}
    return [by_colour[image.getpixel((0, 0))] for image in prompt.images]


class ScriptedBackend:
    """Generates answers by rule: ``pair(first_label, second_label)`` and ``point(label)`` return answer texts."""

    def __init__(self, pair=None, point=None):
        self.pair = pair
        self.point = point
        self.prompts: list = []

    def generate(self, prompts, config):
        out = []
        for prompt in prompts:
            self.prompts.append(prompt)
            labels = _labels(prompt)
            text = self.pair(*labels) if len(labels) == 2 else self.point(labels[0])
            out.append(Generation(text))
        return out


class ScoringBackend(ScriptedBackend):
    """Also scores answers from logits: ``probs(first, second)`` gives the answer-sentence probabilities of a pair;
    ``score_probs(label)`` the distribution over the allowed point-score values."""

    def __init__(self, pair=None, point=None, probs=None, score_probs=None):
        super().__init__(pair, point)
        self.probs = probs
        self.score_probs = score_probs
        self.scored: list = []
        self.expected_passes = 0

    def score(self, prompts, candidates, *, assistant_prefixes=None):
        rows = []
        for prompt in prompts:
            labels = _labels(prompt)
            if assistant_prefixes is None:
                self.scored.append(prompt)
                rows.append(self.probs(*labels)[: len(candidates)])
            else:
                self.expected_passes += 1
                rows.append(self.score_probs(labels[0], len(candidates)))
        return torch.log(torch.tensor(rows, dtype=torch.float64))


def _qa_set(labels, *, seeds=None, set_id="s0") -> CandidateSet:
    seeds = seeds or list(range(100, 100 + len(labels)))
    candidates = [Candidate(f"answer <<{x}>>", seed=s) for x, s in zip(labels, seeds, strict=True)]
    image = Image.new("RGB", (8, 8), (9, 9, 9))
    return CandidateSet(set_id, "image_understanding", "What is shown?", candidates, image=image,
                        source={"id": set_id, "image": "a.png", "prompt": "What is shown?"})  # fmt: skip


def _image_set(colours) -> CandidateSet:
    candidates = [Candidate(f"{c}.png", media=Image.new("RGB", (8, 8), _COLOURS[c]), seed=i) for i, c in
                  enumerate(colours)]  # fmt: skip
    return CandidateSet("g0", "image_generation", "a red square", candidates)


def _by_quality(quality):
    """Pair answers for the Qwen answer-pair template by quality; point answers = quality * 10 (0-100 scale)."""

    def pair(first, second):
        return "Answer 1 is better" if quality[first] > quality[second] else "Answer 2 is better"

    def point(label):
        return f"Final Score: {quality[label] * 10}"

    return pair, point


def _judge(backend, **kwargs) -> RewardJudge:
    return RewardJudge(backend, family=kwargs.pop("family", "qwen"), **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# upstream


def test_upstream_best_winner_vs_worst_loser_and_call_count():
    quality = {"a": 3, "b": 5, "c": 9, "d": 1, "e": 4, "f": 2}
    backend = ScriptedBackend(*_by_quality(quality))
    decision = upstream(_qa_set("abcdef"), _judge(backend))
    # rounds (a,b) -> b, (c,d) -> c, (e,f) -> e; winners b=50 c=90 e=40; losers a=30 d=10 f=20
    assert (decision.chosen, decision.rejected) == (2, 3)
    assert (decision.chosen_score, decision.rejected_score) == (90.0, 10.0)
    assert decision.kept and decision.reason == "kept"
    assert decision.judge_calls == 3 + 6 == len(backend.prompts)
    ev = decision.evidence
    assert [r["winner"] for r in ev["rounds"]] == [1, 2, 4]
    assert ev["seeds"] == [100, 101, 102, 103, 104, 105]
    assert ev["templates"] == {"pair": "T-IU-PAIR-QWEN", "point": "T-IU-POINT-QWEN"}
    assert ev["invalid"] == ev["ties"] == ev["inconsistent"] == ev["dropped_rounds"] == 0


def test_upstream_unparsed_verdict_drops_the_round_instead_of_making_answer_1_win():
    quality = {"a": 10, "b": 1, "c": 6, "d": 2, "e": 5, "f": 3}
    pair, point = _by_quality(quality)
    backend = ScriptedBackend(lambda x, y: "I cannot tell." if x == "a" else pair(x, y), point)
    decision = upstream(_qa_set("abcdef"), _judge(backend))
    # upstream would have made "a" (score 100) the winner of round 1 and chosen it; here round 1 is dropped
    assert decision.chosen == 2 and decision.rejected == 3  # c=60 beats e=50; losers d=20, f=30
    assert decision.kept
    assert decision.evidence["invalid"] == 1 and decision.evidence["dropped_rounds"] == 1
    assert decision.evidence["rounds"][0]["status"] == "invalid"
    assert decision.judge_calls == 3 + 4 == len(backend.prompts)


def test_upstream_compares_scores_as_numbers_and_takes_the_first_maximum():
    # winners score 9, 10, 10 (as strings "9" > "10"); losers 5, 7, 5
    scores = {"a": 9, "b": 5, "c": 10, "d": 7, "e": 10, "f": 5}
    backend = ScriptedBackend(lambda x, y: "Answer 1 is better", lambda x: f"Final Score: {scores[x]}")
    decision = upstream(_qa_set("abcdef"), _judge(backend))
    assert decision.chosen == 2  # the first of the two 10s, not the lexicographic maximum "9"
    assert decision.rejected == 1  # the first of the two 5s
    assert (decision.chosen_score, decision.rejected_score) == (10.0, 5.0) and decision.kept


def test_upstream_equal_scores_are_not_kept():
    backend = ScriptedBackend(lambda x, y: "Answer 2 is better", lambda x: "Final Score: 70")
    decision = upstream(_qa_set("abcd"), _judge(backend))
    assert not decision.kept and decision.reason == "not_better"
    assert (decision.chosen, decision.rejected) == (1, 0)
    assert decision.chosen_score == decision.rejected_score == 70.0
    assert decision.judge_calls == 2 + 4


def test_upstream_no_decisive_round_costs_only_the_rounds():
    backend = ScriptedBackend(lambda x, y: "Both are fine.", lambda x: "Final Score: 50")
    decision = upstream(_qa_set("abcdefghij"), _judge(backend))
    assert not decision.kept and decision.reason == "no_decisive_round"
    assert decision.chosen is None and decision.judge_calls == 5 == len(backend.prompts)
    assert decision.evidence["invalid"] == 5 and decision.evidence["dropped_rounds"] == 5


def test_upstream_both_orders_drops_inconsistent_rounds():
    biased = ScriptedBackend(lambda x, y: "Answer 1 is better", lambda x: "Final Score: 50")
    decision = upstream(_qa_set("abcdef"), _judge(biased), UpstreamConfig(order="both"))
    assert decision.reason == "no_decisive_round" and decision.evidence["inconsistent"] == 3
    assert decision.judge_calls == 6 == len(biased.prompts)


def test_upstream_invalid_point_scores_are_left_out_not_zero():
    quality = {"a": 9, "b": 1, "c": 8, "d": 2}
    pair, _ = _by_quality(quality)
    backend = ScriptedBackend(pair, lambda x: "Final Score: 80" if x in "ac" else "no idea")
    decision = upstream(_qa_set("abcd"), _judge(backend))
    assert decision.reason == "no_valid_score" and decision.evidence["invalid"] == 2
    assert decision.judge_calls == 2 + 4


def test_upstream_tie_rounds_dropped_on_generation_sets():
    # image generation: r beats everything, g and b tie; point scores r=5, g=3, b=3, k=1 (1-5 scale)
    rank = {"r": 3, "g": 2, "b": 2, "k": 1}

    def pair(x, y):
        if rank[x] == rank[y]:
            return "Both images are equally good."
        return "Image 1 is better." if rank[x] > rank[y] else "Image 2 is better."

    points = {"r": 5, "g": 3, "b": 3, "k": 1}
    backend = ScriptedBackend(pair, lambda x: f"Final Score: {points[x]}")
    decision = upstream(_image_set("gbrk"), _judge(backend))
    assert decision.evidence["ties"] == 1 and decision.evidence["rounds"][0]["status"] == "tie"
    assert (decision.chosen, decision.rejected) == (2, 3) and decision.kept
    assert decision.judge_calls == 2 + 2


def test_upstream_llava_judge_uses_the_pipeline_templates():
    quality = {"a": 2, "b": 7}
    backend = ScriptedBackend(
        lambda x, y: f"Overall Judgment: Answer {1 if quality[x] > quality[y] else 2} is better than Answer "
        f"{2 if quality[x] > quality[y] else 1}.",
        lambda x: f"Final Score: {quality[x] * 10}",
    )
    decision = upstream(_qa_set("ab"), _judge(backend, family="llava"))
    assert decision.evidence["templates"] == {"pair": "T-PREF-IU-PAIR", "point": "T-IU-POINT-LLAVA"}
    assert (decision.chosen, decision.rejected, decision.kept) == (1, 0, True)


def test_too_few_candidates_costs_nothing():
    backend = ScriptedBackend(lambda x, y: "Answer 1 is better", lambda x: "Final Score: 1")
    for strategy in ("upstream", "tournament", "pointwise"):
        (decision,) = sift([_qa_set("a")], _judge(backend), strategy)
        assert decision.reason == "too_few_candidates" and decision.judge_calls == 0
    assert backend.prompts == []


# ----------------------------------------------------------------------------------------------------------------
# tournament


def test_tournament_generated_verdicts_both_orders():
    quality = {"a": 2, "b": 9, "c": 5, "d": 1}
    backend = ScriptedBackend(*_by_quality(quality))  # no score(): verdicts are generated
    decision = tournament(_qa_set("abcd"), _judge(backend))
    assert decision.judge_calls == 4 * 3 == len(backend.prompts)  # 6 pairs x 2 orders
    assert (decision.chosen, decision.rejected) == (1, 3) and decision.kept
    # hard wins: b 3-0, c 2-1, a 1-2, d 0-3 -> strengths in that order
    wins = [[0, 0, 0, 1], [1, 0, 1, 1], [1, 0, 0, 1], [0, 0, 0, 0]]
    expected = fit_bradley_terry(wins, prior=0.1)
    assert decision.evidence["strengths"] == [round(s, 6) for s in expected]
    assert decision.evidence["probability"] == pytest.approx(sigmoid(expected[1] - expected[3]), abs=1e-6)
    assert decision.evidence["scoring"] == "generate"


def test_tournament_position_bias_gives_no_valid_comparison():
    biased = ScriptedBackend(lambda x, y: "Answer 1 is better", lambda x: "Final Score: 1")
    decision = tournament(_qa_set("abc"), _judge(biased))
    assert decision.reason == "no_valid_comparison" and decision.evidence["inconsistent"] == 3
    assert decision.judge_calls == 6 == len(biased.prompts)


def test_tournament_probabilities_average_out_position_bias():
    strength = {"a": 1.0, "b": 4.0, "c": 2.0}
    bias = 0.5  # P(shown first wins) = (1 - bias) * P_true + bias: argmax always "Answer 1" -> inconsistent

    def probs(first, second):
        p = strength[first] / (strength[first] + strength[second])
        shown_first = (1 - bias) * p + bias
        return [shown_first, 1 - shown_first]

    backend = ScoringBackend(probs=probs)
    decision = tournament(_qa_set("abc"), _judge(backend))
    assert backend.prompts == [] and len(backend.scored) == 6 == decision.judge_calls
    assert decision.evidence["scoring"] == "probabilities"
    # averaged over orders: P(i beats j) = (1 - bias) * p_ij + bias / 2
    soft = [[0.0] * 3 for _ in range(3)]
    for i, x in enumerate("abc"):
        for j, y in enumerate("abc"):
            if i != j:
                soft[i][j] = (1 - bias) * strength[x] / (strength[x] + strength[y]) + bias / 2
    expected = fit_bradley_terry(soft, prior=0.1)
    assert decision.evidence["strengths"] == pytest.approx(expected, abs=1e-6)
    assert (decision.chosen, decision.rejected) == (1, 0)
    assert decision.evidence["inconsistent"] == 3  # argmax verdicts disagreed, the probabilities still count
    p = sigmoid(expected[1] - expected[0])
    assert decision.kept == (p > TournamentConfig().min_probability)
    strict = tournament(_qa_set("abc"), _judge(backend), TournamentConfig(min_probability=p))
    assert not strict.kept and strict.reason == "below_margin"


def test_tournament_equal_candidates_below_margin():
    backend = ScoringBackend(probs=lambda x, y: [0.5, 0.5])
    decision = tournament(_qa_set("abcd"), _judge(backend))
    assert decision.reason == "below_margin" and decision.chosen == decision.rejected == 0
    assert decision.evidence["probability"] == 0.5


def test_tournament_ties_count_half_and_win_rate_fit():
    rank = {"r": 3, "g": 2, "b": 2}

    def pair(x, y):
        if rank[x] == rank[y]:
            return "Both images are equally good."
        return "Image 1 is better." if rank[x] > rank[y] else "Image 2 is better."

    backend = ScriptedBackend(pair, None)
    config = TournamentConfig(fit="win_rate", scoring="generate", min_probability=0.9)
    decision = tournament(_image_set("rgb"), _judge(backend), config)
    # r: 2 wins of 2; g: 0 + 0.5 of 2; b: 0.5 of 2 -> strengths 1, 0.25, 0.25
    assert decision.evidence["strengths"] == [1.0, 0.25, 0.25] and decision.evidence["ties"] == 1
    assert (decision.chosen, decision.rejected) == (0, 1)
    assert decision.evidence["probability"] == 1.0 and decision.kept  # head-to-head r vs g
    assert decision.judge_calls == 6


# ----------------------------------------------------------------------------------------------------------------
# pointwise


def _value_dist(expected: dict[str, float]):
    """A distribution over 0..100 that puts its mass on the two integers around ``expected[label]``."""

    def dist(label, size):
        value = expected[label]
        low = math.floor(value)
        frac = value - low
        row = [1e-12] * size
        row[low] += 1 - frac
        row[min(low + 1, size - 1)] += frac
        return row

    return dist


def test_pointwise_prefers_expected_scores():
    expected = {"a": 70.25, "b": 70.75, "c": 40.5}
    backend = ScoringBackend(point=lambda x: "Fine.\nFinal Score: 70", score_probs=_value_dist(expected))
    decision = pointwise(_qa_set("abc"), _judge(backend))
    assert decision.judge_calls == 3 == len(backend.prompts) and backend.expected_passes == 3
    assert (decision.chosen, decision.rejected) == (1, 2) and decision.kept
    assert decision.chosen_score == pytest.approx(70.75, abs=1e-6)
    assert decision.evidence["margin"] == pytest.approx((70.75 - 40.5) / 100, abs=1e-6)
    parsed = pointwise(_qa_set("abc"), _judge(backend), PointwiseConfig(use_expected_score=False))
    assert parsed.reason == "below_margin" and parsed.chosen == parsed.rejected == 0  # all parse as 70


def test_pointwise_margin_is_a_fraction_of_the_score_range():
    scores = {"a": 50, "b": 60}
    backend = ScriptedBackend(None, lambda x: f"Final Score: {scores[x]}")
    judge = _judge(backend)
    assert pointwise(_qa_set("ab"), judge, PointwiseConfig(min_margin=0.05)).kept
    tight = pointwise(_qa_set("ab"), judge, PointwiseConfig(min_margin=0.1))  # 10 / 100 is not above 0.1
    assert not tight.kept and tight.reason == "below_margin" and tight.evidence["margin"] == 0.1
    assert tight.judge_calls == 2


def test_pointwise_evidence_lists_every_pair_that_clears_the_margin():
    scores = {"a": 50, "b": 90, "c": 30, "d": 50, "e": "no score"}
    judge = _judge(ScriptedBackend(None, lambda x: f"Final Score: {scores[x]}"))
    decision = pointwise(_qa_set("abcde"), judge)
    assert (decision.chosen, decision.rejected) == (1, 2)
    # by decreasing difference (60, 40, 40, 20, 20), ties by index; the equal a/d and the invalid e give no pair
    assert decision.evidence["pairs"] == [[1, 2], [1, 0], [1, 3], [0, 2], [3, 2]]
    tight = pointwise(_qa_set("abcde"), judge, PointwiseConfig(min_margin=0.2))  # 20 / 100 is not above 0.2
    assert tight.evidence["pairs"] == [[1, 2], [1, 0], [1, 3]]


def test_pointwise_invalid_scores_excluded():
    scores = {"a": "Final Score: 90", "b": "no score here", "c": "Final Score: 30", "d": "Final Score: 101"}
    decision = pointwise(_qa_set("abcd"), _judge(ScriptedBackend(None, scores.get)))
    assert (decision.chosen, decision.rejected) == (0, 2) and decision.kept
    assert decision.evidence["invalid"] == 2 and decision.evidence["scores"] == [90.0, None, 30.0, None]
    only_one = pointwise(_qa_set("ab"), _judge(ScriptedBackend(None, scores.get)))
    assert only_one.reason == "no_valid_score"


def test_identical_chosen_and_rejected_text_is_dropped():
    queue = iter(["Final Score: 80", "Final Score: 20"])
    backend = ScriptedBackend(None, lambda x: next(queue))
    decision = pointwise(_qa_set("aa"), _judge(backend))
    assert (decision.chosen, decision.rejected) == (0, 1)
    assert not decision.kept and decision.reason == "identical_candidates"


def test_sift_batches_sets_and_keeps_their_order():
    quality = {"a": 1, "b": 2, "c": 3, "d": 4}
    backend = ScriptedBackend(*_by_quality(quality))
    sets = [_qa_set("ab", set_id="x"), _qa_set("dc", set_id="y")]
    decisions = sift(sets, _judge(backend), "upstream")
    assert [(d.chosen, d.rejected) for d in decisions] == [(1, 0), (0, 1)]
    assert sum(d.judge_calls for d in decisions) == len(backend.prompts) == 6
    with pytest.raises(ValueError):
        sift(sets, _judge(backend), "best-of-n")
    with pytest.raises(TypeError):
        sift(sets, _judge(backend), "upstream", TournamentConfig())
