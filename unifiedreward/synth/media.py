"""Writing the world's media: scenes as PNG, clips as H.264 mp4 (:func:`write_video`, PyAV).

:func:`write_video` is the package's one video writer; the test fixtures (:mod:`unifiedreward.testing.media`)
re-export it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from unifiedreward.synth.world import Scene

if TYPE_CHECKING:  # pragma: no cover
    from unifiedreward.synth.tasks import Example
    from unifiedreward.synth.world import Clip

logger = logging.getLogger(__name__)

__all__ = ["VIDEO_FPS", "save_media", "write_clip", "write_video"]

#: Frame rate of the written clips (all their frames are one second of video at 4 frames).
VIDEO_FPS = 4


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: int = 8,
    codec: str = "libx264",
    *,
    faststart: bool = False,
    codec_options: dict[str, str] | None = None,
) -> Path:
    """Encode ``(T, H, W, 3)`` uint8 RGB frames into a video file with PyAV (pixel format yuv420p).

    Args:
        path: output file; the container format follows the extension (``.mp4``, ``.avi``, ``.mkv``...; ``.webm``
            needs ``codec="libvpx"``).
        frames: the frames. ``H`` and ``W`` must be even (yuv420p halves the chroma planes); ``T`` may be 0,
            which writes a container whose video stream has no frames (works with ``.avi``; an ``.mp4`` then has
            no video stream at all).
        fps: frame rate.
        codec: ``"libx264"`` (default) or ``"mpeg4"``, or any encoder PyAV has. An encoder that is missing from
            the PyAV build falls back to ``"mpeg4"``.
        faststart: for mp4, put the index (``moov``) before the frames, as web videos do. A truncated copy of such a
            file still opens and declares every frame, but the later frames are missing.
        codec_options: encoder options, e.g. ``{"crf": "12", "g": "1"}`` (near-lossless, every frame a keyframe).

    Returns:
        ``Path(path)``.

    Raises:
        ValueError: frames are not ``(T, H, W, 3)`` uint8, or ``H``/``W`` is odd.
    """
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"yuv420p needs even frame sizes, got {width}x{height}: crop or pad the frames")
    if codec not in av.codecs_available:
        logger.warning("encoder %s is not in this PyAV build, using mpeg4", codec)
        codec = "mpeg4"
    path = Path(path)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream(codec, rate=fps, options=dict(codec_options or {}))
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        container.start_encoding()
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_clip(frames: np.ndarray, path: str | Path, fps: int = VIDEO_FPS) -> Path:
    """Encode ``(T, H, W, 3)`` uint8 frames as an H.264 mp4 (yuv420p, CRF 12, every frame a keyframe)."""
    return write_video(path, frames, fps, "libx264", codec_options={"crf": "12", "g": "1"})


def _write_medium(medium: Scene | Clip, path: Path) -> None:
    if isinstance(medium, Scene):
        medium.image.save(path, format="PNG", optimize=False, compress_level=1)
    else:
        write_clip(medium.frames, path)


def save_media(example: Example, folder: Path, relative_to: Path) -> list[str]:
    """Write an example's media into ``folder``; returns their paths relative to ``relative_to`` (POSIX)."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".mp4" if example.is_video else ".png"
    paths = []
    for medium, name in zip(example.media, example.media_names, strict=True):
        path = folder / f"{name}{suffix}"
        _write_medium(medium, path)
        paths.append(path.relative_to(relative_to).as_posix())
    return paths
