"""Media loading: images and videos (decord, PyAV fallback, frame folders). SKELETON - being written."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Video:
    """A decoded video clip.

    Attributes:
        frames: ``(T, H, W, 3)`` uint8 RGB array of the sampled frames.
        frame_indices: index of each sampled frame in the source (length ``T``).
        total_num_frames: number of frames in the source.
        fps: native frames per second of the source, or ``None`` when unknown (a frame folder).
        source: the file or folder the frames came from (``None`` for in-memory arrays).
        backend: ``"decord"``, ``"pyav"``, ``"frames"`` (image files) or ``"array"`` (in memory).
    """

    frames: np.ndarray
    frame_indices: list[int] = field(default_factory=list)
    total_num_frames: int = 0
    fps: float | None = None
    source: str | None = None
    backend: str = "array"
