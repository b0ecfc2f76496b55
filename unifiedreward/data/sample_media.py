"""Media decoding for SFT samples: the options (:class:`MediaOptions`) and :func:`load_sample_media`."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unifiedreward.data.records import MediaPart

if TYPE_CHECKING:  # pragma: no cover
    from unifiedreward.media import Video

__all__ = ["MediaOptions", "load_sample_media", "pad_frames"]


@dataclass(frozen=True)
class MediaOptions:
    """How media are decoded for training.

    Attributes:
        frames_upbound: at most this many frames per video (uniformly over the clip; upstream's ``frames_upbound``).
        video_fps: sample videos at this many frames per second when the native rate is known, then cap at
            ``frames_upbound`` (upstream's ``video_fps``, default 1); ``None`` samples by ``frames_upbound`` only.
        image_max_pixels: downsize images to at most this many pixels before the processor (``None``: no cap).
        video_max_pixels: downsize each video frame to at most this many pixels (``None``: no cap).
        video_backend: ``"auto"`` (decord, PyAV fallback), ``"decord"`` or ``"pyav"``.
    """

    frames_upbound: int | None = 32
    video_fps: float | None = 1.0
    image_max_pixels: int | None = None
    video_max_pixels: int | None = None
    video_backend: str = "auto"


def load_sample_media(
    images: Sequence[MediaPart], videos: Sequence[MediaPart], options: MediaOptions, *, min_frames: int = 1
) -> tuple[list[Any], list[Video]]:
    """Decode the media parts of one record.

    Every part goes through :func:`~unifiedreward.media.resolve_media` (its paths are absolute: the records
    resolved them). Images are capped at ``options.image_max_pixels``; videos get at most
    ``options.frames_upbound`` frames (a video *file* sampled at ``options.video_fps``, a frame folder or frame
    list uniformly), each frame capped at ``options.video_max_pixels``, each clip padded to ``min_frames``.

    Returns:
        ``(images, videos)``: RGB PIL images and :class:`~unifiedreward.media.Video` clips, in order.

    Raises:
        MediaError: a missing, empty, truncated or corrupt file.
    """
    from unifiedreward.media import resolve_media

    decoded_images = [resolve_media(part.path, "image", max_pixels=options.image_max_pixels) for part in images]
    decoded_videos = []
    for part in videos:
        source = list(part.path) if isinstance(part.path, tuple) else part.path
        fps = options.video_fps if isinstance(source, str) and not os.path.isdir(source) else None
        video = resolve_media(
            source,
            "video",
            num_frames=options.frames_upbound,
            fps=fps,
            max_pixels=options.video_max_pixels,
            backend=options.video_backend,
        )
        decoded_videos.append(pad_frames(video, min_frames))
    return decoded_images, decoded_videos


def pad_frames(video: Video, min_frames: int) -> Video:
    """Repeat the last frame of a clip shorter than ``min_frames``."""
    if len(video) >= min_frames:
        return video
    import numpy as np

    missing = min_frames - len(video)
    frames = np.concatenate([video.frames, np.repeat(video.frames[-1:], missing, axis=0)])
    indices = list(video.frame_indices)
    if indices:
        indices += [indices[-1]] * missing
    return dataclasses.replace(video, frames=frames, frame_indices=indices)
