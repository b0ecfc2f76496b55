"""Tests for unifiedreward.media.video: the Video type and video_frames (frames as PIL images)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from unifiedreward.media import Video, video_frames
from unifiedreward.protocol.render import render_prompt
from unifiedreward.testing.media import make_frames

pytestmark = pytest.mark.unit

T, H, W = 4, 24, 32


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return make_frames(T, H, W, seed=5)


def test_video_basics(clip):
    video = Video(frames=clip, frame_indices=[0, 2, 4, 6], total_num_frames=8, fps=4.0, source="a.mp4")
    assert (len(video), video.height, video.width, video.duration) == (T, H, W, 2.0)
    assert Video(frames=clip).duration is None


def _as_arrays(frames: list[Image.Image]) -> list[np.ndarray]:
    assert all(isinstance(f, Image.Image) and f.mode == "RGB" and f.size == (W, H) for f in frames)
    return [np.asarray(f) for f in frames]


def test_video_frames_of_every_clip_form(clip):
    expected = list(clip)
    for video in (Video(frames=clip), clip, list(clip), clip.astype(np.int64)):
        frames = video_frames(video)
        assert len(frames) == T
        assert all(np.array_equal(a, b) for a, b in zip(_as_arrays(frames), expected, strict=True))


def test_video_frames_keeps_pil_frames_as_given(clip):
    pil = [Image.fromarray(frame) for frame in clip]
    frames = video_frames(pil)
    assert frames == pil and all(a is b for a, b in zip(frames, pil, strict=True))
    assert video_frames(tuple(pil)) == pil


def test_video_frames_of_an_empty_clip():
    assert video_frames([]) == []
    assert video_frames(np.zeros((0, 4, 4, 3), np.uint8)) == []


@pytest.mark.parametrize(
    ("video", "error"),
    [
        (np.zeros((4, 4, 3), np.uint8), ValueError),  # one frame, not a clip
        (np.zeros((2, 4, 4, 4), np.uint8), ValueError),  # RGBA
        (np.zeros((2, 4, 4, 3), np.float32), ValueError),  # would be silently truncated by a cast
        (np.full((2, 4, 4, 3), 256, np.int64), ValueError),  # out of the uint8 range
        ([np.zeros((4, 4), np.uint8)], ValueError),
        ([Image.new("RGB", (4, 4)), np.zeros((4, 4, 3), np.uint8)], TypeError),
        ("clip.mp4", TypeError),
        (42, TypeError),
    ],
)
def test_video_frames_rejects_what_is_not_a_clip(video, error):
    with pytest.raises(error):
        video_frames(video)


def test_llava_prompt_flattens_video_frames_through_video_frames(clip):
    video = Video(frames=clip, frame_indices=list(range(T)), total_num_frames=T)
    prompt = render_prompt(task="video_generation", mode="point_score", family="llava", videos=[video], prompt="a")
    assert len(prompt.images) == T and prompt.videos == []
    assert all(np.array_equal(a, b) for a, b in zip(_as_arrays(prompt.images), list(clip), strict=True))
