"""From ChatPrompts to model inputs (unifiedreward.inputs), answered by tiny reloaded models of each architecture."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import pytest
import torch
from PIL import Image

from unifiedreward.chat import ChatPrompt
from unifiedreward.errors import UnifiedRewardError
from unifiedreward.inputs import DEFAULT_VIDEO_FPS, prepare_inputs, video_metadata
from unifiedreward.media import Video
from unifiedreward.testing.tiny_models import TINY_ARCHITECTURES

pytestmark = pytest.mark.smoke

QWEN_ARCHS = ("qwen2_5_vl", "qwen2_vl", "qwen3_vl")
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
QUESTION = "Given the caption 'a red bicycle by a fence', which one is better?"


# --------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def loaded(tiny_models):
    return tiny_models


def _image(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _video(num_frames: int, side: int, seed: int, fps: float | None = 8.0) -> Video:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (num_frames, side, side, 3), dtype=np.uint8)
    if fps is None:  # e.g. a folder of frames
        return Video(frames=frames, source="frames/", backend="frames")
    # every other frame of a 2*T-frame clip
    return Video(
        frames=frames,
        frame_indices=list(range(0, 2 * num_frames, 2)),
        total_num_frames=2 * num_frames,
        fps=fps,
        source="clip.mp4",
        backend="array",
    )


def _video_side(arch: str) -> int:
    return 64 if arch == "qwen3_vl" else 56  # Qwen3-VL: multiples of 32 (patch 16 x merge 2)


def _image_pair_prompt(arch: str, question: str = QUESTION, seed: int = 0) -> ChatPrompt:
    images = [_image(64, 48, seed), _image(48, 64, seed + 1)]
    if arch == "llava_onevision":
        messages = [SYSTEM, {"role": "user", "content": "<image>\n <image>\n" + question}]
        return ChatPrompt(messages=messages, images=images, family="llava")
    content = [{"type": "image"}, {"type": "image"}, {"type": "text", "text": question}]
    return ChatPrompt(messages=[{"role": "user", "content": content}], images=images, family="qwen")


def _video_pair_prompt(arch: str, question: str = QUESTION) -> ChatPrompt:
    side = _video_side(arch)
    videos = [_video(4, side, 10), _video(4, side, 11, fps=None)]
    if arch == "llava_onevision":
        messages = [SYSTEM, {"role": "user", "content": "<video>\n <video>\n" + question}]
        return ChatPrompt(messages=messages, videos=videos, family="llava")
    content = [{"type": "video"}, {"type": "video"}, {"type": "text", "text": question}]
    return ChatPrompt(messages=[{"role": "user", "content": content}], videos=videos, family="qwen")


def _single_image_prompt(arch: str, question: str, seed: int) -> ChatPrompt:
    images = [_image(40, 60, seed)]
    if arch == "llava_onevision":
        return ChatPrompt(
            messages=[SYSTEM, {"role": "user", "content": "<image>\n" + question}], images=images, family="llava"
        )
    content = [{"type": "image"}, {"type": "text", "text": question}]
    return ChatPrompt(messages=[{"role": "user", "content": content}], images=images)


def _text_prompt(arch: str, question: str) -> ChatPrompt:
    family = "llava" if arch == "llava_onevision" else "qwen"
    return ChatPrompt(messages=[{"role": "user", "content": question}], family=family)


def _generate(model, inputs, max_new_tokens: int = 4) -> torch.Tensor:
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return out[:, inputs["input_ids"].shape[1] :]


def _count(inputs, token_id: int) -> int:
    return int((inputs["input_ids"] == token_id).sum())


def _check_answers(model, inputs) -> None:
    """Greedy generation returns 1..4 new tokens per prompt and is deterministic."""
    first = _generate(model, inputs)
    second = _generate(model, inputs)
    assert 1 <= first.shape[1] <= 4
    assert first.shape[0] == inputs["input_ids"].shape[0]
    assert torch.equal(first, second)
    assert int(first.max()) < model.config.get_text_config().vocab_size


# --------------------------------------------------------------------------------------------------- images
@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_image_pair(arch, loaded):
    model, processor = loaded(arch)
    inputs = prepare_inputs(processor, [_image_pair_prompt(arch)])
    ids = inputs["input_ids"]
    assert ids.shape[0] == 1 and inputs["attention_mask"].shape == ids.shape
    image_id = processor.image_token_id
    if arch == "llava_onevision":
        # two images in one prompt = multi-image mode: no anyres tiles, base 2x2 features + 1 newline each
        assert inputs["pixel_values"].shape == (2, 1, 3, 28, 28)
        assert inputs["image_sizes"].tolist() == [[48, 64], [64, 48]]
        assert inputs["batch_num_images"].tolist() == [2]
        assert _count(inputs, image_id) == 2 * (processor.num_image_tokens + 1)
    else:
        grid = inputs["image_grid_thw"]
        assert grid.shape == (2, 3)
        assert (grid[:, 0] == 1).all()
        merge = processor.image_processor.merge_size
        assert _count(inputs, image_id) == int(grid.prod(dim=-1).sum()) // merge**2
        assert inputs["pixel_values"].shape[0] == int(grid.prod(dim=-1).sum())
        assert grid[0, 1] <= grid[0, 2] and grid[1, 1] >= grid[1, 2]  # landscape then portrait (after rounding)
        assert inputs["mm_token_type_ids"].shape == ids.shape
        assert _count(inputs, processor.tokenizer.convert_tokens_to_ids("<|vision_start|>")) == 2
    _check_answers(model, inputs)


def test_llava_single_image_uses_anyres(loaded):
    model, processor = loaded("llava_onevision")
    inputs = prepare_inputs(processor, [_single_image_prompt("llava_onevision", "Describe.", seed=3)])
    # one image alone is tiled (anyres): base tile + best-fit grid tiles, more features than multi-image mode
    assert inputs["pixel_values"].shape[1] > 1
    assert _count(inputs, processor.image_token_id) > processor.num_image_tokens + 1
    _check_answers(model, inputs)


# --------------------------------------------------------------------------------------------------- videos
@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_video_pair(arch, loaded):
    model, processor = loaded(arch)
    inputs = prepare_inputs(processor, [_video_pair_prompt(arch)])
    assert "video_metadata" not in inputs
    assert "pixel_values" not in inputs
    video_id = processor.video_token_id
    if arch == "llava_onevision":
        assert inputs["pixel_values_videos"].shape == (2, 4, 3, 28, 28)
        # per video: T frames x pooled 1x1 features + 1 newline
        assert _count(inputs, video_id) == 2 * (4 * 1 + 1)
    else:
        grid = inputs["video_grid_thw"]
        side = _video_side(arch) // processor.video_processor.patch_size
        assert grid.tolist() == [[2, side, side], [2, side, side]]  # 4 frames / temporal patch 2
        merge = processor.video_processor.merge_size
        assert _count(inputs, video_id) == int(grid.prod(dim=-1).sum()) // merge**2
        text = processor.tokenizer.decode(inputs["input_ids"][0])
        if arch == "qwen2_5_vl":
            # sampled fps: 4 of 8 frames at 8 fps -> 4 fps; unknown fps -> DEFAULT_VIDEO_FPS
            expected = [2 / 4.0, 2 / DEFAULT_VIDEO_FPS]
            assert inputs["second_per_grid_ts"].tolist() == pytest.approx(expected)
        if arch == "qwen3_vl":
            # timestamps per temporal patch: frames 0,2 / 4,6 at 8 fps; frames 0,1 / 2,3 at 2 fps
            assert "<0.1 seconds>" in text and "<0.6 seconds>" in text
            assert "<0.2 seconds>" in text and "<1.2 seconds>" in text
            assert text.count("<|vision_start|>") == 2 + 2 * 2  # template markers + one per temporal patch
    _check_answers(model, inputs)


def test_llava_video_frames_as_images(loaded):
    model, processor = loaded("llava_onevision")
    video = _video(8, 32, 5)
    frames = [Image.fromarray(frame) for frame in video.frames]
    prompt = ChatPrompt(
        messages=[SYSTEM, {"role": "user", "content": "<image>\n" * 8 + QUESTION}], images=frames, family="llava"
    )
    inputs = prepare_inputs(processor, [prompt])
    assert inputs["pixel_values"].shape == (8, 1, 3, 28, 28)
    assert inputs["batch_num_images"].tolist() == [8]
    assert _count(inputs, processor.image_token_id) == 8 * (processor.num_image_tokens + 1)
    _check_answers(model, inputs)


# --------------------------------------------------------------------------------------------------- batching
def _last_logits(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits[:, -1, :]


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_batched_left_padding_matches_single(arch, loaded):
    model, processor = loaded(arch)
    prompts = [  # a text-only prompt first: the processor gets a nested image list starting with []
        _text_prompt(arch, "A text-only question in the same batch."),
        _image_pair_prompt(arch, question="Which one?", seed=20),
        _single_image_prompt(arch, QUESTION + " Think about the colors, the shapes and the layout first.", 21),
        _video_pair_prompt(arch, question="And these two videos?"),
    ]
    batch = prepare_inputs(processor, prompts)
    lengths = [int(m.sum()) for m in batch["attention_mask"]]
    assert len(set(lengths)) == len(prompts)  # really different lengths
    assert (batch["attention_mask"][:, -1] == 1).all()  # left padding: every prompt ends at the right edge
    pad = processor.tokenizer.pad_token_id
    for row, length in zip(batch["input_ids"], lengths, strict=True):
        assert (row[: len(row) - length] == pad).all()

    batch_logits = _last_logits(model, batch)
    batch_answers = _generate(model, batch)
    for index, prompt in enumerate(prompts):
        alone = prepare_inputs(processor, [prompt])
        assert alone["input_ids"].shape[1] == lengths[index]
        assert torch.equal(alone["input_ids"][0], batch["input_ids"][index, -lengths[index] :])
        torch.testing.assert_close(batch_logits[index], _last_logits(model, alone)[0], atol=1e-4, rtol=1e-4)
        answer = _generate(model, alone)[0]
        assert torch.equal(batch_answers[index, : len(answer)], answer), index


def test_padding_side_is_a_call_argument(loaded):
    _, processor = loaded("qwen2_vl")
    before = processor.tokenizer.padding_side
    prompts = [_text_prompt("qwen2_vl", "short"), _text_prompt("qwen2_vl", "a much longer question " * 4)]
    left = prepare_inputs(processor, prompts)
    right = prepare_inputs(processor, prompts, padding_side="right")
    assert processor.tokenizer.padding_side == before
    assert left["attention_mask"][0, 0] == 0 and left["attention_mask"][0, -1] == 1
    assert right["attention_mask"][0, 0] == 1 and right["attention_mask"][0, -1] == 0
    with pytest.raises(ValueError, match="padding_side"):
        prepare_inputs(processor, prompts, padding_side="middle")


def test_no_generation_prompt_and_numpy(loaded):
    _, processor = loaded("qwen2_5_vl")
    prompt = _text_prompt("qwen2_5_vl", "hello")
    with_header = prepare_inputs(processor, [prompt])
    without = prepare_inputs(processor, [prompt], add_generation_prompt=False)
    header = processor.tokenizer("<|im_start|>assistant\n").input_ids
    assert with_header["input_ids"][0].tolist() == without["input_ids"][0].tolist() + header
    as_numpy = prepare_inputs(processor, [prompt], return_tensors="np")
    assert isinstance(as_numpy["input_ids"], np.ndarray)


# --------------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_placeholder_media_mismatch(arch, loaded):
    _, processor = loaded(arch)
    good = _text_prompt(arch, "fine")
    too_few = _image_pair_prompt(arch)
    too_few.images = too_few.images[:1]
    with pytest.raises(UnifiedRewardError, match=r"prompt 1 .*2 image placeholder.*1 image"):
        prepare_inputs(processor, [good, too_few])
    missing_video = _video_pair_prompt(arch)
    missing_video.videos = []
    with pytest.raises(UnifiedRewardError, match=r"prompt 0 .*2 video placeholder.*0 video"):
        prepare_inputs(processor, [missing_video])
    stray = _text_prompt(arch, "no placeholder here")
    stray.images = [_image(32, 32, 0)]
    with pytest.raises(UnifiedRewardError, match=r"prompt 0 .*0 image placeholder.*1 image"):
        prepare_inputs(processor, [stray])


def test_wrong_prompt_form_for_processor(loaded):
    _, processor = loaded("qwen2_5_vl")
    llava_form = _image_pair_prompt("llava_onevision")  # literal <image> tokens mean nothing to Qwen
    with pytest.raises(UnifiedRewardError, match=r"family 'llava'.*0 image placeholder"):
        prepare_inputs(processor, [llava_form])


def test_bad_inputs(loaded):
    _, processor = loaded("qwen2_vl")
    with pytest.raises(ValueError, match="at least one"):
        prepare_inputs(processor, [])
    bad_video = _video_pair_prompt("qwen2_vl")
    bad_video.videos = [np.zeros((4, 8, 8), dtype=np.uint8), bad_video.videos[1]]
    with pytest.raises(UnifiedRewardError, match=r"prompt 0: video frames must have shape"):
        prepare_inputs(processor, [bad_video])
    not_a_video = _video_pair_prompt("qwen2_vl")
    not_a_video.videos = ["clip.mp4", "clip2.mp4"]
    with pytest.raises(UnifiedRewardError, match="must be a unifiedreward.media.Video"):
        prepare_inputs(processor, [not_a_video])


def test_video_as_array(loaded):
    model, processor = loaded("qwen2_vl")
    frames = _video(4, 56, 1).frames
    prompt = ChatPrompt(
        messages=[{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "ok?"}]}], videos=[frames]
    )
    inputs = prepare_inputs(processor, [prompt])
    assert inputs["video_grid_thw"].tolist() == [[2, 4, 4]]
    _check_answers(model, inputs)


# --------------------------------------------------------------------------------------------------- metadata
def test_video_metadata_known_fps():
    meta = video_metadata(_video(4, 16, 0, fps=8.0))
    assert meta.fps == 8.0
    assert meta.frames_indices == [0, 2, 4, 6]
    assert meta.total_num_frames == 8
    assert meta.sampled_fps == pytest.approx(4.0)
    assert (meta.height, meta.width) == (16, 16)


def test_video_metadata_unknown_fps():
    meta = video_metadata(_video(5, 16, 0, fps=None))
    assert meta.fps == DEFAULT_VIDEO_FPS
    assert meta.frames_indices == [0, 1, 2, 3, 4]
    assert meta.total_num_frames == 5
    assert meta.sampled_fps == pytest.approx(DEFAULT_VIDEO_FPS)


def test_video_metadata_consecutive_and_inconsistent():
    frames = np.zeros((3, 8, 8, 3), dtype=np.uint8)
    meta = video_metadata(Video(frames=frames, fps=30.0, total_num_frames=100))
    assert meta.frames_indices == [0, 1, 2] and meta.total_num_frames == 100
    with pytest.raises(UnifiedRewardError, match="3 frames but 2 frame indices"):
        video_metadata(Video(frames=frames, frame_indices=[0, 5], fps=30.0))
