"""Synthetic media for tests: images, frame arrays, video files, frame folders and broken files.

Everything is deterministic (same arguments, same pixels) and small. Video files are written with PyAV
(imported lazily), which bundles FFmpeg with libx264 and mpeg4 encoders, by the package's one video writer,
:func:`unifiedreward.synth.media.write_video`, re-exported here.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from unifiedreward.synth.media import write_video

logger = logging.getLogger(__name__)

__all__ = [
    "SQUARE_THRESHOLD",
    "make_frames",
    "make_image",
    "square_center",
    "square_origin",
    "square_side",
    "write_frame_folder",
    "write_garbage",
    "write_truncated_copy",
    "write_video",
]

#: Brightness above which :func:`square_center` counts a pixel as part of the moving square.
SQUARE_THRESHOLD = 128


def make_image(
    width: int = 64,
    height: int = 48,
    color: tuple[int, ...] = (255, 0, 0),
    *,
    background: tuple[int, ...] = (255, 255, 255),
    shape: str | None = "square",
    mode: str = "RGB",
) -> Image.Image:
    """Draw a single shape on a plain background.

    Args:
        width: image width.
        height: image height.
        color: fill colour of the shape, RGB or RGBA (an alpha value is honoured for modes with alpha).
        background: background colour, RGB or RGBA (e.g. ``(0, 0, 0, 0)`` for a transparent background).
        shape: ``"square"`` (a centred square whose side is half the shorter image side), ``"circle"`` (the disc
            inscribed in that square) or ``None`` (the whole image in ``color``).
        mode: PIL mode of the result. The drawing is done in RGBA and converted with ``Image.convert(mode)``.

    Returns:
        The image.
    """
    if shape not in ("square", "circle", None):
        raise ValueError(f"shape must be 'square', 'circle' or None, got {shape!r}")

    def rgba(c: tuple[int, ...]) -> tuple[int, int, int, int]:
        return (c[0], c[1], c[2], c[3] if len(c) > 3 else 255)

    img = Image.new("RGBA", (width, height), rgba(background))
    if shape is None:
        img = Image.new("RGBA", (width, height), rgba(color))
    else:
        side = max(1, min(width, height) // 2)
        x0, y0 = (width - side) // 2, (height - side) // 2
        box = (x0, y0, x0 + side - 1, y0 + side - 1)
        draw = ImageDraw.Draw(img)
        if shape == "square":
            draw.rectangle(box, fill=rgba(color))
        else:
            draw.ellipse(box, fill=rgba(color))
    return img if mode == "RGBA" else img.convert(mode)


def square_origin(index: int, num_frames: int, height: int, width: int) -> tuple[int, int]:
    """Top-left ``(y, x)`` of the bright square in frame ``index`` of :func:`make_frames`.

    The square (side ``max(2, min(height, width) // 4)``, rounded down to even) moves left to right along a fixed
    row, one step per frame, from ``x = 0`` in the first frame to ``x = width - side`` in the last one.
    """
    side = square_side(height, width)
    span = width - side
    x = round(index * span / max(1, num_frames - 1))
    y = (height - side) // 2
    return y - y % 2, x - x % 2


def square_side(height: int, width: int) -> int:
    """Side of the square drawn by :func:`make_frames`."""
    side = max(2, min(height, width) // 4)
    return side - side % 2


def make_frames(num_frames: int = 8, height: int = 32, width: int = 32, *, seed: int = 0) -> np.ndarray:
    """Frames that differ from each other: a bright square moving left to right on a dark background.

    The background is a dark uniform grey and the square a bright colour, both chosen from ``seed``; the square's
    position in each frame is :func:`square_origin` (even coordinates, so yuv420p chroma subsampling keeps it
    sharp). :func:`square_center` recovers its centre from a decoded frame, which lets tests check frame order.

    Args:
        num_frames: number of frames ``T``.
        height: frame height ``H``.
        width: frame width ``W``.
        seed: chooses the colours.

    Returns:
        ``(T, H, W, 3)`` uint8 array.
    """
    rng = np.random.default_rng(seed)
    background = rng.integers(8, 40, size=3).astype(np.uint8)
    color = rng.integers(200, 256, size=3).astype(np.uint8)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    frames[:] = background
    side = square_side(height, width)
    for t in range(num_frames):
        y, x = square_origin(t, num_frames, height, width)
        frames[t, y : y + side, x : x + side] = color
    return frames


def square_center(frame: np.ndarray, threshold: int = SQUARE_THRESHOLD) -> tuple[float, float]:
    """Centre ``(y, x)`` of the pixels whose mean channel value exceeds ``threshold`` (the square of
    :func:`make_frames`). Returns ``(nan, nan)`` when there is none."""
    mask = np.asarray(frame, dtype=np.float64).mean(axis=-1) > threshold
    if not mask.any():
        return float("nan"), float("nan")
    ys, xs = np.nonzero(mask)
    return float(ys.mean()), float(xs.mean())


def write_frame_folder(
    directory: str | os.PathLike,
    frames: np.ndarray,
    ext: str = "jpg",
    name_fmt: str = "{:04d}",
    *,
    start: int = 0,
) -> Path:
    """Write each frame as an image file ``name_fmt.format(start + i) + "." + ext`` in ``directory``.

    Args:
        directory: the folder (created if needed).
        frames: ``(T, H, W, 3)`` uint8.
        ext: ``"jpg"`` (quality 95) or ``"png"``, or another extension PIL can write.
        name_fmt: file stem format; ``"{}"`` gives un-padded names (``1.jpg``, ``10.jpg``) whose plain string order
            is not their frame order.
        start: number of the first frame.

    Returns:
        ``Path(directory)``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(np.asarray(frames, dtype=np.uint8)):
        target = directory / f"{name_fmt.format(start + i)}.{ext}"
        kwargs = {"quality": 95} if ext.lower() in ("jpg", "jpeg") else {}
        Image.fromarray(frame).save(target, **kwargs)
    return directory


def write_truncated_copy(src: str | os.PathLike, dst: str | os.PathLike, fraction: float = 0.5) -> Path:
    """Copy the first ``fraction`` of ``src``'s bytes to ``dst`` (a file cut short, as by an interrupted download).

    Returns:
        ``Path(dst)``.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def write_garbage(path: str | os.PathLike, nbytes: int = 1024, seed: int = 0) -> Path:
    """Write ``nbytes`` seeded random bytes (a corrupt file with any extension).

    Returns:
        ``Path(path)``.
    """
    path = Path(path)
    path.write_bytes(np.random.default_rng(seed).bytes(nbytes))
    return path
