"""Frame sampling (:func:`sample_frame_indices`) and helpers on stacks of frames (ordering, resizing, stacking)."""

from __future__ import annotations

import logging
import math
import re
from typing import Any

import numpy as np
from PIL import Image

from unifiedreward.media.image import fit_max_pixels

logger = logging.getLogger(__name__)


def sample_frame_indices(
    total_frames: int,
    *,
    native_fps: float | None = None,
    num_frames: int | None = None,
    fps: float | None = None,
) -> list[int]:
    """Choose which frames of a clip to decode. Deterministic, sorted, without duplicates.

    The rules, in order:

    1. **fps sampling.** If ``fps`` is given and ``native_fps`` is known, take one frame every
       ``native_fps / fps`` source frames: indices ``round(k * native_fps / fps)`` for ``k = 0, 1, ...`` while the
       index is ``< total_frames`` (as if sampling the clip at ``fps`` frames per second; rounding is numpy's,
       half to even). If ``fps >= native_fps`` this is every frame. If ``native_fps`` is unknown, ``fps`` is
       ignored with a logged warning.
    2. **frame cap.** Then, if ``num_frames`` is given and more than ``num_frames`` indices remain, take exactly
       ``num_frames`` frames spread uniformly over the *whole* clip:
       ``np.linspace(0, total_frames - 1, num_frames).round()`` (the "frames_upbound" rule of LLaVA-Video).
    3. **uniform only.** Without ``fps``, ``num_frames`` alone gives that same ``linspace`` (every frame when
       ``total_frames <= num_frames``).
    4. Neither: every frame.

    Examples:
        >>> sample_frame_indices(10, num_frames=4)
        [0, 3, 6, 9]
        >>> sample_frame_indices(16, native_fps=8, fps=3)
        [0, 3, 5, 8, 11, 13]
        >>> sample_frame_indices(16, native_fps=8, fps=3, num_frames=4)
        [0, 5, 10, 15]

    Args:
        total_frames: number of frames in the clip (must be > 0).
        native_fps: the clip's frame rate, or ``None`` when unknown.
        num_frames: maximum number of frames to return (must be >= 1).
        fps: target sampling rate in frames per second (must be > 0).

    Returns:
        Sorted frame indices in ``[0, total_frames)``.

    Raises:
        ValueError: ``total_frames <= 0``, ``num_frames < 1``, ``fps <= 0`` or ``native_fps <= 0``.
    """
    if isinstance(total_frames, bool) or int(total_frames) != total_frames or total_frames <= 0:
        raise ValueError(f"total_frames must be a positive integer, got {total_frames!r}")
    total = int(total_frames)
    if num_frames is not None and (isinstance(num_frames, bool) or int(num_frames) != num_frames or num_frames < 1):
        raise ValueError(f"num_frames must be a positive integer or None, got {num_frames!r}")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number or None, got {fps!r}")
    if native_fps is not None and not (math.isfinite(native_fps) and native_fps > 0):
        raise ValueError(f"native_fps must be a positive number or None, got {native_fps!r}")

    indices: list[int]
    if fps is not None and native_fps is not None:
        step = float(native_fps) / float(fps)
        count = math.ceil(total / step) + 1
        candidates = np.round(np.arange(count, dtype=np.float64) * step).astype(np.int64)
        indices = [int(i) for i in np.unique(candidates[candidates < total])]
    else:
        if fps is not None:
            logger.warning("fps=%s sampling needs the native frame rate, which is unknown: ignoring fps", fps)
        indices = list(range(total))
    if num_frames is not None and len(indices) > num_frames:
        indices = [int(i) for i in np.linspace(0, total - 1, int(num_frames)).round().astype(np.int64)]
    return indices


def natural_key(name: str) -> tuple[list[Any], str]:
    """Sort key that orders ``2.jpg`` before ``10.jpg`` (digit runs compare as numbers)."""
    parts = re.split(r"(\d+)", name)
    return [int(p) if i % 2 else p.lower() for i, p in enumerate(parts)], name


def resize_frames(frames: np.ndarray, max_pixels: int | None) -> np.ndarray:
    """Downsize every frame of ``(T, H, W, 3)`` with the :func:`load_image` rule."""
    height, width = frames.shape[1:3]
    size = fit_max_pixels(width, height, max_pixels)
    if size == (width, height):
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.Resampling.BICUBIC)) for f in frames])


def stack_images(images: list[Image.Image], where: str) -> np.ndarray:
    """Stack RGB images, resizing any whose size differs from the first one (with a warning)."""
    size = images[0].size
    arrays = []
    for i, img in enumerate(images):
        if img.size != size:
            logger.warning("frame %d of %s is %sx%s, resizing to %sx%s", i, where, *img.size, *size)
            img = img.resize(size, Image.Resampling.BICUBIC)
        arrays.append(np.asarray(img, dtype=np.uint8))
    return np.stack(arrays)
