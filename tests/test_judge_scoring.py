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


class LeaningBackend:
    """Scores with a strong first-position bias, but a real preference for the red image (see the test)."""

    def __init__(self):
        self.red_first = ColourBackend()._red_first

    def generate(self, prompts, config):
        raise AssertionError("not used")

    def score(self, prompts, candidates, *, assistant_prefixes=None):
        # (first, second, tie) log-likelihoods: as given (red first) and swapped (blue first) both favour "Image 1"
        return torch.tensor([[0.0, -1.0, -5.0] if self.red_first(p) else [0.0, -0.2, -5.0] for p in prompts])


@pytest.mark.unit
def test_disagreeing_orders_take_the_argmax_of_averaged_probabilities():
    """Rule (judge module docstring): both orders say "Image 1" (a position bias), the averaged probabilities still
    prefer red, so the verdict is red (first), valid, flagged consistent=False."""
    (result,) = RewardJudge(LeaningBackend(), order="both", scoring="probabilities").judge([_pair(0)])
    as_given = torch.tensor([0.0, -1.0, -5.0]).softmax(0)
    swapped = torch.tensor([0.0, -0.2, -5.0]).softmax(0)[[1, 0, 2]]  # mapped back to the request's order
    average = ((as_given + swapped) / 2).tolist()
    assert [result.probabilities[v] for v in (Verdict.FIRST, Verdict.SECOND, Verdict.TIE)] == pytest.approx(average)
    assert average[0] > average[1]
    assert result.verdict is Verdict.FIRST and result.valid and result.consistent is False
    assert result.details["as_given_order"] == {"verdict": "first"}
    assert result.details["swapped_order"]["verdict"] == "second"


@pytest.mark.unit
def test_combine_orders_rules():
    p = {Verdict.FIRST: 0.7, Verdict.SECOND: 0.2, Verdict.TIE: 0.1}
    q = {Verdict.FIRST: 0.3, Verdict.SECOND: 0.6, Verdict.TIE: 0.1}
    leaning = combine_orders(PairwiseResult(Verdict.FIRST, "a", probabilities=p),
                             PairwiseResult(Verdict.SECOND, "b", probabilities=q))  # fmt: skip
    assert leaning.verdict is Verdict.FIRST and leaning.consistent is False and leaning.reason is None
    # exactly tied averages: no verdict (a purely positional judge must not default to "first")
    tied = combine_orders(PairwiseResult(Verdict.FIRST, "a", probabilities=p),
                          PairwiseResult(Verdict.SECOND, "b", probabilities={Verdict.FIRST: 0.2, Verdict.SECOND: 0.7,
                                                                             Verdict.TIE: 0.1}))  # fmt: skip
    assert tied.verdict is None and tied.status == "inconsistent" and "tie" in tied.reason
    # text answers only: nothing to average
    text = combine_orders(PairwiseResult(Verdict.FIRST, "a"), PairwiseResult(Verdict.SECOND, "b"))
    assert text.verdict is None and text.status == "inconsistent" and text.probabilities is None


def _record_forwards(model, monkeypatch) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """``(input_ids shape, logits shape)`` of every forward of ``model`` (instance-level wrapper, undone after)."""
    calls = []
    forward = model.forward

    def recording(*args, **kwargs):
        out = forward(*args, **kwargs)
        calls.append((tuple(kwargs["input_ids"].shape), tuple(out.logits.shape)))
        return out

    monkeypatch.setattr(model, "forward", recording)
    return calls


@pytest.mark.smoke
def test_0_to_100_scale_in_bounded_chunks_equals_brute_force(tiny_models, monkeypatch):
    """The image-understanding point scale (101 candidates): the chunked scores equal one-candidate-at-a-time
    brute force; the prefill keeps one position's logits and no candidate forward exceeds ``max_rows`` rows."""
    model, processor = tiny_models("qwen2_5_vl")
    prompts = [render_prompt("T-IG-POINT", images=_images()[:1], prompt="a red dot"),
               render_prompt("T-IG-POINT", images=_images()[1:], prompt="a blue square, longer caption")]  # fmt: skip
    prefixes = ["red (color): 1\nFinal Score:", "Final Score:"]
    cands = candidate_token_ids(processor.tokenizer, [f" {v}" for v in range(101)])
    calls = _record_forwards(model, monkeypatch)
    fast = score_candidates(model, processor, prompts, cands, assistant_prefixes=prefixes, max_rows=16)
    (_, prefill_logits), *chunks = calls
    assert prefill_logits == (2, 1, prefill_logits[-1])  # logits_to_keep=1: no (B, P, V) tensor
    assert max(ids[0] for ids, _ in chunks) <= 16 and len(chunks) == math.ceil(101 / 8)
    monkeypatch.undo()
    for prompt, prefix, row in zip(prompts, prefixes, fast, strict=True):
        prefix_ids = processor.tokenizer(prefix, add_special_tokens=False).input_ids
        base = sequence_log_likelihood(model, processor, prompt, prefix_ids)
        brute = [sequence_log_likelihood(model, processor, prompt, prefix_ids + c) - base for c in cands]
        torch.testing.assert_close(row, torch.tensor(brute), atol=2e-4, rtol=1e-5)
    unchunked = score_candidates(model, processor, prompts, cands, assistant_prefixes=prefixes, max_rows=10_000)
    torch.testing.assert_close(fast, unchunked, atol=1e-5, rtol=1e-6)


def _tiny_qwen35():
    """A 4-layer Qwen3.5 (linear attention, full attention, twice) with the tiny Qwen3-VL processor, built offline."""
    from transformers import Qwen3_5Config, Qwen3_5ForConditionalGeneration

    from unifiedreward.testing.tiny_models import build_tiny_processor

    processor = build_tiny_processor("qwen3_vl")
    tok = processor.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
                                                     "<|vision_end|>", "<|im_end|>", "<|endoftext|>")}  # fmt: skip
    text = dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=4096,
                bos_token_id=None, eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                initializer_range=0.2, layer_types=["linear_attention", "full_attention"] * 2,
                linear_num_value_heads=4, linear_num_key_heads=2, linear_key_head_dim=16, linear_value_head_dim=16,
                linear_conv_kernel_dim=4, rope_parameters={"rope_type": "default", "rope_theta": 1e4,
                "mrope_section": [2, 3, 3], "mrope_interleaved": True, "partial_rotary_factor": 1.0})  # fmt: skip
    vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64, patch_size=16,
                  num_position_embeddings=64, spatial_merge_size=2, temporal_patch_size=2)  # fmt: skip
    config = Qwen3_5Config(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                           video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                           vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=True)  # fmt: skip
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    model = Qwen3_5ForConditionalGeneration(config).eval()
    torch.random.set_rng_state(generator_state)
    return model, processor


@pytest.mark.smoke
def test_qwen35_linear_attention_cache_is_supported():
    """Qwen3.5's gated-delta-net cache layers have no batch_repeat_interleave (the old crash); the expansion by
    reorder_cache handles them, and the scores equal brute force (left padding and chunks included)."""
    model, processor = _tiny_qwen35()
    assert "linear_attention" in model.config.text_config.layer_types
    prompts = [render_prompt("T-IG-PAIR-QWEN", images=_images(), prompt="a red dot"),
               render_prompt("T-IG-PAIR-QWEN", images=_images()[::-1], prompt="longer caption: left pad")]  # fmt: skip
    texts = list(get_template("T-IG-PAIR-QWEN").answer.candidates.values())
    ids = candidate_token_ids(processor.tokenizer, texts)
    fast = score_candidates(model, processor, prompts, ids, max_rows=2)
    brute = torch.tensor([[sequence_log_likelihood(model, processor, p, c) for c in ids] for p in prompts])
    torch.testing.assert_close(fast, brute, atol=1e-4, rtol=1e-5)


@pytest.mark.unit
def test_a_cache_that_cannot_be_expanded_is_rejected_clearly(monkeypatch):
    from unifiedreward.judge import scoring
    from unifiedreward.judge.scoring import ScoringUnsupportedError

    class LegacyLayer:
        pass

    class LayeredCache:
        def __init__(self):
            self.layers = [LegacyLayer()]

        def reorder_cache(self, index):
            raise AssertionError("not reached")

    with pytest.raises(ScoringUnsupportedError, match="scoring='generate'"):
        scoring._expanded_cache(((torch.zeros(1), torch.zeros(1)),), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ScoringUnsupportedError, match="LegacyLayer"):
        scoring._expanded_cache(LayeredCache(), torch.zeros(2, dtype=torch.long))


@pytest.mark.smoke
def test_unsupported_model_raises_instead_of_failing_every_item(tiny_models, monkeypatch):
    """A model-level limit is not a per-item failure: the backend and the judge raise it once."""
    from unifiedreward.judge import scoring
    from unifiedreward.judge.scoring import ScoringUnsupportedError

    def refuse(cache, index):
        raise ScoringUnsupportedError("scoring='probabilities' cannot expand a FakeCache")

    monkeypatch.setattr(scoring, "_expanded_cache", refuse)
    model, processor = tiny_models("qwen2_5_vl")
    judge = RewardJudge(TransformersBackend(model, processor), scoring="probabilities")
    with pytest.raises(ScoringUnsupportedError, match="FakeCache"):
        judge.judge([_pair(0), _pair(1)])


class NanBackend(ColourBackend):
    """``score`` without ``score_with_errors``: a NaN row means that prompt could not be scored."""

    def score(self, prompts, candidates, *, assistant_prefixes=None):
        rows = super().score(prompts, candidates)
        rows[0] = float("nan")
        return rows


@pytest.mark.unit
def test_nan_score_rows_become_invalid_results():
    first, second = RewardJudge(NanBackend(), scoring="probabilities").judge([_pair(0), _pair(1)])
    assert not first.valid and "scoring failed" in first.reason
    assert second.valid and second.verdict is Verdict.FIRST


class FailingPointBackend(PointBackend):
    def score_with_errors(self, prompts, candidates, *, assistant_prefixes=None):
        return torch.full((len(prompts), len(candidates)), float("nan")), ["ValueError: too big"] * len(prompts)


@pytest.mark.unit
def test_expected_score_failure_makes_the_result_invalid():
    request = JudgeRequest("image_generation", "point_score", images=_images()[:1], fields={"prompt": "red"})
    (result,) = RewardJudge(FailingPointBackend(), scoring="probabilities").judge([request])
    assert not result.valid and "expected-score scoring failed: ValueError: too big" in result.reason
    assert result.raw == "red (color): 1\nFinal Score: 4" and result.expected_score is None
