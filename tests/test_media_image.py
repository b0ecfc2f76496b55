"""Tests for unifiedreward.media.image: loading any image into RGB (EXIF, modes, max_pixels), bad images, data URLs."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unifiedreward.errors import MediaError, UnifiedRewardError
from unifiedreward.media import image_to_data_url, load_image
from unifiedreward.testing.media import (
    make_frames,
    make_image,
    write_garbage,
)

pytestmark = pytest.mark.unit

RED = (255, 0, 0)
WHITE = (255, 255, 255)
T, H, W = 12, 48, 64  # the test clip: 12 frames of 64x48 at 8 fps
FPS = 8
BACKENDS = ("auto", "decord", "pyav")


def assert_close(pixel, expected, tol=0):
    assert all(abs(int(a) - int(b)) <= tol for a, b in zip(pixel, expected, strict=True)), (pixel, expected)


def assert_media_error(excinfo, path):
    err = excinfo.value
    assert type(err) is MediaError
    assert isinstance(err, UnifiedRewardError)
    assert err.path == str(path)
    assert str(path) in str(err)


# ---------------------------------------------------------------------------------------------------------------
# images


def test_make_image_draws_centred_square():
    img = make_image(64, 48, RED)
    assert img.size == (64, 48) and img.mode == "RGB"
    # side 24, from (20, 12) to (43, 35)
    assert img.getpixel((20, 12)) == RED and img.getpixel((43, 35)) == RED
    assert img.getpixel((19, 12)) == WHITE and img.getpixel((44, 35)) == WHITE and img.getpixel((0, 0)) == WHITE
    circle = make_image(64, 48, RED, shape="circle")
    assert circle.getpixel((32, 24)) == RED and circle.getpixel((20, 12)) == WHITE
    assert make_image(8, 8, RED, shape=None).getpixel((0, 0)) == RED


def test_load_image_from_path_bytes_and_pil(tmp_path):
    src = make_image(64, 48, RED)
    path = tmp_path / "red.png"
    src.save(path)
    from_path = load_image(path)
    from_str = load_image(str(path))
    from_bytes = load_image(path.read_bytes())
    from_pil = load_image(src)
    for img in (from_path, from_str, from_bytes, from_pil):
        assert img.mode == "RGB" and img.size == (64, 48)
        assert np.array_equal(np.asarray(img), np.asarray(src))
    assert from_pil is not src


def test_load_image_does_not_modify_pil_input():
    src = Image.new("P", (4, 4), 1)
    src.putpalette([0, 0, 0, 0, 255, 0])
    out = load_image(src)
    assert src.mode == "P" and out.mode == "RGB"
    assert out.getpixel((0, 0)) == (0, 255, 0)


@pytest.mark.parametrize(
    ("orientation", "size", "red_at", "white_at"),
    [
        # stored 64x48 with a red 16x16 block in the top-left corner
        (1, (64, 48), (8, 8), (56, 40)),
        (3, (64, 48), (56, 40), (8, 8)),  # rotated 180: block in the bottom-right
        (6, (48, 64), (40, 8), (8, 8)),  # rotated 90 clockwise: block in the top-right
        (8, (48, 64), (8, 56), (8, 8)),  # rotated 90 counter-clockwise: block in the bottom-left
    ],
)
def test_exif_orientation_is_applied(tmp_path, orientation, size, red_at, white_at):
    img = Image.new("RGB", (64, 48), WHITE)
    img.paste(RED, (0, 0, 16, 16))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.jpg"
    img.save(path, quality=95, exif=exif.tobytes())
    with Image.open(path) as raw:
        assert raw.size == (64, 48)
        assert raw.getexif()[0x0112] == orientation
    out = load_image(path)
    assert out.size == size
    assert_close(out.getpixel(red_at), RED, tol=12)
    assert_close(out.getpixel(white_at), WHITE, tol=12)


def _palette_with_transparency() -> Image.Image:
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0, 0, 255, 0])
    img.putpixel((1, 1), 1)
    img.info["transparency"] = 0
    return img


@pytest.mark.parametrize(
    ("make", "pixel", "expected"),
    [
        # half-transparent red square on a fully transparent background: composited on white
        (
            lambda: make_image(64, 48, (255, 0, 0, 128), background=(0, 0, 0, 0), mode="RGBA"),
            (32, 24),
            (255, 127, 127),
        ),
        (lambda: make_image(64, 48, (255, 0, 0, 128), background=(0, 0, 0, 0), mode="RGBA"), (0, 0), WHITE),
        (lambda: Image.new("LA", (8, 8), (0, 0)), (0, 0), WHITE),
        (lambda: Image.new("LA", (8, 8), (0, 255)), (0, 0), (0, 0, 0)),
        (_palette_with_transparency, (0, 0), WHITE),
        (_palette_with_transparency, (1, 1), (0, 255, 0)),
        (lambda: Image.new("L", (8, 8), 100), (0, 0), (100, 100, 100)),
        (lambda: Image.new("1", (8, 8), 1), (0, 0), WHITE),
        (lambda: Image.new("CMYK", (8, 8), (0, 255, 255, 0)), (0, 0), RED),
        (lambda: make_image(16, 16, RED, shape=None, mode="CMYK"), (0, 0), RED),
        (lambda: Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)), (0, 0), (156, 156, 156)),  # 40000/257
        (lambda: Image.fromarray(np.full((8, 8), 0.5, dtype=np.float32)), (0, 0), (128, 128, 128)),
    ],
)
def test_modes_convert_to_rgb(tmp_path, make, pixel, expected):
    img = make()
    saved = _roundtrip(img, tmp_path)
    for src in (img, saved) if saved is not None else (img,):
        out = load_image(src)
        assert out.mode == "RGB" and out.size == img.size
        assert_close(out.getpixel(pixel), expected, tol=1)


def _roundtrip(img: Image.Image, tmp_path: Path) -> Path | None:
    """Save through a file format that keeps the mode (PNG, or TIFF for CMYK), to test the file path too."""
    fmt = {"CMYK": "tiff", "F": None}.get(img.mode, "png")
    if fmt is None:
        return None
    path = tmp_path / f"img_{img.mode.replace(';', '_')}.{fmt}"
    img.save(path)
    return path


def test_load_image_roundtrip_helper_skips_float(tmp_path):
    assert _roundtrip(Image.new("F", (2, 2)), tmp_path) is None
    with pytest.raises(TypeError):
        load_image(None)  # type: ignore[arg-type]


def test_16bit_png_keeps_mode_and_scales(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16)).save(path)
    with Image.open(path) as raw:
        assert raw.mode.startswith("I")
    assert load_image(path).getpixel((0, 0)) == WHITE


@pytest.mark.parametrize(
    ("max_pixels", "size"),
    [(None, (64, 48)), (10_000, (64, 48)), (3072, (64, 48)), (768, (32, 24)), (1000, (36, 27)), (1, (1, 1))],
)
def test_max_pixels_downsizes_keeping_aspect(max_pixels, size):
    out = load_image(make_image(64, 48, RED), max_pixels=max_pixels)
    assert out.size == size
    assert max_pixels is None or out.width * out.height <= max_pixels


def test_max_pixels_must_be_positive():
    with pytest.raises(ValueError, match="max_pixels"):
        load_image(make_image(), max_pixels=0)


def _png_bytes() -> bytes:
    buf = io.BytesIO()
    make_image(64, 48, RED, shape="circle").save(buf, "PNG")
    return buf.getvalue()


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(make_frames(1, 64, 64)[0]).save(buf, "JPEG", quality=95)
    return buf.getvalue()


BAD_IMAGES = {
    "missing": lambda d: d / "missing.png",
    "directory": lambda d: _mkdir(d / "a_dir.png"),
    "empty": lambda d: _write(d / "empty.png", b""),
    "truncated_jpeg": lambda d: _write(d / "cut.jpg", _jpeg_bytes()[: len(_jpeg_bytes()) // 2]),
    "truncated_png": lambda d: _write(d / "cut.png", _png_bytes()[: len(_png_bytes()) // 2]),
    "garbage": lambda d: write_garbage(d / "garbage.jpg"),
    "text": lambda d: _write(d / "notes.png", b"this is not an image\n"),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.parametrize("kind", sorted(BAD_IMAGES))
def test_bad_image_raises_media_error_naming_the_file(tmp_path, kind):
    path = BAD_IMAGES[kind](tmp_path)
    with pytest.raises(MediaError) as excinfo:
        load_image(path)
    assert_media_error(excinfo, path)
    if kind.startswith(("truncated", "garbage", "text")):
        assert excinfo.value.__cause__ is not None


def test_lazily_opened_truncated_pil_image_fails_with_its_path(tmp_path):
    path = _write(tmp_path / "cut.jpg", _jpeg_bytes()[:700])
    with Image.open(path) as img, pytest.raises(MediaError) as excinfo:
        load_image(img)
    assert_media_error(excinfo, path)


@pytest.mark.parametrize("data", [b"", b"\x00" * 64, _png_bytes()[:100]])
def test_bad_image_bytes_raise_media_error_without_path(data):
    with pytest.raises(MediaError) as excinfo:
        load_image(data)
    assert excinfo.value.path is None
    assert "<in-memory data>" in str(excinfo.value)


def test_image_to_data_url_round_trips():
    img = make_image(64, 48, RED)
    url = image_to_data_url(img)
    prefix = "data:image/jpeg;base64,"
    assert url.startswith(prefix)
    back = Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :])))
    assert back.format == "JPEG" and back.size == (64, 48)
    assert_close(back.convert("RGB").getpixel((32, 24)), RED, tol=8)

    png = image_to_data_url(img, format="png")
    assert png.startswith("data:image/png;base64,")
    exact = Image.open(io.BytesIO(base64.b64decode(png.split(",", 1)[1])))
    assert np.array_equal(np.asarray(exact.convert("RGB")), np.asarray(img))

    rgba = make_image(16, 16, RED, background=(0, 0, 0, 0), mode="RGBA")  # JPEG cannot store alpha: on white
    back = Image.open(io.BytesIO(base64.b64decode(image_to_data_url(rgba).split(",", 1)[1])))
    assert_close(back.getpixel((0, 0)), WHITE, tol=8)


def test_image_to_data_url_quality_changes_size():
    img = Image.fromarray(make_frames(1, 64, 64, seed=3)[0])
    assert len(image_to_data_url(img, quality=20)) < len(image_to_data_url(img, quality=95))
