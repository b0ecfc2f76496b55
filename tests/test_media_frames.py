"""Tests for unifiedreward.media.frames: the deterministic frame sampler."""

from __future__ import annotations

import logging

import pytest

from unifiedreward.media import sample_frame_indices

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("total", "kwargs", "expected"),
    [
        (5, {}, [0, 1, 2, 3, 4]),
        (10, {"num_frames": 4}, [0, 3, 6, 9]),
        (12, {"num_frames": 3}, [0, 6, 11]),  # linspace 0, 5.5, 11: numpy rounds half to even
        (5, {"num_frames": 8}, [0, 1, 2, 3, 4]),  # total below the cap: every frame
        (5, {"num_frames": 5}, [0, 1, 2, 3, 4]),
        (7, {"num_frames": 1}, [0]),
        (1, {"num_frames": 4}, [0]),
        (100, {"native_fps": 30, "fps": 1}, [0, 30, 60, 90]),
        (16, {"native_fps": 8, "fps": 3}, [0, 3, 5, 8, 11, 13]),  # k * 8/3 = 0, 2.67, 5.33, 8, 10.67, 13.33
        (300, {"native_fps": 29.97, "fps": 1}, [0, 30, 60, 90, 120, 150, 180, 210, 240, 270]),
        (16, {"native_fps": 8, "fps": 2, "num_frames": 8}, [0, 4, 8, 12]),  # under the cap: fps result kept
        (16, {"native_fps": 8, "fps": 2, "num_frames": 4}, [0, 4, 8, 12]),  # exactly at the cap
        (16, {"native_fps": 8, "fps": 3, "num_frames": 4}, [0, 5, 10, 15]),  # over the cap: linspace, whole clip
        (100, {"native_fps": 30, "fps": 2, "num_frames": 3}, [0, 50, 99]),
        (10, {"native_fps": 25, "fps": 30}, list(range(10))),  # fps above native: every frame, no duplicates
        (10, {"native_fps": 25, "fps": 30, "num_frames": 4}, [0, 3, 6, 9]),
    ],
)
def test_sample_frame_indices(total, kwargs, expected):
    assert sample_frame_indices(total, **kwargs) == expected


def test_sample_frame_indices_ignores_fps_without_native_fps(caplog):
    with caplog.at_level(logging.WARNING, logger="unifiedreward.media"):
        assert sample_frame_indices(10, fps=2, num_frames=4) == [0, 3, 6, 9]
        assert sample_frame_indices(3, fps=2) == [0, 1, 2]
    assert "native frame rate" in caplog.text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"total_frames": 0},
        {"total_frames": -3},
        {"total_frames": 2.5},
        {"total_frames": 10, "num_frames": 0},
        {"total_frames": 10, "fps": 0},
        {"total_frames": 10, "fps": -1.0, "native_fps": 8},
        {"total_frames": 10, "fps": 1, "native_fps": 0},
    ],
)
def test_sample_frame_indices_rejects_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        sample_frame_indices(**kwargs)
