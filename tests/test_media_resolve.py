"""Tests for unifiedreward.media.resolve: every kind of media reference, root-relative lookup, and bad references."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unifiedreward.errors import MediaError
from unifiedreward.media import Video, load_image, load_video, resolve_media, resolve_path
from unifiedreward.testing.media import make_frames, make_image, write_frame_folder, write_garbage, write_video

pytestmark = pytest.mark.unit

T, H, W = 12, 48, 64  # 12 frames of 64x48 at 8 fps
FPS = 8
RED = (255, 0, 0)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return make_frames(T, H, W, seed=3)


@pytest.fixture(scope="module")
def root(tmp_path_factory, clip) -> Path:
    """A media root as benchmarks lay it out: files at the top, in ``images/``, ``videos/`` and frame folders."""
    base = tmp_path_factory.mktemp("media_root")
    make_image(64, 48, RED).save(base / "red.png")
    (base / "images").mkdir()
    make_image(40, 30, (0, 0, 255)).save(base / "images" / "blue.png")
    make_image(40, 30, (0, 255, 0)).save(base / "images" / "with space.png")
    (base / "videos").mkdir()
    write_video(base / "videos" / "clip.mp4", clip, fps=FPS)
    write_frame_folder(base / "frames", clip, ext="png")
    (base / "empty_frames").mkdir()
    (base / "empty_frames" / "readme.txt").write_text("no frames here")
    write_garbage(base / "corrupt.png", nbytes=256)
    write_garbage(base / "corrupt.mp4", nbytes=2048)
    return base


def same_image(a: Image.Image, b: Image.Image) -> bool:
    return a.mode == b.mode == "RGB" and a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))


def same_video(a: Video, b: Video) -> bool:
    fields = ("frame_indices", "total_num_frames", "fps", "source", "backend")
    return np.array_equal(a.frames, b.frames) and all(getattr(a, f) == getattr(b, f) for f in fields)


# ---------------------------------------------------------------------------------------------------------------
# paths


def test_relative_path_is_relative_to_root(root):
    expected = load_image(root / "red.png")
    for reference in ("red.png", Path("red.png"), f"  {root / 'red.png'}\n", root / "red.png"):
        assert same_image(resolve_media(reference, "image", root=root), expected)
    assert resolve_path("red.png", root) == root / "red.png"


def test_file_name_is_searched_in_root_images_and_videos(root):
    # hub datasets carry paths of the author's layout: the file name is looked up in root, root/videos, root/images
    assert resolve_path("some/where/blue.png", root) == root / "images" / "blue.png"
    assert resolve_path("/elsewhere/clip.mp4", root) == root / "videos" / "clip.mp4"
    assert same_image(resolve_media("x/blue.png", "image", root=root), load_image(root / "images" / "blue.png"))


def test_urls_are_looked_up_by_file_name_never_downloaded(root):
    url = "https://example.org/bench/images/with%20space.png?raw=1"
    assert resolve_path(url, root) == root / "images" / "with space.png"
    video = resolve_media("http://example.org/v/clip.mp4", "video", root=root, num_frames=2)
    assert video.source == str(root / "videos" / "clip.mp4")
    with pytest.raises(MediaError, match="never downloaded") as excinfo:
        resolve_media(url, "image")
    assert excinfo.value.path == url


def test_file_uri_and_home_expansion(root, tmp_path, monkeypatch):
    expected = load_image(root / "red.png")
    assert same_image(resolve_media((root / "red.png").as_uri(), "image"), expected)
    assert resolve_path((root / "images" / "with space.png").as_uri()) == root / "images" / "with space.png"
    monkeypatch.setenv("HOME", str(root))
    assert same_image(resolve_media("~/red.png", "image"), expected)
    assert same_image(resolve_media("~/red.png", "image", root=tmp_path), expected)  # absolute after expansion


def test_without_root_paths_are_relative_to_the_working_directory(root, monkeypatch):
    monkeypatch.chdir(root / "images")
    assert same_image(resolve_media("blue.png", "image"), load_image(root / "images" / "blue.png"))
    assert resolve_path("nope.png") == Path("nope.png")  # unchecked: the loader reports it


def test_search_false_keeps_the_root_relative_path(root):
    assert resolve_path("x/blue.png", root, search=False) == root / "x" / "blue.png"
    assert resolve_path(root / "red.png", "/elsewhere", search=False) == root / "red.png"


# ---------------------------------------------------------------------------------------------------------------
# images


def test_image_from_bytes_pil_and_arrays(root):
    data = (root / "red.png").read_bytes()
    expected = load_image(root / "red.png")
    for reference in (data, bytearray(data), memoryview(data)):
        assert same_image(resolve_media(reference, "image"), expected)
    src = Image.open(root / "red.png")
    out = resolve_media(src, "image")
    assert same_image(out, expected) and out is not src
    rgb = np.asarray(expected)
    assert same_image(resolve_media(rgb, "image"), expected)
    rgba = np.concatenate([rgb, np.full((H, W, 1), 255, np.uint8)], axis=-1)
    assert same_image(resolve_media(rgba, "image"), expected)
    grey = resolve_media(np.full((4, 5), 7, np.uint8), "image")
    assert grey.mode == "RGB" and grey.size == (5, 4) and grey.getpixel((0, 0)) == (7, 7, 7)
    assert resolve_media(np.full((4, 5, 1), 9, np.uint8), "image").getpixel((0, 0)) == (9, 9, 9)


def test_image_is_normalised_like_a_file():
    palette = Image.new("P", (64, 48), 1)
    palette.putpalette([0, 0, 0, 0, 255, 0])
    out = resolve_media(palette, "image", max_pixels=768)
    assert palette.mode == "P" and out.mode == "RGB" and out.size == (32, 24)
    assert out.getpixel((0, 0)) == (0, 255, 0)


def test_table_cells(root):
    data = (root / "red.png").read_bytes()
    expected = load_image(root / "red.png")
    # bytes win over the path (which is the author's path and may not exist here)
    assert same_image(resolve_media({"bytes": data, "path": "/author/x.png"}, "image"), expected)
    # no bytes: the path, resolved like any path
    for cell in ({"bytes": None, "path": "red.png"}, {"bytes": b"", "path": "red.png"}, {"path": "a/red.png"}):
        assert same_image(resolve_media(cell, "image", root=root), expected)


@pytest.mark.parametrize("array", [np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4, 3), np.float32)])
def test_malformed_image_array_is_a_value_error(array):
    with pytest.raises(ValueError, match="image array"):
        resolve_media(array, "image")


# ---------------------------------------------------------------------------------------------------------------
# videos


def test_video_file_relative_to_root_with_sampling(root):
    options = {"num_frames": 3, "fps": 4, "max_pixels": 768}
    video = resolve_media("videos/clip.mp4", "video", root=root, **options)
    assert same_video(video, load_video(root / "videos" / "clip.mp4", **options))
    assert video.frame_indices == [0, 6, 11] and video.frames.shape == (3, 24, 32, 3) and video.fps == FPS
    forced = resolve_media("videos/clip.mp4", "video", root=root, num_frames=2, backend="pyav")
    assert forced.backend == "pyav" and forced.frame_indices == [0, 11]


def test_video_from_bytes_and_cell(root):
    path = root / "videos" / "clip.mp4"
    expected = load_video(path, num_frames=4, fps=FPS / 2)
    video = resolve_media(path.read_bytes(), "video", num_frames=4, fps=FPS / 2)
    assert np.array_equal(video.frames, expected.frames) and video.frame_indices == expected.frame_indices
    assert video.source is None and video.fps == FPS and video.backend == expected.backend
    cell = resolve_media({"bytes": path.read_bytes(), "path": "clip.mp4"}, "video", num_frames=4, fps=FPS / 2)
    assert cell.source == "clip.mp4" and np.array_equal(cell.frames, expected.frames)
    by_path = resolve_media({"bytes": None, "path": "clip.mp4"}, "video", root=root, num_frames=4, fps=FPS / 2)
    assert same_video(by_path, expected)


def test_frame_folder_ignores_fps_without_a_warning(root, clip, caplog):
    with caplog.at_level(logging.WARNING, logger="unifiedreward.media"):
        video = resolve_media("frames", "video", root=root, num_frames=4, fps=2)
    assert not caplog.records
    assert same_video(video, load_video(root / "frames", num_frames=4))
    assert video.backend == "frames" and video.frame_indices == [0, 4, 7, 11]
    assert np.array_equal(video.frames, clip[[0, 4, 7, 11]])  # PNG is lossless


def test_list_of_frame_paths_relative_to_root(root, clip):
    names = [f"frames/{i:04d}.png" for i in range(T - 1, -1, -1)]  # reversed order is kept
    video = resolve_media(names, "video", root=root, num_frames=3, fps=2)
    assert same_video(video, load_video([root / n for n in names], num_frames=3))
    assert video.source == str(root / "frames") and np.array_equal(video.frames, clip[::-1][[0, 6, 11]])
    assert same_video(resolve_media(tuple(names), "video", root=root), load_video([root / n for n in names]))


def test_in_memory_frames(root, clip):
    pil = [Image.fromarray(frame) for frame in clip]
    expected = load_video(pil, num_frames=4)
    assert same_video(resolve_media(pil, "video", num_frames=4, fps=3), expected)
    assert same_video(resolve_media(list(clip), "video", num_frames=4), expected)
    assert same_video(resolve_media(clip, "video", num_frames=4), load_video(clip, num_frames=4))
    encoded = [{"bytes": (root / "frames" / f"{i:04d}.png").read_bytes(), "path": None} for i in range(T)]
    assert same_video(resolve_media(encoded, "video", num_frames=4), expected)


def test_in_memory_frames_decode_only_the_sampled_ones(root, clip):
    frames: list = [Image.fromarray(frame) for frame in clip[:4]]
    frames[1] = b"not an image"  # index 1 is not sampled with num_frames=2 (frames 0 and 3)
    video = resolve_media(frames, "video", num_frames=2)
    assert video.frame_indices == [0, 3] and video.total_num_frames == 4
    with pytest.raises(MediaError, match="frame 1 of a list of frames"):
        resolve_media(frames, "video")


# ---------------------------------------------------------------------------------------------------------------
# errors


def _raises(reference, kind, **kwargs) -> MediaError:
    with pytest.raises(MediaError) as excinfo:
        resolve_media(reference, kind, **kwargs)
    assert type(excinfo.value) is MediaError
    return excinfo.value


def test_missing_file_names_the_reference_and_where_it_looked(root):
    error = _raises("nope/missing.png", "image", root=root)
    assert error.path == "nope/missing.png" and "not found" in error.reason
    assert str(root / "images" / "missing.png") in error.reason
    error = _raises(root / "missing.mp4", "video")  # no root: the decoder's own message
    assert error.path == str(root / "missing.mp4") and error.reason == "no such file or directory"


def test_corrupt_media_names_the_item(root):
    assert _raises("corrupt.png", "image", root=root).path == str(root / "corrupt.png")
    assert _raises("corrupt.mp4", "video", root=root).path == str(root / "corrupt.mp4")
    assert _raises(b"\x89PNG garbage", "image").path is None
    cell = {"bytes": (root / "corrupt.mp4").read_bytes(), "path": "videos/0001.mp4"}
    error = _raises(cell, "video")
    assert error.path == "videos/0001.mp4" and "/tmp" not in error.reason  # no temporary file in the message
    assert _raises({"bytes": b"junk", "path": "img/7.png"}, "image").path == "img/7.png"


def test_empty_frame_folder_names_the_folder(root):
    error = _raises("empty_frames", "video", root=root)
    assert error.path == str(root / "empty_frames") and "no frame images" in error.reason


@pytest.mark.parametrize(
    ("reference", "kind", "message"),
    [
        (None, "image", "no media"),
        ("   ", "video", "no media"),
        ({"bytes": None, "path": None}, "image", "no media"),
        ({}, "video", "no media"),
        ([], "video", "empty list of frames"),
        (b"", "video", "empty video data"),
        (b"", "image", "empty image data"),
        (42, "image", "unsupported image reference of type int"),
        (3.5, "video", "unsupported video reference of type float"),
        ([Image.new("RGB", (4, 4))], "image", "unsupported image reference of type list"),
    ],
)
def test_empty_and_unsupported_references(reference, kind, message):
    assert message in _raises(reference, kind).reason


@pytest.mark.parametrize(
    ("kind", "kwargs"),
    [
        ("audio", {}),
        ("image", {"max_pixels": 0}),
        ("video", {"num_frames": 0}),
        ("video", {"fps": -1.0}),
        ("video", {"backend": "opencv"}),
    ],
)
def test_invalid_options_are_value_errors_before_any_reading(kind, kwargs):
    # checked before the reference: a list of in-memory frames would otherwise never reach load_video's checks
    with pytest.raises(ValueError):
        resolve_media([Image.new("RGB", (4, 4))], kind, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# equality with the loaders the resolver replaces (their semantics at the time of the switch, as oracles)


def _judge_cli_load(reference, kind, root, *, num_frames, fps, max_pixels):
    """``judge/cli.py::MediaLoader``: ``~`` expanded, absolute or ``root / path``, no search."""
    candidate = Path(reference).expanduser()
    path = candidate if candidate.is_absolute() else root / candidate
    if kind == "image":
        return load_image(path, max_pixels=max_pixels)
    return load_video(path, num_frames=num_frames, fps=fps, max_pixels=max_pixels)


def _runner_path(reference, root):
    """``eval/runner.py::resolve_media_path``: the path, then its file name in root, root/videos, root/images."""
    import urllib.parse

    text = str(reference).strip()
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme in ("http", "https"):
        name = Path(urllib.parse.unquote(parsed.path)).name
        candidates = [root / name, root / "videos" / name, root / "images" / name]
    else:
        path = Path(text).expanduser()
        candidates = [path if path.is_absolute() else root / path, root / path.name]
        candidates += [root / "videos" / path.name, root / "images" / path.name]
    found = [c for c in candidates if c.exists()]
    if not found:
        raise MediaError(text, "not found")
    return found[0]


def _runner_load(reference, kind, root, *, num_frames, fps, max_pixels):
    """``eval/runner.py::load_media`` (a ``Cell`` already read into its dict)."""
    import tempfile

    value = reference.get("bytes") or reference.get("path") if isinstance(reference, dict) else reference
    if kind == "image":
        if isinstance(value, (Image.Image, bytes, bytearray)):
            return load_image(bytes(value) if isinstance(value, bytearray) else value, max_pixels=max_pixels)
        return load_image(_runner_path(value, root), max_pixels=max_pixels)
    options = {"num_frames": num_frames, "fps": fps, "max_pixels": max_pixels}
    if isinstance(value, (bytes, bytearray)):
        with tempfile.NamedTemporaryFile(suffix=".mp4") as handle:
            handle.write(value)
            handle.flush()
            return load_video(handle.name, **options)
    return load_video(_runner_path(value, root), **options)


def _sft_load(reference, kind, root, *, num_frames, fps, max_pixels):
    """``data/sft.py::SupervisedDataset.load_media`` (paths already resolved by the record reader)."""
    if kind == "image":
        return load_image(reference, max_pixels=max_pixels)
    source = list(reference) if isinstance(reference, tuple) else reference
    fps = fps if isinstance(source, str) and not Path(source).is_dir() else None
    return load_video(source, num_frames=num_frames, fps=fps, backend="auto", max_pixels=max_pixels)


def _videoqa_load(reference, kind, root, *, num_frames, fps, max_pixels):
    """``eval/videoqa.py::_load_video``: the item's video path as is."""
    return load_video(reference, num_frames=num_frames, fps=fps, max_pixels=max_pixels)


LEGACY_CASES = {  # loader -> (uses root, references as (kind, reference(root)))
    "judge_cli": (_judge_cli_load, True, [
        ("image", lambda r: "red.png"), ("image", lambda r: "images/blue.png"), ("image", lambda r: r / "red.png"),
        ("video", lambda r: "videos/clip.mp4"), ("video", lambda r: "frames"),
    ]),
    "eval_runner": (_runner_load, True, [
        ("image", lambda r: "red.png"), ("image", lambda r: "hub/layout/blue.png"),
        ("image", lambda r: "https://example.org/x/with%20space.png"),
        ("image", lambda r: {"bytes": (r / "red.png").read_bytes(), "path": "red.png"}),
        ("image", lambda r: {"bytes": None, "path": "images/blue.png"}),
        ("image", lambda r: (r / "red.png").read_bytes()), ("image", lambda r: Image.open(r / "red.png")),
        ("video", lambda r: "clip.mp4"), ("video", lambda r: "https://example.org/v/clip.mp4"),
        ("video", lambda r: {"bytes": (r / "videos" / "clip.mp4").read_bytes(), "path": "clip.mp4"}),
        ("video", lambda r: "frames"),
    ]),
    "data_sft": (_sft_load, False, [
        ("image", lambda r: str(r / "red.png")), ("video", lambda r: str(r / "videos" / "clip.mp4")),
        ("video", lambda r: str(r / "frames")),
        ("video", lambda r: tuple(str(r / "frames" / f"{i:04d}.png") for i in (3, 1, 2, 0, 5))),
    ]),
    "eval_videoqa": (_videoqa_load, False, [("video", lambda r: r / "videos" / "clip.mp4")]),
}  # fmt: skip


@pytest.mark.parametrize(
    ("loader", "case"), [(name, i) for name, (_, _, cases) in LEGACY_CASES.items() for i in range(len(cases))]
)
@pytest.mark.parametrize("options", [{}, {"num_frames": 3, "fps": 4.0, "max_pixels": 768}])
def test_same_result_as_the_loader_it_replaces(root, loader, case, options):
    old_load, uses_root, cases = LEGACY_CASES[loader]
    kind, make = cases[case]
    options = {"num_frames": None, "fps": None, "max_pixels": None, **options}
    old = old_load(make(root), kind, root, **options)
    new = resolve_media(make(root), kind, root=root if uses_root else None, **options)
    if kind == "image":
        assert same_image(new, old)
    elif isinstance(make(root), dict) and make(root)["bytes"]:  # the old loader named its temporary file
        assert same_video(new, Video(**{**vars(old), "source": "clip.mp4"}))
    else:
        assert same_video(new, old)


@pytest.mark.parametrize(("reference", "kind"), [("missing.png", "image"), ("corrupt.png", "image"),
                                                 ("corrupt.mp4", "video"), ("empty_frames", "video")])  # fmt: skip
def test_the_same_references_fail_as_with_the_loaders_it_replaces(root, reference, kind):
    options = {"num_frames": 4, "fps": None, "max_pixels": None}
    for old_load in (_judge_cli_load, _runner_load):
        with pytest.raises(MediaError):
            old_load(reference, kind, root, **options)
    with pytest.raises(MediaError):
        resolve_media(reference, kind, root=root, **options)
