"""The in-process judge end to end: media files on disk -> loader -> protocol renderer -> batched generation -> parser.

Every tiny architecture is saved with ``save_pretrained``, reloaded through ``load_reward_model`` and answers
rendered pair-rank prompts with images and with videos (the foundation's acceptance test), and batching must not
change any answer.
"""

from __future__ import annotations

import pytest

from unifiedreward.chat import ChatPrompt
from unifiedreward.judge import GenerationConfig, JudgeRequest, RewardJudge, TransformersBackend
from unifiedreward.judge.base import Generation
from unifiedreward.media import load_image, load_video
from unifiedreward.modeling import model_family
from unifiedreward.protocol import PairwiseResult, PointwiseResult, parse_answer, render_prompt
from unifiedreward.testing.media import make_frames, make_image, write_video
from unifiedreward.testing.tiny_models import TINY_ARCHITECTURES

pytestmark = pytest.mark.smoke

GEN = GenerationConfig(max_new_tokens=6)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    make_image(64, 48, (200, 0, 0), shape="circle").save(root / "a.png")
    make_image(48, 64, (0, 0, 200), shape="square").save(root / "b.jpg")
    write_video(root / "a.mp4", make_frames(8, 64, 64, seed=1), fps=8)
    write_video(root / "b.mp4", make_frames(8, 64, 64, seed=2), fps=8)
    images = [load_image(root / "a.png"), load_image(root / "b.jpg")]
    videos = [load_video(root / "a.mp4", num_frames=4), load_video(root / "b.mp4", num_frames=4)]
    return images, videos


def _requests(images, videos):
    caption = {"prompt": "a red circle"}
    qa = {"question": "What colour is the shape?", "answer1": "red", "answer2": "blue"}
    return [
        JudgeRequest("image_generation", "pair_rank", images=images, fields=caption, id="ig-pair"),
        JudgeRequest("image_generation", "point_score", images=images[:1], fields=caption, id="ig-point"),
        JudgeRequest("image_understanding", "pair_rank", images=images[:1], fields=qa, id="iu-pair"),
        JudgeRequest("image_understanding", "point_score", images=images[:1],
                     fields={"question": "What colour?", "response": "red"}, id="iu-point"),
        JudgeRequest("video_generation", "pair_rank", videos=videos, fields=caption, id="vg-pair"),
        JudgeRequest("video_generation", "point_score", videos=videos[:1], fields=caption, id="vg-point"),
        JudgeRequest("video_understanding", "pair_rank", videos=videos[:1], fields=qa, id="vu-pair"),
        JudgeRequest("video_understanding", "point_score", videos=videos[:1],
                     fields={"question": "Where does it move?", "response": "right"}, id="vu-point"),
    ]  # fmt: skip


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_every_task_and_mode_gives_typed_results(arch, tiny_models, media):
    model, processor = tiny_models(arch)
    family = model_family(model)
    judge = RewardJudge(TransformersBackend(model, processor, batch_size=3), family=family, generation=GEN)
    requests = _requests(*media)
    results = judge.judge(requests)
    assert len(results) == len(requests)
    # a random model may stop at once on some prompts, but not on most of them
    assert sum(bool(result.raw) for result in results) >= len(results) // 2
    for request, result in zip(requests, results, strict=True):
        expected = PointwiseResult if request.mode == "point_score" else PairwiseResult
        assert isinstance(result, expected), request.id
        assert isinstance(result.raw, str)
        # the typed result is exactly what the protocol parser makes of the raw answer
        assert result == parse_answer(judge.template_for(request), result.raw)
        assert result.status in ("valid", "invalid")
        if not result.valid:
            assert result.reason


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_batched_answers_equal_one_at_a_time(arch, tiny_models, media):
    model, processor = tiny_models(arch)
    family = model_family(model)
    prompts = [RewardJudge(None, family=family).render(r) for r in _requests(*media)]
    batched = TransformersBackend(model, processor, batch_size=4).generate(prompts, GEN)
    single = TransformersBackend(model, processor, batch_size=1).generate(prompts, GEN)
    assert [g.text for g in batched] == [g.text for g in single]
    assert all(g.ok and 0 <= g.num_generated_tokens <= GEN.max_new_tokens for g in batched)
    assert [g.num_prompt_tokens for g in batched] == [g.num_prompt_tokens for g in single]


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_pair_rank_prompts_carry_both_media(arch, tiny_models, media):
    """The rendered pair prompt reaches the model with both images (or both videos' frames) in it."""
    from unifiedreward.inputs import prepare_inputs

    model, processor = tiny_models(arch)
    family = model_family(model)
    images, videos = media
    image_prompt = render_prompt(task="image_generation", mode="pair_rank", family=family, images=images, prompt="x")
    video_prompt = render_prompt(task="video_generation", mode="pair_rank", family=family, videos=videos, prompt="x")
    image_inputs = prepare_inputs(processor, [image_prompt])
    video_inputs = prepare_inputs(processor, [video_prompt])
    if family == "qwen":
        assert image_inputs["image_grid_thw"].shape[0] == 2
        assert video_inputs["video_grid_thw"].shape[0] == 2
    else:  # LLaVA: video frames are fed as separate images (upstream's inference path)
        assert image_inputs["pixel_values"].shape[0] == 2
        assert video_inputs["pixel_values"].shape[0] == 8


class _ScriptedBackend:
    """Answers from a fixed list, to test the judge's bookkeeping without a model."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.seen: list[ChatPrompt] = []

    def generate(self, prompts, config):
        self.seen.extend(prompts)
        out = []
        for _ in prompts:
            answer = self.answers.pop(0)
            out.append(Generation(answer) if answer is not None else Generation(None, error="HTTP 500"))
        return out


def test_judge_reports_render_and_backend_failures_as_invalid(media):
    images, _ = media
    backend = _ScriptedBackend(["Image 2 is better.", None])
    judge = RewardJudge(backend)
    requests = [
        JudgeRequest("image_generation", "pair_rank", images=images, fields={"prompt": "a"}),
        JudgeRequest("image_generation", "pair_rank", images=images[:1], fields={"prompt": "a"}),  # one image short
        JudgeRequest("image_generation", "point_score", images=images[:1], fields={"prompt": "a"}),
    ]
    first, second, third = judge.judge(requests)
    assert first.verdict.value == "second" and first.valid
    assert not second.valid and "expects 2 image" in second.reason
    assert isinstance(third, PointwiseResult) and not third.valid and "HTTP 500" in third.reason
    assert len(backend.seen) == 2  # the unrenderable request never reached the backend


def test_backend_isolates_a_bad_prompt_in_a_batch(tiny_models, media):
    model, processor = tiny_models("qwen2_5_vl")
    images, _ = media
    good = render_prompt("T-IG-PAIR-QWEN", images=images, prompt="x")
    bad = ChatPrompt(messages=good.messages, images=images[:1])  # two placeholders, one image
    out = TransformersBackend(model, processor, batch_size=4).generate([good, bad, good], GEN)
    assert out[0].ok and out[2].ok and out[0].text == out[2].text
    assert not out[1].ok and out[1].text is None and "placeholder" in out[1].error


def test_batches_group_similar_lengths():
    short = ChatPrompt(messages=[{"role": "user", "content": "hi"}])
    long = ChatPrompt(messages=[{"role": "user", "content": "x" * 4000}])
    backend = TransformersBackend(None, None, batch_size=2)
    assert backend.batches([short, long, short, long]) == [[1, 3], [0, 2]]
    assert TransformersBackend(None, None, batch_size=2, sort_by_length=False).batches([short] * 3) == [[0, 1], [2]]
    with pytest.raises(ValueError):
        TransformersBackend(None, None, batch_size=0)


@pytest.mark.parametrize("arch", ["qwen2_5_vl", "qwen3_vl"])
def test_fast_vision_paths_do_not_change_answers(arch, tiny_models, media):
    """Batched vision attention + per-call feature reuse give the stock answers, and encode each image once."""
    from unifiedreward.judge.vision import is_patched, unpatch_vision_attention

    model, processor = tiny_models(arch)
    images, _ = media
    judge_requests = [JudgeRequest("image_generation", "pair_rank", images=images, fields={"prompt": f"c{i}"})
                      for i in range(3)]  # fmt: skip
    prompts = [RewardJudge(None).render(r) for r in judge_requests]
    unpatch_vision_attention(model)  # other tests' backends patched the shared session model
    try:
        stock = TransformersBackend(model, processor, batch_size=2, fast_vision=False, reuse_vision_features=False)
        assert not is_patched(model)
        expected = stock.generate(prompts, GEN)
        fast = TransformersBackend(model, processor, batch_size=2)
        assert is_patched(model)
        calls = []
        hook = model.model.visual.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
        try:
            got = fast.generate(prompts, GEN)
        finally:
            hook.remove()
        assert [g.text for g in got] == [g.text for g in expected]
        # 3 prompts x 2 images, in 2 batches: the tower only ever sees the 2 distinct images, once
        assert len(calls) == 1
    finally:
        unpatch_vision_attention(model)


@pytest.mark.parametrize(
    ("version", "task", "mode", "template", "result_type"),
    [
        ("2.0", "image_generation", "pair_score", "T-V2-PAIRSCORE-IMG", PairwiseResult),
        ("2.0", "video_generation", "pair_score", "T-V2-PAIRSCORE-VID", PairwiseResult),
        ("2.0", "image_generation", "point_score", "T-V2-POINT-ACS", PointwiseResult),
        ("2.0", "video_generation", "point_score", "T-V2-POINT-APS", PointwiseResult),
        ("think", "image_generation", "pair_rank", "T-THINK-IG", PairwiseResult),
        ("think", "video_understanding", "pair_rank", "T-THINK-VU", PairwiseResult),
        ("think-qwen3", "image_understanding", "pair_rank", "T-THINK3-IU", PairwiseResult),
    ],
)
def test_v2_and_think_templates_give_typed_results(version, task, mode, template, result_type, tiny_models, media):
    model, processor = tiny_models("qwen2_5_vl")
    images, videos = media
    n_media = 2 if mode in ("pair_score", "pair_rank") else 1
    fields = {"prompt": "a red circle"}
    if "understanding" in task:
        fields = {"question": "What colour?", "answer1": "red", "answer2": "blue"}
        n_media = 1
    kind = "videos" if "video" in task else "images"
    request = JudgeRequest(task, mode, fields=fields, **{kind: (videos if kind == "videos" else images)[:n_media]})
    judge = RewardJudge(TransformersBackend(model, processor), version=version, generation=GEN)
    assert judge.template_for(request).id == template
    result = judge.judge_one(request)
    assert isinstance(result, result_type)
    assert result == parse_answer(template, result.raw)


def _sliver():
    """An image the Qwen processor rejects: ``ValueError: absolute aspect ratio must be smaller than 200``."""
    return make_image(2, 600, (0, 0, 0))


@pytest.mark.parametrize("scoring", ["generate", "probabilities"])
def test_one_bad_image_fails_only_its_request(scoring, tiny_models, media):
    """A processor error on one item (extreme aspect ratio) gives that request an invalid result naming the error;
    the other requests of the batch get exactly the results they get without it."""
    model, processor = tiny_models("qwen2_5_vl")
    images, _ = media
    good = [JudgeRequest("image_generation", "pair_rank", images=images, fields={"prompt": f"c{i}"}, id=f"ok-{i}")
            for i in range(3)]  # fmt: skip
    bad = JudgeRequest("image_generation", "pair_rank", images=[images[0], _sliver()], fields={"prompt": "c"},
                       id="bad")  # fmt: skip
    judge = RewardJudge(TransformersBackend(model, processor, batch_size=4), generation=GEN, scoring=scoring)
    expected = judge.judge(good)
    results = judge.judge([good[0], bad, good[1], good[2]])
    assert results[1].status == "invalid" and "aspect ratio" in results[1].reason
    # equal up to float noise: the good requests may be batched differently once the bad one is dropped, and a
    # CPU matmul over another batch shape can differ in the last digits (seen: 1e-6 in a log-likelihood of -59)
    for got, want in zip([results[0], results[2], results[3]], expected, strict=True):
        assert (got.verdict, got.raw, got.valid) == (want.verdict, want.raw, want.valid)
        assert (got.probabilities is None) == (want.probabilities is None)
        if want.probabilities is not None:
            assert got.probabilities == pytest.approx(want.probabilities, rel=1e-4, abs=1e-7)
    if scoring == "probabilities":  # (a random model's generated text rarely parses)
        assert all(result.valid for result in expected)


def test_one_bad_image_in_point_scores_with_expected_score(tiny_models, media):
    model, processor = tiny_models("qwen2_5_vl")
    images, _ = media
    good = JudgeRequest("image_generation", "point_score", images=images[:1], fields={"prompt": "c"}, id="ok")
    bad = JudgeRequest("image_generation", "point_score", images=[_sliver()], fields={"prompt": "c"}, id="bad")
    judge = RewardJudge(TransformersBackend(model, processor, batch_size=2), generation=GEN, scoring="probabilities")
    first, second = judge.judge([bad, good])
    assert isinstance(first, PointwiseResult) and not first.valid and "aspect ratio" in first.reason
    assert second == judge.judge_one(good)


def test_backend_reports_per_row_failures_in_generate_and_score(tiny_models, media, caplog):
    model, processor = tiny_models("qwen2_5_vl")
    images, _ = media
    good = render_prompt("T-IG-PAIR-QWEN", images=images, prompt="x")
    bad = render_prompt("T-IG-PAIR-QWEN", images=[images[0], _sliver()], prompt="x")
    backend = TransformersBackend(model, processor, batch_size=3)
    with caplog.at_level("WARNING", logger="unifiedreward.judge.hf_backend"):
        out = backend.generate([good, bad, good], GEN)
    assert out[0].ok and out[2].ok and out[0].text == out[2].text
    assert not out[1].ok and out[1].error.startswith("ValueError: absolute aspect ratio")
    assert "retrying its rows one by one" in caplog.text and "prompt 1 failed" in caplog.text
    scores, errors = backend.score_with_errors([good, bad, good], ["Image 1 is better.", "Image 2 is better."])
    assert errors[0] is None and errors[2] is None and "aspect ratio" in errors[1]
    assert scores[1].isnan().all() and not scores[[0, 2]].isnan().any()
    assert scores[0].tolist() == scores[2].tolist()


class _RaisingBackend(_ScriptedBackend):
    def generate(self, prompts, config):
        raise RuntimeError("server exploded")

    def score(self, prompts, candidates, *, assistant_prefixes=None):
        raise RuntimeError("scoring exploded")


@pytest.mark.parametrize("scoring", ["generate", "probabilities"])
def test_a_backend_that_raises_gives_invalid_results_not_a_crash(scoring, media, caplog):
    images, _ = media
    request = JudgeRequest("image_generation", "pair_rank", images=images, fields={"prompt": "a"}, id="req-7")
    with caplog.at_level("WARNING", logger="unifiedreward.judge.judge"):
        [result] = RewardJudge(_RaisingBackend([]), scoring=scoring).judge([request])
    assert not result.valid and "exploded" in result.reason
    assert "request 'req-7' failed" in caplog.text
