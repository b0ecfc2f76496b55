"""Media loading: images and videos (decord, PyAV fallback, frame folders), and one resolver of media references.

Everything a reward model sees goes through this package, so every way an input can be bad (missing, empty,
truncated, corrupt, not a media file at all) surfaces here as one exception type,
:class:`unifiedreward.errors.MediaError`, whose message names the offending file.

* :func:`resolve_media` turns any reference a dataset or request holds (a path relative to a media root, a URL
  looked up by file name, a ``file://`` URI, bytes, a parquet cell ``{"bytes", "path"}``, a frame folder, a list of
  frames, a PIL image or an array) into an RGB image or a :class:`Video`. Pipelines call this, not the loaders.
* :func:`load_image` reads a path, raw bytes or a PIL image into an RGB :class:`PIL.Image.Image`.
* :func:`load_video` reads a video file, a folder of extracted frames, a list of frame files, an ndarray or a list of
  PIL images into a :class:`Video` (sampled ``(T, H, W, 3)`` uint8 frames plus the metadata a transformers video
  processor wants).
* :func:`sample_frame_indices` is the deterministic frame sampler used by :func:`load_video`.
* :func:`video_frames` gives a clip's frames as PIL images (LLaVA prompts, OpenAI-compatible requests).
* :func:`image_to_data_url` encodes an image for OpenAI-compatible chat APIs.

Modules: :mod:`~unifiedreward.media.image` (images), :mod:`~unifiedreward.media.video` (the :class:`Video` type),
:mod:`~unifiedreward.media.frames` (sampling), :mod:`~unifiedreward.media.decoders` (decord / PyAV / frame folders /
frame lists) and :mod:`~unifiedreward.media.resolve` (references). Video files are decoded with decord when it is
installed and fall back to PyAV; both are imported lazily, so this package imports without either.
"""

from __future__ import annotations

from unifiedreward.errors import MediaError
from unifiedreward.media.decoders import FRAME_EXTENSIONS, MIN_DURATION_COVERAGE, VIDEO_BACKENDS, load_video
from unifiedreward.media.frames import sample_frame_indices
from unifiedreward.media.image import PathLike, image_to_data_url, load_image, upscale_to_min_side
from unifiedreward.media.resolve import MEDIA_KINDS, MediaKind, resolve_media, resolve_path
from unifiedreward.media.video import Video, video_frames

__all__ = [
    "FRAME_EXTENSIONS",
    "MEDIA_KINDS",
    "MIN_DURATION_COVERAGE",
    "VIDEO_BACKENDS",
    "MediaError",
    "MediaKind",
    "PathLike",
    "Video",
    "image_to_data_url",
    "load_image",
    "load_video",
    "resolve_media",
    "resolve_path",
    "sample_frame_indices",
    "upscale_to_min_side",
    "video_frames",
]
