"""Ground-truth checks on pixels: does an image show what a scene caption says?

The closed loops of the diffusion pipelines (DiffusionDPO) need a judge that is *not* a model: a generated image is
checked against the :class:`~unifiedreward.synth.world.SceneSpec` its caption came from, attribute by attribute,
from the pixels alone (:func:`check_scene`):

* **objects**: the background is the median colour of the image's one-pixel frame (the renderer keeps objects at
  least one pixel inside it); a pixel belongs to an object when one of its channels differs from the background by
  more than ``threshold``; objects are the 4-connected components of those pixels, components smaller than
  ``min_pixels`` (noise) are dropped.
* **colour**: the mean RGB of all object pixels, named by the nearest base colour of
  :data:`~unifiedreward.synth.world.COLORS`.
* **count**: the number of components.
* **shape**: the mean fill ratio (pixels / bounding-box area) of the components: a square fills its box (1.0), a
  circle pi/4 (0.785), the renderer's triangle (apex at the top) half of it; cut at 0.64 and 0.91.
* **position**: the centroid of all object pixels lies in the caption's half of the canvas.

On scenes drawn by :func:`~unifiedreward.synth.world.render_scene` every attribute checks out on every image at the
world's sizes (``tests/test_synth_checks.py`` measures 1,000 scenes at 48 and 84 px).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from unifiedreward.synth.world import COLORS, SCENE_ATTRIBUTES, SceneSpec

__all__ = ["CHECK_ATTRIBUTES", "Detection", "check_scene", "detect_objects"]

#: What :func:`check_scene` returns a verdict for, in this order (``all``: every one of them).
CHECK_ATTRIBUTES: tuple[str, ...] = (*SCENE_ATTRIBUTES, "all")
_SQUARE_FILL = 0.91
_CIRCLE_FILL = 0.64


@dataclass(frozen=True)
class Detection:
    """What the pixels show: ``count`` components, their colour name, shape name, and centroid ``(x, y)`` in pixels
    (``None`` for all three when nothing is drawn); ``fill`` is the components' mean fill ratio, ``rgb`` the mean
    colour of their pixels."""

    count: int
    color: str | None
    shape: str | None
    centroid: tuple[float, float] | None
    fill: float | None
    size: tuple[int, int]
    rgb: tuple[float, float, float] | None = None


def _as_array(image: Any) -> np.ndarray:
    array = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape [H, W, 3], got {array.shape}")
    return array.astype(np.int16)


def _components(mask: np.ndarray) -> list[np.ndarray]:
    """4-connected components of a boolean ``[H, W]`` mask, each as an ``[N, 2]`` array of ``(row, col)``."""
    seen = np.zeros_like(mask, dtype=bool)
    height, width = mask.shape
    found = []
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        seen[start] = True
        queue, cells = deque([start]), []
        while queue:
            row, col = queue.popleft()
            cells.append((row, col))
            for r, c in ((row - 1, col), (row + 1, col), (row, col - 1), (row, col + 1)):
                if 0 <= r < height and 0 <= c < width and mask[r, c] and not seen[r, c]:
                    seen[r, c] = True
                    queue.append((r, c))
        found.append(np.asarray(cells))
    return found


def detect_objects(image: Any, *, threshold: int = 60, min_pixels: int | None = None) -> Detection:
    """Find the objects of a scene image (module docstring).

    Args:
        image: a PIL image or an ``[H, W, 3]`` uint8 array.
        threshold: the largest per-channel difference from the background that still counts as background.
        min_pixels: components with fewer pixels are noise (default: 0.4% of the image, at least 3 pixels).
    """
    pixels = _as_array(image)
    height, width, _ = pixels.shape
    frame = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    background = np.median(frame, axis=0)
    mask = np.abs(pixels - background).max(axis=2) > threshold
    smallest = max(3, round(0.004 * height * width)) if min_pixels is None else min_pixels
    parts = [cells for cells in _components(mask) if len(cells) >= smallest]
    if not parts:
        return Detection(0, None, None, None, None, (width, height))
    cells = np.concatenate(parts)
    mean_rgb = pixels[cells[:, 0], cells[:, 1]].mean(axis=0)
    color = min(COLORS, key=lambda name: float(((mean_rgb - np.asarray(COLORS[name])) ** 2).sum()))
    fills = []
    for part in parts:
        rows, cols = part[:, 0], part[:, 1]
        fills.append(len(part) / ((rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)))
    fill = float(np.mean(fills))
    shape = "square" if fill >= _SQUARE_FILL else "circle" if fill >= _CIRCLE_FILL else "triangle"
    centroid = (float(cells[:, 1].mean()) + 0.5, float(cells[:, 0].mean()) + 0.5)
    return Detection(len(parts), color, shape, centroid, fill, (width, height), tuple(float(v) for v in mean_rgb))


def _in_half(centroid: tuple[float, float], position: str, size: tuple[int, int]) -> bool:
    (x, y), (width, height) = centroid, size
    return {"left": x < width / 2, "right": x > width / 2, "top": y < height / 2, "bottom": y > height / 2}[position]


def check_scene(image: Any, spec: SceneSpec, **detect: Any) -> dict[str, bool]:
    """Whether ``image`` shows ``spec``: ``{"color", "shape", "count", "position", "all"}`` -> bool.

    An image with no object fails every attribute. ``detect`` goes to :func:`detect_objects`.
    """
    found = detect_objects(image, **detect)
    if found.count == 0:
        return dict.fromkeys(CHECK_ATTRIBUTES, False)
    verdict = {
        "color": found.color == spec.color,
        "shape": found.shape == spec.shape,
        "count": found.count == spec.count,
        "position": _in_half(found.centroid, spec.position, found.size),  # type: ignore[arg-type]
    }
    verdict["all"] = all(verdict.values())
    return verdict
