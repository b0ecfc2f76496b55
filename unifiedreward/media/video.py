"""The decoded video type, :class:`Video`, and :func:`video_frames`, the one way to get a clip's frames as images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:  # pragma: no cover
    from transformers.video_utils import VideoMetadata


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

    def __len__(self) -> int:
        """Number of sampled frames ``T``."""
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        """Frame height in pixels."""
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        """Frame width in pixels."""
        return int(self.frames.shape[2])

    @property
    def duration(self) -> float | None:
        """Duration of the source in seconds (``total_num_frames / fps``), or ``None`` when ``fps`` is unknown."""
        if not self.fps:
            return None
        return self.total_num_frames / self.fps

    def metadata(self, *, default_fps: float | None = None) -> dict[str, Any]:
        """The clip's metadata as a plain dict, with the keys :class:`transformers.video_utils.VideoMetadata` takes.

        Args:
            default_fps: frame rate to report when the native one is unknown (frame folders, arrays). With the
                default ``None`` the dict carries ``fps=None`` and ``duration=None``.

        Returns:
            ``{"total_num_frames", "fps", "frames_indices", "duration", "video_backend"}``.
        """
        fps = self.fps if self.fps else default_fps
        return {
            "total_num_frames": int(self.total_num_frames),
            "fps": None if fps is None else float(fps),
            "frames_indices": [int(i) for i in self.frame_indices],
            "duration": None if not fps else self.total_num_frames / fps,
            "video_backend": self.backend,
        }

    def to_video_metadata(self, *, default_fps: float | None = None) -> VideoMetadata:
        """Build the :class:`transformers.video_utils.VideoMetadata` a video processor accepts.

        Pass it with the frames and ``do_sample_frames=False`` (the frames are already sampled)::

            processor(text=..., videos=[video.frames], video_metadata=[video.to_video_metadata()],
                      do_sample_frames=False, return_tensors="pt")

        Args:
            default_fps: frame rate to use when the native one is unknown. ``None`` (the default) passes
                ``fps=None``: processors that only need the frames (Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision) do not
                care, while Qwen3-VL, which prints per-frame timestamps, then warns and assumes 24 fps. Pass a
                number (e.g. the rate the frames were extracted at) to get meaningful timestamps.

        Returns:
            A ``VideoMetadata`` with ``total_num_frames``, ``fps``, ``frames_indices``, ``duration``,
            ``video_backend`` and the ``width``/``height`` of the returned frames.
        """
        from transformers.video_utils import VideoMetadata

        return VideoMetadata(**self.metadata(default_fps=default_fps), width=self.width, height=self.height)

    def to_pil_frames(self) -> list[Image.Image]:
        """The frames as a list of RGB PIL images."""
        return [Image.fromarray(np.ascontiguousarray(frame), mode="RGB") for frame in self.frames]


def _frame_image(frame: np.ndarray, where: str) -> Image.Image:
    """One ``(H, W, 3)`` frame as an RGB image (integer dtypes with values in ``[0, 255]`` are cast to uint8)."""
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"{where}: a frame must be (H, W, 3), got shape {frame.shape}")
    if frame.dtype != np.uint8:
        if not np.issubdtype(frame.dtype, np.integer) or (frame.size and (frame.min() < 0 or frame.max() > 255)):
            raise ValueError(f"{where}: frames must be uint8 (or integers in [0, 255]), got {frame.dtype}")
        frame = frame.astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(frame), mode="RGB")


def video_frames(video: Video | np.ndarray | Sequence[Image.Image] | Sequence[np.ndarray]) -> list[Image.Image]:
    """The frames of a decoded clip as a list of PIL images, in order.

    This is how a clip is handed to consumers that take images: LLaVA checkpoints (each frame is one ``<image>``)
    and OpenAI-compatible servers (frames as ``image_url`` parts).

    Args:
        video: a :class:`Video` (its sampled ``frames``), a ``(T, H, W, 3)`` array, a list of PIL images (returned
            as given, the same objects) or a list of ``(H, W, 3)`` arrays. Arrays must be uint8, or integers in
            ``[0, 255]`` (cast).

    Returns:
        ``T`` images (RGB for array inputs); an empty list for a clip without frames.

    Raises:
        ValueError: an array of the wrong shape or dtype.
        TypeError: anything else.
    """
    if isinstance(video, Video) or hasattr(video, "to_pil_frames"):
        return list(video.to_pil_frames())
    if isinstance(video, np.ndarray):
        if video.ndim != 4 or video.shape[-1] != 3:
            raise ValueError(f"a video array must be (T, H, W, 3), got shape {video.shape}")
        return [_frame_image(frame, "video array") for frame in video]
    if isinstance(video, Sequence) and not isinstance(video, (str, bytes, bytearray)):
        if all(isinstance(frame, Image.Image) for frame in video):
            return list(video)
        if all(isinstance(frame, np.ndarray) for frame in video):
            return [_frame_image(frame, f"frame {i}") for i, frame in enumerate(video)]
        raise TypeError("a list of video frames must hold only PIL images or only (H, W, 3) arrays")
    raise TypeError(f"cannot take video frames from a {type(video).__name__}")
