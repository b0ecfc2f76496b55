"""The synthetic world: determinism, ground truth against the pixels, records and benchmark files in real formats."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

import unifiedreward.synth as synth_data
from unifiedreward.synth.world import (
    COLORS,
    COUNTS,
    DIRECTIONS,
    MIN_IMAGE_SIZE,
    POSITIONS,
    SHAPES,
    MotionSpec,
    SceneSpec,
    World,
    item_rng,
    perturb_motion,
    perturb_scene,
    render_clip,
    render_scene,
)

pytestmark = pytest.mark.unit


def _mask(image: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.all(image == np.array(rgb, dtype=image.dtype), axis=-1)


def _fill_ratio(mask: np.ndarray) -> float:
    ys, xs = np.nonzero(mask)
    return mask.sum() / ((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1))


_FILL = {"square": (0.97, 1.0), "circle": (0.70, 0.86), "triangle": (0.42, 0.62)}  # drawn area / bounding box


def _shape_of(mask: np.ndarray) -> str:
    ratio = _fill_ratio(mask)
    return next(name for name, (low, high) in _FILL.items() if low <= ratio <= high)


def test_world_is_deterministic_for_a_seed():
    world = World(seed=3)
    a, b = world.random_scene(5), world.random_scene(5)
    assert a.spec == b.spec and np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert a.to_dict() == b.to_dict()
    c1, c2 = world.random_clip(2), world.random_clip(2)
    assert c1.spec == c2.spec and np.array_equal(c1.frames, c2.frames)
    # another seed or index draws something else; an item does not depend on what was drawn before it
    assert not np.array_equal(np.asarray(World(seed=4).random_scene(5).image), np.asarray(a.image))
    assert not np.array_equal(np.asarray(world.random_scene(6).image), np.asarray(a.image))
    for task, mode in synth_data.COMBOS:
        first = synth_data.make_example(world, task, mode, 7, "heldout")
        again = synth_data.make_example(world, task, mode, 7, "heldout")
        assert first.fields == again.fields and first.verdict == again.verdict and first.score == again.score
        train = synth_data.make_example(world, task, mode, 7, "train")
        assert train.id != first.id


@pytest.mark.parametrize("size", [84, MIN_IMAGE_SIZE])
@pytest.mark.parametrize("index", range(24))
def test_scene_ground_truth_matches_the_pixels(index, size):
    scene = World(seed=1, image_size=size).random_scene(index)
    image = np.asarray(scene.image)
    spec, (obj, *_) = scene.spec, scene.objects
    assert all(o.rgb == obj.rgb and o.color == spec.color and o.shape == spec.shape for o in scene.objects)
    assert max(abs(a - b) for a, b in zip(obj.rgb, COLORS[spec.color], strict=True)) <= 12
    mask = _mask(image, obj.rgb)
    assert np.all(image[~mask] == np.array(scene.background, dtype=np.uint8))  # only objects and background
    labels, count = ndimage.label(mask)
    assert count == spec.count == len(scene.objects)
    size = image.shape[0]
    for k in range(1, count + 1):
        component = labels == k
        ys, xs = np.nonzero(component)
        # inside the stated half of the canvas
        inside = {"left": xs.max() < size / 2, "right": xs.min() >= size / 2, "top": ys.max() < size / 2,
                  "bottom": ys.min() >= size / 2}[spec.position]  # fmt: skip
        assert inside, (spec, xs.min(), xs.max(), ys.min(), ys.max())
        assert _shape_of(component) == spec.shape
        # the recorded centre lies in the drawn object's bounding box
        assert any(xs.min() <= o.center[0] <= xs.max() + 1 and ys.min() <= o.center[1] <= ys.max() + 1
                   for o in scene.objects)  # fmt: skip


@pytest.mark.parametrize("size", [16, 24, MIN_IMAGE_SIZE - 1])
def test_a_canvas_too_small_for_the_objects_is_refused_with_a_clear_error(size):
    """At 16 px a one-object scene's radius (up to 19% of the side) did not fit into its half: numpy's
    ``ValueError: high - low < 0`` from deep inside the placement. Now the size is refused up front."""
    spec = SceneSpec("red", "circle", 1, "left")
    with pytest.raises(ValueError, match=f"at least {MIN_IMAGE_SIZE} x {MIN_IMAGE_SIZE} pixels, got {size}"):
        render_scene(spec, item_rng(0, 1, 0), size=size)
    with pytest.raises(ValueError, match=f"at least {MIN_IMAGE_SIZE}"):
        World(image_size=size)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("change", [False, True])
def test_clip_ground_truth_matches_the_pixels(direction, change):
    spec = MotionSpec("red", "triangle", direction, "blue" if change else None)
    clip = render_clip(spec, item_rng(0, 2, 9), size=56, num_frames=4)
    assert clip.frames.shape == (4, 56, 56, 3) and clip.frames.dtype == np.uint8
    centers = []
    for t, (frame, obj) in enumerate(zip(clip.frames, clip.track, strict=True)):
        mask = _mask(frame, obj.rgb)
        assert ndimage.label(mask)[1] == 1
        assert _shape_of(mask) == "triangle"
        expected = "blue" if change and t >= 2 else "red"
        assert obj.color == expected
        assert max(abs(a - b) for a, b in zip(obj.rgb, COLORS[expected], strict=True)) <= 12
        ys, xs = np.nonzero(mask)
        centers.append((xs.mean(), ys.mean()))
    dx, dy = centers[-1][0] - centers[0][0], centers[-1][1] - centers[0][1]
    moved = {"right": dx > 20, "left": dx < -20, "down": dy > 20, "up": dy < -20}[direction]
    assert moved and (abs(dy) < 2 if direction in ("left", "right") else abs(dx) < 2)
    assert spec.caption() == f"a red triangle moving {direction}" + (" and turning blue" if change else "")


def test_captions_and_perturbations():
    spec = SceneSpec("orange", "circle", 1, "top")
    assert spec.caption() == "an orange circle at the top"
    assert SceneSpec("red", "square", 3, "left").caption() == "three red squares on the left"
    rng = np.random.default_rng(0)
    for attribute in ("color", "shape", "count", "position"):
        other = perturb_scene(spec, attribute, rng)
        assert spec.differences(other) == [attribute]
    assert perturb_scene(spec, "position", rng).position == "bottom"  # the opposite half: never also true
    motion = MotionSpec("green", "square", "up", "yellow")
    for attribute in ("color", "shape", "direction", "end_color"):
        other = perturb_motion(motion, attribute, rng)
        assert attribute in motion.differences(other)
        assert other.end_color != other.color
    with pytest.raises(ValueError):
        SceneSpec("pink", "circle", 1, "top")
    assert len(COLORS) * len(SHAPES) * len(COUNTS) * len(POSITIONS) == 216


def test_examples_carry_consistent_ground_truth():
    world = World(seed=0)
    for index in range(40):
        ex = synth_data.make_example(world, "image_generation", "pair_rank", index, "heldout")
        caption = ex.meta["caption_spec"]
        matches = [spec == caption for spec in ex.meta["specs"]]
        if ex.vote_type == "tievote":
            assert matches == [True, True]
        elif ex.vote_type == "bothbad_vote":
            assert matches == [False, False]
        else:
            assert matches == ([True, False] if ex.verdict == "first" else [False, True])
            assert [s.spec for s in ex.media] == [SceneSpec(**s) for s in ex.meta["specs"]]
        point = synth_data.make_example(world, "video_generation", "point_score", index)
        assert point.score == 10 - 3 * len(point.meta["wrong"])
        assert point.media[0].spec.to_dict() == point.meta["spec"]
        pair = synth_data.make_example(world, "video_understanding", "pair_rank", index)
        right = pair.meta["right_answer"]
        assert pair.fields["answer1" if pair.verdict == "first" else "answer2"] == right
        assert pair.fields["answer2" if pair.verdict == "first" else "answer1"] != right


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    world = World(seed=0)
    sizes = {**dict.fromkeys(synth_data.COMBOS, 6), **dict.fromkeys(synth_data.AUX_COMBOS, 3)}
    train = synth_data.write_training_data(root / "train", world, sizes, reasoning=True)
    heldout = synth_data.write_heldout(root / "heldout", world, 6)
    return world, train, heldout


def test_training_records_validate_against_the_training_loader(written):
    from unifiedreward.data import build_mixture, load_mixture
    from unifiedreward.data.sft import IGNORE_INDEX, MediaOptions, SupervisedDataset
    from unifiedreward.protocol import TEMPLATES
    from unifiedreward.synth.tokenizer import build_world_tokenizer
    from unifiedreward.testing.tiny_models import build_tiny_processor

    _, train, _ = written
    entries = load_mixture(train.yaml_path)
    assert [e.strategy.name for e in entries] == ["all", "random"] * 4 + ["all"] * 4
    records = build_mixture(entries, on_invalid="raise")
    assert len(records) == 4 * 6 + 4 * 5 + 4 * 3  # pair rank: all; point score: random:75% of 6 = 5; captions
    kinds = {r.id.split("-train-")[0]: r.media_kind for r in records}
    assert kinds == {"ig-pair": "image", "ig-point": "image", "iu-pair": "image", "iu-point": "image",
                     "vg-pair": "video", "vg-point": "video", "vu-pair": "video", "vu-point": "video",
                     "cap-image": "image", "cap-image2": "image", "cap-video": "video", "cap-video2": "video"}  # fmt: skip
    by_id = {r.id: r for r in records}
    assert by_id["vg-pair-train-000000"].num_videos == 2 and by_id["ig-pair-train-000000"].num_images == 2
    # the user turn is exactly the protocol's rendering
    text = by_id["ig-pair-train-000000"].turns[0].text()
    assert text.startswith(TEMPLATES["T-IG-PAIR-QWEN"].text.split("{prompt}")[0])

    tokenizer = build_world_tokenizer()
    processor = build_tiny_processor("qwen2_vl", tokenizer=tokenizer)
    processor.chat_template = tokenizer.chat_template
    dataset = SupervisedDataset(records, processor, family="qwen", media=MediaOptions(frames_upbound=4, video_fps=None),
                                max_bad_fraction=0.0)  # fmt: skip
    for index in range(len(records)):
        sample = dataset.encode(index)
        labels = sample["labels"]
        answer = tokenizer.decode(labels[labels != IGNORE_INDEX])
        assert answer == records[index].turns[-1].text() + "<|im_end|>"
        assert int(sample["input_ids"].shape[0]) < 170  # constant template text is a few tokens
        if records[index].media_kind == "video":
            assert sample["video_grid_thw"][0].tolist() == [2, 4, 4]  # 4 frames of 56 x 56
        else:
            assert sample["image_grid_thw"][0].tolist() == [1, 6, 6]  # 84 x 84
    assert dataset.counts()["dropped"] == 0


def test_heldout_files_load_with_the_eval_loaders(written):
    from unifiedreward.eval.benchmarks import get_benchmark
    from unifiedreward.eval.runner import EvalArguments, load_items, load_media, media_root
    from unifiedreward.judge.cli import check_templates, read_requests

    _, _, heldout = written
    cases = [
        ("genai_bench_image", heldout.genai_bench_image, "image"),
        ("genai_bench_video", heldout.genai_bench_video, "video"),
        ("videogen_rewardbench", heldout.videogen_rewardbench, "video"),
        ("vl_rewardbench", heldout.vl_rewardbench, "image"),
        (synth_data.video_understanding_benchmark(), heldout.video_understanding, "video"),
    ]
    for bench, path, kind in cases:
        bench = get_benchmark(bench) if isinstance(bench, str) else bench
        args = EvalArguments(data=str(path), output_dir="unused", num_frames=4)
        items = load_items(bench, args)
        assert len(items) == 6
        assert {item.gold_pref for item in items} <= {"first", "second", "tie"}
        for item in items[:2]:
            media = [load_media(ref, kind, media_root(args), args) for ref in item.media]
            assert len(media) == (1 if bench.task.endswith("understanding") else 2)
            if kind == "video":
                assert media[0].frames.shape == (4, 56, 56, 3)
    rows = [json.loads(line) for line in heldout.vl_rewardbench.read_text().splitlines()]
    videos = [json.loads(line) for line in heldout.video_understanding.read_text().splitlines()]
    for row in rows + videos:  # one writer makes both VL-RewardBench-style files: image_path vs video
        right = row["response"][row["human_ranking"].index(0)]
        assert right == row["ground_truth"]
    assert all("image_path" in r and "video" not in r for r in rows) and all("video" in r for r in videos)
    assert all(r["id"].startswith("synth-video-vu-pair-heldout-") for r in videos)
    import csv

    genai_video = [json.loads(line) for line in heldout.genai_bench_video.read_text().splitlines()]
    with heldout.videogen_rewardbench.open(encoding="utf-8") as handle:
        videogen = list(csv.DictReader(handle))
    assert [r["id"] for r in videogen] == [r["id"] for r in genai_video]  # the same pairs in both formats
    assert [r["path_A"] for r in videogen] == [r["left_video"] for r in genai_video]
    requests = read_requests(heldout.point_score)
    assert len(requests) == 4 * 6
    check_templates(requests, "qwen", "1.0", heldout.point_score)
    assert all(r.meta["truth"] is not None for r in requests)


def test_world_tokenizer_keeps_prompts_short_and_round_trips(tmp_path):
    from transformers import AutoProcessor

    from unifiedreward.synth.tokenizer import build_world_tokenizer
    from unifiedreward.testing.tiny_models import QWEN_SPECIAL_TOKENS, build_tiny_processor

    tokenizer = build_world_tokenizer()
    assert all(t in tokenizer.get_vocab() for t in QWEN_SPECIAL_TOKENS)
    text = "any text at all: ünïcödé 🎈 {braces} 12345"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text  # byte-level: everything encodes
    from unifiedreward.protocol import render_prompt

    fields = {"question": "What color is the circle?", "response": "The circle is red."}
    prompt = render_prompt(task="image_understanding", mode="point_score", images=[None], **fields)
    user = tokenizer.apply_chat_template(prompt.messages, tokenize=False, add_generation_prompt=True)
    assert len(user) > 2800 and len(tokenizer(user)["input_ids"]) < 70  # one token between numbers and fields
    # answers tokenize the same alone (as the judge scores them) and after the generation prompt (as trained)
    prompt = "<|im_start|>assistant\n"
    for answer in ("Image 1 is better.", "Final Score: 7", "Overall Judgment: Answer 2 is better than Answer 1.",
                   "Response: red (color): 0\nFinal Score: 0"):  # fmt: skip
        alone = tokenizer(answer, add_special_tokens=False)["input_ids"]
        assert tokenizer(prompt + answer, add_special_tokens=False)["input_ids"][-len(alone) :] == alone
    processor = build_tiny_processor("qwen2_vl", tokenizer=tokenizer)
    processor.save_pretrained(tmp_path)
    reloaded = AutoProcessor.from_pretrained(tmp_path).tokenizer
    assert reloaded(user)["input_ids"] == tokenizer(user)["input_ids"]


def test_reasoning_checklists_agree_with_the_ground_truth():
    world = World(seed=0)
    for task, mode in synth_data.COMBOS:
        for index in range(30):
            ex = synth_data.make_example(world, task, mode, index)
            text = synth_data.reasoning_text(ex)
            zeros = text.count(": 0")
            if mode == "point_score":
                wrong = ex.meta.get("wrong", ex.meta.get("wrong_attributes"))
                assert zeros == len(wrong), (ex.id, text)
            elif ex.verdict in ("first", "second"):
                lines = text.split("\n")
                if task.endswith("understanding"):  # the medium's own elements first, then one line per answer
                    assert lines[0].startswith(("Image: ", "Video: ")) and ": 0" not in lines[0] and ": 1" not in lines[0]
                    lines = lines[1:]
                good = 0 if ex.verdict == "first" else 1
                assert ": 0" not in lines[good] and ": 0" in lines[1 - good], (ex.id, text)
    from unifiedreward.protocol import parse_answer

    ex = synth_data.make_example(world, "image_generation", "pair_rank", 0)
    answer = synth_data.reasoning_text(ex) + "\n" + synth_data.answer_text(ex.task, ex.mode, verdict=ex.verdict)
    assert parse_answer("T-IG-PAIR-QWEN", answer).verdict.value == ex.verdict


def test_color_preset_tells_candidates_apart_by_colour_only():
    mix = synth_data.DifficultyMix.preset("color")
    world = World(seed=0)
    for index in range(40):
        ex = synth_data.make_example(world, "image_generation", "pair_rank", index, "heldout", mix)
        if ex.vote_type in ("leftvote", "rightvote"):
            assert ex.kind == "color"
            first, second = ex.meta["specs"]
            assert {k for k in first if first[k] != second[k]} == {"color"}
        elif ex.vote_type == "bothbad_vote":
            assert ex.kind == "bothbad:color+color"
        point = synth_data.make_example(world, "image_generation", "point_score", index, "train", mix)
        assert point.meta["wrong"] in ([], ["color"]) and point.score in (4.0, 5.0)
        video = synth_data.make_example(world, "video_generation", "pair_rank", index, "train", mix)
        assert video.kind in ("color", "end_color", "tie")
        for task in ("image_understanding", "video_understanding"):
            question = synth_data.make_example(world, task, "pair_rank", index, "train", mix)
            assert question.meta["question_type"] in ("color", "end_color")
    assert synth_data.DifficultyMix.preset("full") == synth_data.DifficultyMix()
    with pytest.raises(ValueError, match="unknown difficulty preset"):
        synth_data.DifficultyMix.preset("hard")
