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

Clips (:func:`check_clip`, against a :class:`~unifiedreward.synth.world.MotionSpec`) are checked frame by frame
with the same detector:

* **color**: the colour of the first frame; **change**: the colour of the last frame is the clip's final colour
  (``end_color``, or ``color`` when the caption names no change) and differs from the first frame's exactly when
  the caption names a change;
* **shape**: the majority of the frames' shapes;
* **direction**: the centroid's displacement from the first frame to the last, along its larger axis (image rows
  grow downwards), and at least a quarter of the frame's side (the renderer moves objects across about half of
  it), so an object that stays where it is does not pass.

Every clip :func:`~unifiedreward.synth.world.render_clip` draws checks out at 16, 32 and 56 px (the tests measure
them).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from unifiedreward.synth.world import COLORS, SCENE_ATTRIBUTES, MotionSpec, SceneSpec

__all__ = ["CHECK_ATTRIBUTES", "CLIP_CHECK_ATTRIBUTES", "Detection", "check_clip", "check_scene", "detect_objects"]

#: What :func:`check_scene` returns a verdict for, in this order (``all``: every one of them).
CHECK_ATTRIBUTES: tuple[str, ...] = (*SCENE_ATTRIBUTES, "all")
#: What :func:`check_clip` returns a verdict for, in this order.
CLIP_CHECK_ATTRIBUTES: tuple[str, ...] = ("color", "shape", "direction", "change", "all")
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


def _direction(start: tuple[float, float], end: tuple[float, float], size: tuple[int, int]) -> str | None:
    """The direction of the move from ``start`` to ``end`` (pixels), ``None`` if shorter than a quarter of the side."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    if abs(dx) >= abs(dy):
        return None if abs(dx) < size[0] / 4 else "right" if dx > 0 else "left"
    return None if abs(dy) < size[1] / 4 else "down" if dy > 0 else "up"


def check_clip(frames: Any, spec: MotionSpec, **detect: Any) -> dict[str, bool]:
    """Whether ``frames`` show ``spec`` (module docstring): ``{"color", "shape", "direction", "change", "all"}`` ->
    bool.

    Args:
        frames: ``[T, H, W, 3]`` uint8 (or a :class:`~unifiedreward.media.Video`, or a list of PIL images), T >= 2.
        spec: the clip's caption as a :class:`~unifiedreward.synth.world.MotionSpec`.
        **detect: passed to :func:`detect_objects` for every frame.

    A clip whose first or last frame shows no object fails every attribute.
    """
    frames = getattr(frames, "frames", frames)
    if len(frames) < 2:
        raise ValueError(f"a clip needs at least 2 frames, got {len(frames)}")
    found = [detect_objects(frame, **detect) for frame in frames]
    first, last = found[0], found[-1]
    if first.count == 0 or last.count == 0:
        return dict.fromkeys(CLIP_CHECK_ATTRIBUTES, False)
    shapes = [f.shape for f in found if f.shape is not None]
    shape = max(set(shapes), key=lambda name: (shapes.count(name), name == first.shape))
    changed = last.color != first.color
    verdict = {
        "color": first.color == spec.color,
        "shape": shape == spec.shape,
        "direction": _direction(first.centroid, last.centroid, first.size) == spec.direction,  # type: ignore[arg-type]
        "change": last.color == spec.final_color and changed == (spec.end_color is not None),
    }
    verdict["all"] = all(verdict.values())
    return verdict
