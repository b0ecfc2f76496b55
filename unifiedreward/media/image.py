"""Images: loading any path / bytes / PIL image into a fully decoded RGB image, and ``data:`` URLs.

Also holds the small helpers the video side shares: the ``max_pixels`` rule (:func:`fit_max_pixels`), the
file checks that turn a missing or empty file into a :class:`~unifiedreward.errors.MediaError`, and the one-line
description of a decoder exception.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from unifiedreward.errors import MediaError

logger = logging.getLogger(__name__)

_MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif", "BMP": "image/bmp"}
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_INT_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")

PathLike = str | os.PathLike


def fit_max_pixels(width: int, height: int, max_pixels: int | None) -> tuple[int, int]:
    """Largest size with the same aspect ratio (each side floored) such that ``w * h <= max_pixels``."""
    if max_pixels is None or width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    new_w = max(1, math.floor(width * scale))
    new_h = max(1, math.floor(height * scale))
    # guard against floating-point overshoot
    while new_w * new_h > max_pixels and (new_w > 1 or new_h > 1):
        if new_w >= new_h:
            new_w -= 1
        else:
            new_h -= 1
    return new_w, new_h


def check_max_pixels(max_pixels: int | None) -> None:
    """Raise ``ValueError`` unless ``max_pixels`` is ``None`` or a positive integer."""
    if max_pixels is not None and (isinstance(max_pixels, bool) or int(max_pixels) != max_pixels or max_pixels < 1):
        raise ValueError(f"max_pixels must be a positive integer or None, got {max_pixels!r}")


def _downsize(img: Image.Image, max_pixels: int | None) -> Image.Image:
    size = fit_max_pixels(img.width, img.height, max_pixels)
    if size == img.size:
        return img
    return img.resize(size, Image.Resampling.BICUBIC)


def upscale_to_min_side(image: Image.Image, min_side: int | None) -> Image.Image:
    """``image`` resized (bicubic, aspect kept) so that its shorter side is ``min_side``, if it is shorter (e.g. to
    the resolution a reward model was trained at); otherwise ``image`` itself."""
    if not min_side or min(image.size) >= min_side:
        return image
    scale = min_side / min(image.size)
    return image.resize((round(image.size[0] * scale), round(image.size[1] * scale)), Image.BICUBIC)


def _composite_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB.

    * transparent images (``RGBA``, ``LA``, ``PA``, ``P``/``L``/``RGB`` with a transparency key) are composited on
      white;
    * high bit-depth greyscale (``I;16*``, ``I``) is scaled to 8 bits (``v / 257``) when any value exceeds 255,
      otherwise taken as is; float images (``F``) are multiplied by 255 when all values are <= 1, then clipped;
    * everything else (``L``, ``1``, ``P``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``...) goes through ``convert("RGB")``.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in _INT_MODES or mode == "F":
        arr = np.asarray(img).astype(np.float64)
        if arr.size:
            if mode == "F":
                if np.nanmax(arr) <= 1.0:
                    arr = arr * 255.0
            elif arr.max() > 255:
                arr = arr / 257.0
        arr = np.clip(np.nan_to_num(np.round(arr)), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    has_transparency = (
        img.has_transparency_data if hasattr(img, "has_transparency_data") else "transparency" in img.info
    )
    if mode in _ALPHA_MODES or has_transparency:
        return _composite_on_white(img)
    return img.convert("RGB")


def describe_error(exc: BaseException, limit: int = 300) -> str:
    """One line describing an exception (decord messages carry multi-line C++ traces)."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > limit:
        first = first[:limit] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def check_file(path: Path) -> None:
    """Raise :class:`MediaError` unless ``path`` is an existing, non-empty regular file."""
    if not path.exists():
        raise MediaError(path, "no such file or directory")
    if path.is_dir():
        raise MediaError(path, "is a directory, not a file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MediaError(path, f"cannot stat the file ({describe_error(exc)})") from exc
    if size == 0:
        raise MediaError(path, "the file is empty (0 bytes)")


def load_image(src: PathLike | bytes | Image.Image, *, max_pixels: int | None = None) -> Image.Image:
    """Load an image as a fully decoded RGB :class:`PIL.Image.Image`.

    The EXIF orientation is applied (so a phone photo comes out upright), any mode is converted to RGB
    (transparency is composited on white, 16-bit greyscale is scaled to 8 bits, CMYK/palette/greyscale are
    converted), and the pixels are decoded right away so a truncated file fails here rather than later. The input
    image is never modified.

    Args:
        src: a file path (``str`` or ``os.PathLike``), the raw bytes of an encoded image, or a PIL image.
        max_pixels: if given, downsize (bicubic, aspect ratio kept, each side floored) so that
            ``width * height <= max_pixels``. Images already small enough are never upscaled.

    Returns:
        A new RGB image.

    Raises:
        MediaError: the file is missing, a directory, empty, truncated, corrupt or not an image (``path`` is the
            file, or ``None`` for bytes).
        TypeError: ``src`` is of an unsupported type.
        ValueError: ``max_pixels`` is not a positive integer.
    """
    check_max_pixels(max_pixels)
    path: Path | None = None
    if isinstance(src, Image.Image):
        img = src
        filename = getattr(src, "filename", None)
        path = Path(filename) if filename else None
        opened = False
    elif isinstance(src, (bytes, bytearray, memoryview)):
        if len(src) == 0:
            raise MediaError(None, "empty image data (0 bytes)")
        opened = True
        try:
            img = Image.open(io.BytesIO(bytes(src)))
        except Exception as exc:
            raise MediaError(None, f"not a readable image ({describe_error(exc)})") from exc
    elif isinstance(src, (str, os.PathLike)):
        path = Path(src)
        check_file(path)
        opened = True
        try:
            img = Image.open(path)
        except Exception as exc:
            raise MediaError(path, f"not a readable image ({describe_error(exc)})") from exc
    else:
        raise TypeError(f"load_image expects a path, bytes or a PIL image, got {type(src).__name__}")

    try:
        try:
            img.load()
        except Exception as exc:
            raise MediaError(path, f"cannot decode the image, truncated or corrupt ({describe_error(exc)})") from exc
        try:
            oriented = ImageOps.exif_transpose(img)
        except (
            OSError,
            ValueError,
            TypeError,
            KeyError,
            IndexError,
            AttributeError,
            SyntaxError,
            struct.error,
        ) as exc:
            # a broken EXIF block should not lose an otherwise good image
            logger.warning("ignoring unreadable EXIF orientation of %s: %s", path or "<in-memory image>", exc)
            oriented = img.copy()
        if oriented is None:  # pragma: no cover - only with in_place=True
            oriented = img
        try:
            rgb = _to_rgb(oriented)
        except Exception as exc:
            raise MediaError(
                path, f"cannot convert image mode {oriented.mode!r} to RGB ({describe_error(exc)})"
            ) from exc
        if rgb is img:
            rgb = img.copy()
        return _downsize(rgb, max_pixels)
    finally:
        if opened:
            img.close()


def image_to_data_url(image: Image.Image, *, format: str = "JPEG", quality: int = 95) -> str:
    """Encode an image as a ``data:`` URL, as OpenAI-compatible chat APIs take in ``image_url`` parts.

    Args:
        image: the image; converted to RGB first (transparency on white) when the format cannot store its mode
            (always for JPEG).
        format: a PIL format name: ``"JPEG"`` (default, as upstream UnifiedReward sends), ``"PNG"``, ``"WEBP"``...
        quality: encoder quality for lossy formats (JPEG, WEBP); ignored otherwise.

    Returns:
        ``"data:image/jpeg;base64,..."`` (the MIME type follows ``format``).
    """
    fmt = format.upper()
    if fmt == "JPG":
        fmt = "JPEG"
    mime = _MIME_TYPES.get(fmt, f"image/{fmt.lower()}")
    if fmt == "JPEG" or image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        image = _to_rgb(image)
    kwargs: dict[str, Any] = {"quality": int(quality)} if fmt in ("JPEG", "WEBP") else {}
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"
