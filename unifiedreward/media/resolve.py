"""One resolver for every way a dataset, a request file or a caller refers to an image or a video.

:func:`resolve_media` takes a *reference* as the data holds it (a path relative to a media root, a URL whose file
was downloaded beside the data, a ``file://`` URI, raw bytes, a ``datasets``/parquet cell ``{"bytes", "path"}``, a
frame folder, a list of frames, or an already decoded image/array) and returns what a judge or a trainer consumes:
an RGB :class:`PIL.Image.Image` or a :class:`~unifiedreward.media.video.Video`. Every problem the data can cause
surfaces as :class:`~unifiedreward.errors.MediaError` naming the item, so pipelines count the item and go on.
"""

from __future__ import annotations

import logging
import os
import tempfile
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from unifiedreward.errors import MediaError
from unifiedreward.media.decoders import check_video_options, load_video
from unifiedreward.media.frames import sample_frame_indices, stack_images
from unifiedreward.media.image import check_max_pixels, load_image
from unifiedreward.media.video import Video

logger = logging.getLogger(__name__)

MediaKind = Literal["image", "video"]

#: Values accepted by the ``kind`` argument of :func:`resolve_media`.
MEDIA_KINDS: tuple[str, ...] = ("image", "video")

#: Sub-folders of the media root searched for a reference's file name (after the root itself), in order.
SEARCH_FOLDERS: tuple[str, ...] = ("videos", "images")

_URL_SCHEMES = ("http", "https")
_EMPTY = "the item has no media (empty reference)"


def _local_reference(text: str) -> tuple[Path | None, str | None]:
    """``(path, url_name)``: the local path a reference names, or the file name of an http(s) URL."""
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme in _URL_SCHEMES:
        return None, Path(urllib.parse.unquote(parsed.path)).name
    if parsed.scheme == "file":
        return Path(urllib.parse.unquote(parsed.path)), None
    return Path(text).expanduser(), None


def resolve_path(reference: str | os.PathLike, root: str | os.PathLike | None = None, *, search: bool = True) -> Path:
    """The local file or folder a path, ``file://`` URI or http(s) URL names.

    ``~`` is expanded; a ``file://`` URI becomes its (unquoted) local path; a URL is never downloaded.

    * Without ``root``: the path as given (a relative one is relative to the working directory). Its existence is
      not checked, so the loader reports a missing file with its own message. A URL raises (nowhere to look).
    * With ``root`` and ``search=True`` (the default): the first existing candidate among the path itself
      (absolute, or ``root / path``), then ``root/<name>``, ``root/videos/<name>`` and ``root/images/<name>``,
      where ``<name>`` is the file name. For a URL only the ``<name>`` candidates are tried (download the
      benchmark's media into ``root`` first).
    * With ``root`` and ``search=False``: the path itself (absolute, or ``root / path``), unchecked.

    Args:
        reference: the path, URI or URL (surrounding whitespace is ignored).
        root: the folder relative references are relative to (a benchmark's ``--media_root``).
        search: look the file name up in ``root`` when the path itself does not exist.

    Returns:
        The path.

    Raises:
        MediaError: an empty reference; a URL without ``root``; nothing found while searching (the message lists
            every place looked at).
    """
    text = os.fspath(reference)
    if not isinstance(text, str):
        raise MediaError(None, "a bytes path is not a media reference (pass str or os.PathLike)")
    text = text.strip()
    if not text:
        raise MediaError(None, _EMPTY)
    path, url_name = _local_reference(text)
    if root is None:
        if path is None:
            raise MediaError(text, "a URL is never downloaded: download the file and pass root= to look it up")
        return path
    base = Path(root).expanduser()
    if path is not None and not search:
        return path if path.is_absolute() else base / path
    name = url_name if path is None else path.name
    candidates = [] if path is None else [path if path.is_absolute() else base / path]
    candidates += [base / name] + [base / folder / name for folder in SEARCH_FOLDERS]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    looked = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise MediaError(text, f"not found (looked for {looked})")


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def _renamed(error: MediaError, name: str | None, temporary: str | None = None) -> MediaError:
    """``error`` naming ``name`` instead of an anonymous in-memory source or the ``temporary`` file."""
    reason = error.reason
    if temporary:
        reason = reason.replace(temporary, name or "<in-memory video>")
    return MediaError(name, reason)


def _image_from_array(array: np.ndarray) -> Image.Image:
    """A uint8 ``(H, W)`` / ``(H, W, 1|3|4)`` array as a PIL image (greyscale, RGB or RGBA)."""
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (1, 3, 4))):
        shapes = "(H, W), (H, W, 1), (H, W, 3) or (H, W, 4)"
        raise ValueError(f"an image array must be {shapes} uint8, got {array.shape} {array.dtype}")
    return Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array)


def _resolve_image(value: Any, name: str | None, root: Any, max_pixels: int | None) -> Image.Image:
    if isinstance(value, Image.Image):
        return load_image(value, max_pixels=max_pixels)
    if isinstance(value, np.ndarray):
        return load_image(_image_from_array(value), max_pixels=max_pixels)
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return load_image(bytes(value), max_pixels=max_pixels)
        except MediaError as exc:
            raise _renamed(exc, name) from exc
    if _is_path(value):
        return load_image(resolve_path(value, root), max_pixels=max_pixels)
    raise MediaError(name, f"unsupported image reference of type {type(value).__name__}")


def _video_from_bytes(data: bytes, name: str | None, options: dict[str, Any]) -> Video:
    """Decode an encoded video held in memory (through a temporary file: decord and PyAV read files)."""
    if not data:
        raise MediaError(name, "empty video data (0 bytes)")
    with tempfile.NamedTemporaryFile(suffix=".mp4") as handle:
        handle.write(data)
        handle.flush()
        try:
            video = load_video(handle.name, **options)
        except MediaError as exc:
            raise _renamed(exc, name, handle.name) from exc
    video.source = name
    return video


def _video_from_items(items: list[Any], root: Any, num_frames: int | None, max_pixels: int | None) -> Video:
    """A clip given as a list of frames: paths (read lazily by :func:`load_video`) or in-memory images/cells."""
    if not items:
        raise MediaError(None, "empty list of frames")
    if all(_is_path(item) for item in items):
        paths = [resolve_path(item, root) for item in items]
        return load_video(paths, num_frames=num_frames, max_pixels=max_pixels)
    indices = sample_frame_indices(len(items), num_frames=num_frames)
    images = []
    for index in indices:
        try:
            images.append(resolve_media(items[index], "image", root=root, max_pixels=max_pixels))
        except MediaError as exc:
            raise MediaError(exc.path, f"frame {index} of a list of frames: {exc.reason}") from exc
    frames = stack_images(images, "a list of frames")
    return Video(
        frames=frames, frame_indices=indices, total_num_frames=len(items), fps=None, source=None, backend="array"
    )


def _resolve_video(value: Any, name: str | None, root: Any, options: dict[str, Any]) -> Video:
    fps = options.pop("fps")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _video_from_bytes(bytes(value), name, {**options, "fps": fps})
    if _is_path(value):
        path = resolve_path(value, root)
        if path.is_dir() and fps is not None:  # a frame folder has no native frame rate: sample by num_frames
            logger.debug("fps=%s does not apply to the frame folder %s", fps, path)
            fps = None
        return load_video(path, fps=fps, **options)
    if fps is not None:
        logger.debug("fps=%s does not apply to in-memory frames", fps)
    if isinstance(value, np.ndarray):
        return load_video(value, **options)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return _video_from_items(list(value), root, options["num_frames"], options["max_pixels"])
    raise MediaError(name, f"unsupported video reference of type {type(value).__name__}")


def resolve_media(
    reference: Any,
    kind: MediaKind,
    *,
    root: str | os.PathLike | None = None,
    num_frames: int | None = None,
    fps: float | None = None,
    max_pixels: int | None = None,
    backend: str | None = None,
) -> Image.Image | Video:
    """Load the image or video a reference names.

    References, by type:

    * ``str`` / ``os.PathLike``: a file (or, for a video, a frame folder), located by :func:`resolve_path`
      (``~`` expanded, ``file://`` URIs, relative to ``root`` with a file-name search in ``root``, ``root/videos``
      and ``root/images``; http(s) URLs are looked up by file name in ``root``, never downloaded).
    * ``bytes`` / ``bytearray`` / ``memoryview``: an encoded image, or an encoded video (decoded from a temporary
      file).
    * ``{"bytes": ..., "path": ...}`` (a ``datasets`` Image/Video cell, or a parquet struct): the bytes when
      non-empty, else the path; errors name the cell's ``path``.
    * ``PIL.Image.Image`` (image): normalised like a file (EXIF orientation, RGB, ``max_pixels``); never modified.
    * ``numpy.ndarray``: an image ``(H, W)``/``(H, W, 1|3|4)`` uint8, or a video ``(T, H, W, 3)`` uint8.
    * a list or tuple (video): frames as paths (each resolved like a path; only the sampled ones are read), or as
      anything an image reference may be (PIL images, arrays, bytes, cells).

    Videos: ``num_frames`` and ``fps`` follow :func:`~unifiedreward.media.frames.sample_frame_indices`. ``fps``
    applies only to video files (decoded bytes included); frame folders, frame lists and arrays have no native rate
    and are sampled by ``num_frames`` alone. ``max_pixels`` caps every image and every frame (aspect kept, never
    upscaled).

    Args:
        reference: the media, as above.
        kind: ``"image"`` or ``"video"``.
        root: the media root that relative paths and URL file names are looked up in; ``None``: relative to the
            working directory, without search.
        num_frames: video only: at most this many frames (uniform over the clip); ``None``: every sampled frame.
        fps: video files only: sample at this rate (frames per second) before the ``num_frames`` cap.
        max_pixels: downsize so that ``width * height <= max_pixels``.
        backend: video files only: ``"auto"`` (``None``; decord, falling back to PyAV), ``"decord"`` or ``"pyav"``.

    Returns:
        A new RGB image (``kind="image"``) or a :class:`Video` (``kind="video"``).

    Raises:
        MediaError: no media (``None``, empty string, empty cell, empty list), a file or folder not found, or a
            missing, empty, truncated, corrupt or unsupported medium. The message names the reference (the
            resolved file, the cell's path, or the reference as given when nothing was found).
        ValueError: an invalid ``kind``, ``num_frames``, ``fps``, ``max_pixels`` or ``backend``, or a malformed array.
        ImportError: a forced video backend is not installed.
    """
    if kind not in MEDIA_KINDS:
        raise ValueError(f"kind must be one of {MEDIA_KINDS}, got {kind!r}")
    check_max_pixels(max_pixels)
    if kind == "video":
        check_video_options(num_frames=num_frames, fps=fps, backend=backend or "auto")
    name: str | None = None
    value = reference
    if isinstance(value, Mapping):
        path = value.get("path")
        name = str(path) if path else None
        value = value.get("bytes") or path
    if value is None or (isinstance(value, str) and not value.strip()):
        raise MediaError(name, _EMPTY)
    if kind == "image":
        return _resolve_image(value, name, root, max_pixels)
    options = {"num_frames": num_frames, "fps": fps, "backend": backend or "auto", "max_pixels": max_pixels}
    return _resolve_video(value, name, root, options)
