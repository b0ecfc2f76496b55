"""Answer probabilities (fast path) against brute-force sequence scoring, and position-bias control."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unifiedreward.chat import ChatPrompt
from unifiedreward.errors import UnifiedRewardError
from unifiedreward.judge import GenerationConfig, JudgeRequest, RewardJudge, TransformersBackend
from unifiedreward.judge.base import Generation
from unifiedreward.judge.judge import combine_orders, swap_request
from unifiedreward.judge.scoring import candidate_token_ids, score_candidates, sequence_log_likelihood
from unifiedreward.media import Video
from unifiedreward.modeling import model_family
from unifiedreward.protocol import PairwiseResult, Verdict, get_template, render_prompt
from unifiedreward.testing.media import make_image
from unifiedreward.testing.tiny_models import TINY_ARCHITECTURES

RED, BLUE = (220, 20, 20), (20, 20, 220)


def _images():
    return [make_image(64, 48, RED, shape="circle"), make_image(48, 64, BLUE, shape="square")]


def _videos():
    rng = np.random.default_rng(0)
    return [Video(frames=rng.integers(0, 255, (4, 56, 56, 3), dtype=np.uint8), frame_indices=[0, 2, 4, 6],
                  total_num_frames=8, fps=8.0) for _ in range(2)]  # fmt: skip


@pytest.mark.smoke
@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_fast_path_equals_brute_force_sequence_scoring(arch, tiny_models):
    model, processor = tiny_models(arch)
    family = model_family(model)
    prompts = [
        render_prompt(task="image_generation", mode="pair_rank", family=family, images=_images(), prompt="a red dot"),
        render_prompt(task="image_generation", mode="pair_rank", family=family, images=_images()[::-1],
                      prompt="a much longer caption so that the first prompt gets left padding"),
        render_prompt(task="video_generation", mode="pair_rank", family=family, videos=_videos(), prompt="motion"),
    ]  # fmt: skip
    spec = get_template(prompts[0].meta["template_id"])
    texts = list(spec.answer.candidates.values())
    ids = candidate_token_ids(processor.tokenizer, texts)
    fast = score_candidates(model, processor, prompts[:2], ids)
    brute = torch.tensor([[sequence_log_likelihood(model, processor, p, c) for c in ids] for p in prompts[:2]])
    torch.testing.assert_close(fast, brute, atol=1e-4, rtol=1e-5)
    # video prompts too (different candidate set)
    vids = candidate_token_ids(
        processor.tokenizer, list(get_template(prompts[2].meta["template_id"]).answer.candidates.values())
    )
    torch.testing.assert_close(
        score_candidates(model, processor, prompts[2:], vids),
        torch.tensor([[sequence_log_likelihood(model, processor, prompts[2], c) for c in vids]]),
        atol=1e-4, rtol=1e-5,
    )  # fmt: skip


@pytest.mark.smoke
def test_fast_path_with_assistant_prefix(tiny_models):
    model, processor = tiny_models("qwen2_5_vl")
    prompt = render_prompt("T-IG-POINT", images=_images()[:1], prompt="a red dot")
    prefix = "red (color): 1\nFinal Score:"
    cands = candidate_token_ids(processor.tokenizer, [" 1", " 2", " 5"])
    fast = score_candidates(model, processor, [prompt], cands, assistant_prefixes=[prefix])
    prefix_ids = processor.tokenizer(prefix, add_special_tokens=False).input_ids
    # brute force: log P(prefix + c) - log P(prefix) = log P(c | prompt, prefix)
    base = sequence_log_likelihood(model, processor, prompt, prefix_ids)
    brute = [sequence_log_likelihood(model, processor, prompt, prefix_ids + c) - base for c in cands]
    torch.testing.assert_close(fast[0], torch.tensor(brute), atol=1e-4, rtol=1e-5)


@pytest.mark.smoke
@pytest.mark.parametrize("arch", ["qwen2_5_vl", "llava_onevision"])
def test_probability_scoring_gives_normalised_probabilities(arch, tiny_models):
    model, processor = tiny_models(arch)
    backend = TransformersBackend(model, processor, batch_size=2)
    judge = RewardJudge(backend, family=model_family(model), scoring="probabilities")
    request = JudgeRequest("image_generation", "pair_rank", images=_images(), fields={"prompt": "a red dot"})
    (result,) = judge.judge([request])
    assert result.valid and set(result.probabilities) == {Verdict.FIRST, Verdict.SECOND, Verdict.TIE}
    assert math.isclose(sum(result.probabilities.values()), 1.0, rel_tol=1e-6)
    assert result.verdict is max(result.probabilities, key=result.probabilities.get)
    # probabilities are the softmax of the brute-force sequence log-likelihoods
    spec = judge.template_for(request)
    texts = [spec.answer.candidates[v] for v in (Verdict.FIRST, Verdict.SECOND, Verdict.TIE)]
    prompt = judge.render(request)
    lls = torch.tensor([sequence_log_likelihood(model, processor, prompt, c)
                        for c in candidate_token_ids(processor.tokenizer, texts)])  # fmt: skip
    expected = lls.softmax(0)
    got = torch.tensor([result.probabilities[v] for v in (Verdict.FIRST, Verdict.SECOND, Verdict.TIE)])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert result.raw == texts[int(expected.argmax())]


class ColourBackend:
    """A scripted judge: prefers the red image, or (biased=True) always answers 'Image 1'. Counts prompts."""

    def __init__(self, biased: bool = False):
        self.biased = biased
        self.prompts: list[ChatPrompt] = []

    def _red_first(self, prompt: ChatPrompt) -> bool:
        return np.asarray(prompt.images[0])[..., 0].mean() > np.asarray(prompt.images[1])[..., 0].mean()

    def generate(self, prompts, config):
        self.prompts.extend(prompts)
        if self.biased:
            return [Generation("Image 1 is better.") for _ in prompts]
        return [Generation("Image 1 is better." if self._red_first(p) else "Image 2 is better.") for p in prompts]

    def score(self, prompts, candidates, *, assistant_prefixes=None):
        self.prompts.extend(prompts)
        rows = []
        for p in prompts:
            first = 0.0 if (self.biased or self._red_first(p)) else -2.0
            rows.append([first, -2.0 - first, -3.0])
        return torch.tensor(rows)


def _pair(i):
    return JudgeRequest("image_generation", "pair_rank", images=_images(), fields={"prompt": "red"}, id=f"r{i}")


@pytest.mark.unit
def test_both_orders_consistent_judge():
    backend = ColourBackend()
    results = RewardJudge(backend, order="both").judge([_pair(0), _pair(1)])
    assert len(backend.prompts) == 4  # every pair judged twice, in one backend call
    for result in results:
        assert result.verdict is Verdict.FIRST and result.consistent is True and result.status == "valid"
        assert result.details["swapped_order"]["verdict"] == "first"


@pytest.mark.unit
def test_both_orders_flag_position_bias():
    (result,) = RewardJudge(ColourBackend(biased=True), order="both").judge([_pair(0)])
    assert result.verdict is None and result.consistent is False and result.status == "inconsistent"
    assert "order-inconsistent" in result.reason


@pytest.mark.unit
def test_both_orders_average_probabilities_after_swapping():
    (result,) = RewardJudge(ColourBackend(biased=True), order="both", scoring="probabilities").judge([_pair(0)])
    # as given: softmax(0, -2, -3); swapped then mapped back: first and second exchanged -> averaged
    p = torch.tensor([0.0, -2.0, -3.0]).softmax(0).tolist()
    assert result.probabilities[Verdict.FIRST] == pytest.approx((p[0] + p[1]) / 2)
    assert result.probabilities[Verdict.SECOND] == pytest.approx((p[1] + p[0]) / 2)
    assert result.probabilities[Verdict.TIE] == pytest.approx(p[2])
    assert result.status == "inconsistent"


@pytest.mark.unit
def test_random_order_is_seeded_and_mapped_back():
    requests = [_pair(i) for i in range(40)]
    backend = ColourBackend()
    results = RewardJudge(backend, order="random", seed=3).judge(requests)
    swapped = [r.swapped for r in results]
    assert 5 < sum(swapped) < 35  # a fair coin
    assert all(r.verdict is Verdict.FIRST for r in results)  # the red image is first in every request
    again = RewardJudge(ColourBackend(), order="random", seed=3).judge(requests)
    assert [r.swapped for r in again] == swapped
    other = RewardJudge(ColourBackend(), order="random", seed=4).judge(requests)
    assert [r.swapped for r in other] != swapped
    # the coin is keyed by id, so a subset (a shard, a resumed run) gets the same flips
    subset = RewardJudge(ColourBackend(), order="random", seed=3).judge(requests[10:20])
    assert [r.swapped for r in subset] == swapped[10:20]


@pytest.mark.unit
def test_swap_request_per_task():
    qa = JudgeRequest("image_understanding", "pair_rank", images=["img"],
                      fields={"question": "q", "answer1": "A", "answer2": "B"})  # fmt: skip
    swapped = swap_request(qa, get_template("T-IU-PAIR-QWEN"))
    assert swapped.fields == {"Query": "q", "R1": "B", "R2": "A"} and swapped.images == ["img"]
    video = JudgeRequest("video_generation", "pair_rank", videos=["v1", "v2"], fields={"prompt": "x"})
    assert swap_request(video, get_template("T-VG-PAIR-QWEN")).videos == ["v2", "v1"]
    edit = JudgeRequest("image_editing", "pair_rank", images=["src", "e1", "e2"], fields={"instruction": "x"})
    assert swap_request(edit, get_template("T-EDIT-PAIRRANK")).images == ["src", "e2", "e1"]
    point = JudgeRequest("image_generation", "point_score", images=["a"], fields={"prompt": "x"})
    assert swap_request(point, get_template("T-IG-POINT")) is None


@pytest.mark.unit
def test_combine_orders_invalid_side_and_scores():
    good = PairwiseResult(Verdict.FIRST, "Image 1 is better.", scores=(0.7, 0.3))
    bad = PairwiseResult(None, "???", reason="no verdict found")
    combined = combine_orders(good, bad)
    assert combined.verdict is None and "swapped order invalid" in combined.reason and combined.consistent is None
    both = combine_orders(good, PairwiseResult(Verdict.FIRST, "x", scores=(0.5, 0.5)))
    assert both.scores == pytest.approx((0.6, 0.4)) and both.consistent is True


class PointBackend:
    def __init__(self):
        self.prefixes = None

    def generate(self, prompts, config):
        return [Generation("red (color): 1\nFinal Score: 4") for _ in prompts]

    def score(self, prompts, candidates, *, assistant_prefixes=None):
        self.prefixes, self.candidates = assistant_prefixes, candidates
        return torch.log(torch.tensor([[0.1, 0.1, 0.2, 0.4, 0.2]] * len(prompts)))


@pytest.mark.unit
def test_expected_score_over_allowed_values():
    backend = PointBackend()
    request = JudgeRequest("image_generation", "point_score", images=_images()[:1], fields={"prompt": "red"})
    (result,) = RewardJudge(backend, scoring="probabilities").judge([request])
    assert result.score == 4.0
    assert result.expected_score == pytest.approx(0.1 * 1 + 0.1 * 2 + 0.2 * 3 + 0.4 * 4 + 0.2 * 5)
    assert backend.prefixes == ["red (color): 1\nFinal Score:"]
    assert backend.candidates == [" 1", " 2", " 3", " 4", " 5"]


@pytest.mark.unit
def test_bad_options():
    with pytest.raises(ValueError):
        RewardJudge(ColourBackend(), order="sideways")
    with pytest.raises(ValueError):
        RewardJudge(ColourBackend(), scoring="vibes")

    class TextOnly:
        def generate(self, prompts, config):
            return []

    with pytest.raises(UnifiedRewardError, match="probabilities"):
        RewardJudge(TextOnly(), scoring="probabilities")
    assert GenerationConfig().temperature == 0.0
