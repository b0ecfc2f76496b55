"""Tests for unifiedreward.media.decoders: video files (decord / PyAV), frame folders and lists, bad videos."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unifiedreward.errors import MediaError, UnifiedRewardError
from unifiedreward.media import Video, decoders, load_video
from unifiedreward.testing.media import (
    make_frames,
    square_center,
    square_origin,
    square_side,
    write_frame_folder,
    write_garbage,
    write_truncated_copy,
    write_video,
)

pytestmark = pytest.mark.unit

T, H, W = 12, 48, 64  # the test clip: 12 frames of 64x48 at 8 fps
FPS = 8
BACKENDS = ("auto", "decord", "pyav")


def assert_media_error(excinfo, path):
    err = excinfo.value
    assert type(err) is MediaError
    assert isinstance(err, UnifiedRewardError)
    assert err.path == str(path)
    assert str(path) in str(err)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------------------------------------------
# videos


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return make_frames(T, H, W, seed=1)


@pytest.fixture(scope="module")
def videos(tmp_path_factory, clip) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    mp4 = write_video(d / "clip.mp4", clip, fps=FPS)
    out = {
        "mp4": mp4,
        "mp4_faststart": write_video(d / "fast.mp4", clip, fps=FPS, faststart=True),
        "mkv": write_video(d / "clip.mkv", clip, fps=FPS),
        "avi": write_video(d / "clip.avi", clip, fps=FPS, codec="mpeg4"),
        "webm": write_video(d / "clip.webm", clip, fps=FPS, codec="libvpx"),
        "frames_png": write_frame_folder(d / "frames_png", clip, ext="png", name_fmt="{}", start=1),
        "frames_jpg": write_frame_folder(d / "frames_jpg", clip),
    }
    return out


def check_clip(video: Video, clip: np.ndarray, indices: list[int], tol: float = 4.0) -> None:
    """The decoded frames are the source frames at ``indices``: small error, square in the same place."""
    assert video.frame_indices == indices
    assert video.frames.dtype == np.uint8 and video.frames.shape == (len(indices), H, W, 3)
    diff = np.abs(video.frames.astype(np.int16) - clip[indices].astype(np.int16))
    assert diff.mean() < tol
    side = square_side(H, W)
    for got, index in zip(video.frames, indices, strict=True):
        y, x = square_origin(index, T, H, W)
        cy, cx = square_center(got)
        assert abs(cy - (y + (side - 1) / 2)) <= 1.0 and abs(cx - (x + (side - 1) / 2)) <= 1.0, (index, cy, cx)


def test_make_frames_moves_a_square(clip):
    assert clip.shape == (T, H, W, 3) and clip.dtype == np.uint8
    xs = [square_center(frame)[1] for frame in clip]
    assert xs == sorted(xs) and len(set(xs)) == T  # every frame differs, left to right
    assert np.array_equal(make_frames(T, H, W, seed=1), clip)
    assert not np.array_equal(make_frames(T, H, W, seed=2), clip)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_mp4_decodes_all_frames(videos, clip, backend):
    video = load_video(videos["mp4"], backend=backend)
    assert video.backend == backend
    assert video.total_num_frames == T and video.fps == FPS
    assert video.source == str(videos["mp4"])
    check_clip(video, clip, list(range(T)))


def test_decord_and_pyav_agree(videos):
    a = load_video(videos["mp4"], backend="decord", num_frames=5)
    b = load_video(videos["mp4"], backend="pyav", num_frames=5)
    assert a.frame_indices == b.frame_indices == [0, 3, 6, 8, 11]
    assert a.total_num_frames == b.total_num_frames == T
    assert np.abs(a.frames.astype(np.int16) - b.frames.astype(np.int16)).mean() < 1.0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("kwargs", "indices"),
    [
        ({"num_frames": 4}, [0, 4, 7, 11]),
        ({"num_frames": 100}, list(range(T))),
        ({"fps": 2}, [0, 4, 8]),
        ({"fps": 3, "num_frames": 2}, [0, 11]),
    ],
)
def test_mp4_sampling(videos, clip, backend, kwargs, indices):
    video = load_video(videos["mp4"], backend=backend, **kwargs)
    assert video.backend == ("decord" if backend == "auto" else backend)
    assert video.total_num_frames == T
    check_clip(video, clip, indices)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
@pytest.mark.parametrize("kind", ["mp4_faststart", "mkv", "avi", "webm"])
def test_other_containers(videos, clip, kind, backend):
    # mkv and webm store no frame count: PyAV counts by decoding
    video = load_video(videos[kind], backend=backend, num_frames=6)
    assert video.total_num_frames == T and video.fps == FPS and video.backend == backend
    check_clip(video, clip, [0, 2, 4, 7, 9, 11], tol=6.0)


def test_auto_uses_pyav_when_decord_is_missing(videos, clip, monkeypatch):
    def no_decord():
        raise ImportError("No module named 'decord'")

    monkeypatch.setattr(decoders, "_import_decord", no_decord)
    video = load_video(videos["mp4"], num_frames=4)
    assert video.backend == "pyav"
    check_clip(video, clip, [0, 4, 7, 11])


def test_auto_falls_back_to_pyav_when_decord_fails(videos, clip, monkeypatch, caplog):
    def broken(path, *args):
        raise MediaError(path, "decord exploded")

    monkeypatch.setattr(decoders, "_read_decord", broken)
    monkeypatch.setattr(decoders, "_DECORD_FALLBACKS", 0)
    with caplog.at_level(logging.WARNING, logger="unifiedreward.media"):
        video = load_video(videos["mp4"], num_frames=4)
        again = load_video(videos["mp4"], num_frames=4)
    assert video.backend == again.backend == "pyav"
    assert "decord exploded" in caplog.text and "falling back to PyAV" in caplog.text
    # one warning per process, not one per file
    assert len([r for r in caplog.records if "falling back" in r.getMessage()]) == 1
    assert decoders._DECORD_FALLBACKS == 2
    check_clip(video, clip, [0, 4, 7, 11])


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_video_max_pixels(videos, backend):
    video = load_video(videos["mp4"], backend=backend, num_frames=3, max_pixels=768)
    assert video.frames.shape == (3, 24, 32, 3)
    assert (video.height, video.width) == (24, 32)


def test_importing_media_loads_no_decoder():
    code = "import sys, unifiedreward.media; assert not {'av', 'decord', 'transformers'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_frame_folder_uses_numeric_order(videos, clip):
    folder = videos["frames_png"]
    names = sorted(p.name for p in folder.iterdir())
    assert names[:4] == ["1.png", "10.png", "11.png", "12.png"]  # plain string order is wrong
    (folder / "notes.txt").write_text("not a frame")
    (folder / ".hidden.png").write_bytes(b"junk")
    for backend in BACKENDS:  # the backend only matters for video files
        video = load_video(folder, backend=backend)
        assert video.backend == "frames" and video.fps is None and video.source == str(folder)
        assert video.total_num_frames == T and video.frame_indices == list(range(T))
        assert np.array_equal(video.frames, clip)  # PNG is lossless


def test_frame_folder_jpg_sampling_and_fps_warning(videos, clip, caplog):
    with caplog.at_level(logging.WARNING, logger="unifiedreward.media"):
        video = load_video(str(videos["frames_jpg"]), num_frames=4, fps=2)
    assert "fps=2 ignored" in caplog.text
    check_clip(video, clip, [0, 4, 7, 11])
    assert video.total_num_frames == T


def test_list_of_frame_paths_keeps_given_order(videos, clip):
    folder = videos["frames_png"]
    paths = [folder / f"{i}.png" for i in range(T, 0, -1)]
    video = load_video(paths)
    assert video.backend == "frames" and video.source == str(folder)
    assert np.array_equal(video.frames, clip[::-1])
    sampled = load_video([str(p) for p in paths], num_frames=3)
    assert sampled.frame_indices == [0, 6, 11]
    assert np.array_equal(sampled.frames, clip[::-1][[0, 6, 11]])


def test_ndarray_input(clip, caplog):
    with caplog.at_level(logging.WARNING, logger="unifiedreward.media"):
        video = load_video(clip, num_frames=3, fps=4)
    assert "ignored" in caplog.text
    assert video.backend == "array" and video.source is None and video.fps is None
    assert video.total_num_frames == T and video.frame_indices == [0, 6, 11]
    assert np.array_equal(video.frames, clip[[0, 6, 11]])
    video.frames[:] = 0
    assert clip.max() > 0  # no aliasing of the caller's array
    assert np.array_equal(load_video(clip).frames, clip)
    assert load_video(clip, max_pixels=768).frames.shape == (T, 24, 32, 3)


def test_list_of_pil_images(clip):
    images = [Image.fromarray(frame) for frame in clip]
    video = load_video(images, num_frames=4)
    assert video.backend == "array" and video.frame_indices == [0, 4, 7, 11]
    assert np.array_equal(video.frames, clip[[0, 4, 7, 11]])
    pil = video.to_pil_frames()
    assert len(pil) == 4 and all(p.mode == "RGB" and p.size == (W, H) for p in pil)
    assert np.array_equal(np.asarray(pil[2]), clip[7])


def test_mixed_frame_sizes_are_resized_to_the_first(clip):
    images = [Image.fromarray(clip[0]), Image.fromarray(clip[1]).resize((32, 24))]
    video = load_video(images)
    assert video.frames.shape == (2, H, W, 3)


@pytest.mark.parametrize(
    ("src", "error"),
    [
        (np.zeros((2, 8, 8, 3), dtype=np.float32), ValueError),
        (np.zeros((8, 8, 3), dtype=np.uint8), ValueError),
        (np.zeros((0, 8, 8, 3), dtype=np.uint8), MediaError),
        ([], MediaError),
        ([Image.new("RGB", (4, 4)), "a.png"], TypeError),
        (42, TypeError),
    ],
)
def test_invalid_in_memory_sources(src, error):
    with pytest.raises(error):
        load_video(src)


@pytest.mark.parametrize(
    "kwargs", [{"backend": "opencv"}, {"num_frames": 0}, {"fps": 0}, {"fps": float("nan")}, {"max_pixels": -1}]
)
def test_load_video_rejects_invalid_arguments(clip, kwargs):
    with pytest.raises(ValueError):
        load_video(clip, **kwargs)


def test_metadata_and_video_metadata(videos):
    video = load_video(videos["mp4"], backend="decord", num_frames=4)
    assert len(video) == 4 and (video.height, video.width) == (H, W)
    assert video.duration == 1.5
    assert video.metadata() == {
        "total_num_frames": T,
        "fps": 8.0,
        "frames_indices": [0, 4, 7, 11],
        "duration": 1.5,
        "video_backend": "decord",
    }
    from transformers.video_utils import VideoMetadata

    md = video.to_video_metadata()
    assert isinstance(md, VideoMetadata)
    assert (md.total_num_frames, md.fps, md.frames_indices, md.duration) == (T, 8.0, [0, 4, 7, 11], 1.5)
    assert (md.width, md.height, md.video_backend) == (W, H, "decord")
    assert md.timestamps == [0.0, 0.5, 0.875, 1.375]


def test_metadata_with_unknown_fps(videos):
    video = load_video(videos["frames_png"], num_frames=3)
    assert video.duration is None
    assert video.metadata() == {
        "total_num_frames": T,
        "fps": None,
        "frames_indices": [0, 6, 11],
        "duration": None,
        "video_backend": "frames",
    }
    assert video.to_video_metadata().fps is None
    md = video.to_video_metadata(default_fps=2)
    assert md.fps == 2.0 and md.duration == 6.0 and md.timestamps == [0.0, 3.0, 5.5]


def test_qwen2vl_video_processor_accepts_video(videos):
    from transformers import Qwen2VLVideoProcessor

    processor = Qwen2VLVideoProcessor(
        min_pixels=28 * 28 * 4,
        max_pixels=28 * 28 * 16,
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
        cap_pixels_per_frame=True,
    )
    video = load_video(videos["mp4"], num_frames=8)
    assert video.frame_indices == [0, 2, 3, 5, 6, 8, 9, 11]
    for metadata in (video.to_video_metadata(), video.metadata()):
        out = processor(videos=[video.frames], video_metadata=[metadata], do_sample_frames=False, return_tensors="pt")
        # 64x48 -> 56x56 (4x4 patches of 14), 8 frames -> 4 temporal patches of 2
        assert out["video_grid_thw"].tolist() == [[4, 4, 4]]
        assert tuple(out["pixel_values_videos"].shape) == (4 * 4 * 4, 3 * 2 * 14 * 14)


# ---------------------------------------------------------------------------------------------------------------
# bad videos


def _corrupt_frame_folder(d: Path, clip: np.ndarray) -> tuple[Path, Path]:
    folder = write_frame_folder(d / "corrupt_frames", clip[:4])
    bad = write_garbage(folder / "0002.jpg", nbytes=512)
    return folder, bad


def _no_images_folder(d: Path) -> tuple[Path, Path]:
    folder = d / "no_images"
    folder.mkdir()
    (folder / "readme.txt").write_text("frames go here")
    return folder, folder


def _missing_frame_list(d: Path, clip: np.ndarray) -> tuple[list[Path], Path]:
    folder = write_frame_folder(d / "listed", clip[:3])
    missing = folder / "0003.jpg"
    return [folder / "0000.jpg", folder / "0001.jpg", missing], missing


BAD_VIDEOS = {
    "missing": lambda d, v, c: (d / "missing.mp4",) * 2,
    "empty": lambda d, v, c: (_write(d / "empty.mp4", b""),) * 2,
    "truncated_mp4": lambda d, v, c: (write_truncated_copy(v["mp4"], d / "cut.mp4"),) * 2,
    "truncated_mp4_faststart": lambda d, v, c: (write_truncated_copy(v["mp4_faststart"], d / "cut_fast.mp4"),) * 2,
    "truncated_mkv": lambda d, v, c: (write_truncated_copy(v["mkv"], d / "cut.mkv"),) * 2,
    "garbage": lambda d, v, c: (write_garbage(d / "garbage.mp4", nbytes=4096),) * 2,
    "text_as_avi": lambda d, v, c: (_write(d / "notes.avi", b"hello world\n" * 50),) * 2,
    "zero_frames": lambda d, v, c: (write_video(d / "zero.avi", c[:0], codec="mpeg4"),) * 2,
    "no_video_stream": lambda d, v, c: (write_video(d / "nostream.mp4", c[:0]),) * 2,
    "folder_without_images": lambda d, v, c: _no_images_folder(d),
    "folder_with_corrupt_frame": lambda d, v, c: _corrupt_frame_folder(d, c),
    "list_with_missing_frame": lambda d, v, c: _missing_frame_list(d, c),
}


@pytest.fixture(scope="module")
def bad_videos(tmp_path_factory, videos, clip) -> dict[str, tuple]:
    d = tmp_path_factory.mktemp("bad_videos")
    return {kind: make(d, videos, clip) for kind, make in BAD_VIDEOS.items()}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", sorted(BAD_VIDEOS))
def test_bad_video_raises_media_error_naming_the_file(bad_videos, kind, backend):
    src, culprit = bad_videos[kind]
    with pytest.raises(MediaError) as excinfo:
        load_video(src, backend=backend, num_frames=8)
    assert_media_error(excinfo, culprit)
    if kind in ("truncated_mp4", "truncated_mp4_faststart", "garbage", "folder_with_corrupt_frame"):
        assert excinfo.value.__cause__ is not None
    if kind == "folder_with_corrupt_frame":
        assert "frame 2 of" in str(excinfo.value)


def test_truncated_faststart_mp4_is_caught_by_pyav_frame_count(bad_videos):
    # the moov atom survives the cut, so PyAV opens the file and sees all 12 frames declared
    with pytest.raises(MediaError, match="truncated"):
        load_video(bad_videos["truncated_mp4_faststart"][0], backend="pyav")


def test_unsampled_corrupt_frame_is_not_read(bad_videos):
    folder, _bad = bad_videos["folder_with_corrupt_frame"]
    video = load_video(folder, num_frames=2)  # frames 0 and 3 only
    assert video.frame_indices == [0, 3] and video.total_num_frames == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_cut_mkv_is_caught_by_duration_check(tmp_path, backend):
    # mkv stores no frame count, and both decord and PyAV silently return the readable prefix of a cut file:
    # the frames that decode must cover the duration the container declares (48 frames at 8 fps = 6 s)
    full = write_video(tmp_path / "long.mkv", make_frames(48, 64, 64), fps=FPS, codec="mpeg4")
    assert load_video(full, backend=backend).total_num_frames == 48
    cut = write_truncated_copy(full, tmp_path / "long_cut.mkv", fraction=0.5)
    with pytest.raises(MediaError, match=r"declares 6 s at 8 fps \(about 48 frames\): truncated") as excinfo:
        load_video(cut, backend=backend)
    assert_media_error(excinfo, cut)
