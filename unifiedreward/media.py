"""Media loading: images and videos (decord, PyAV fallback, frame folders).

Everything a reward model sees goes through this module, so every way an input can be bad (missing, empty,
truncated, corrupt, not a media file at all) surfaces here as one exception type,
:class:`unifiedreward.errors.MediaError`, whose message names the offending file.

* :func:`load_image` reads a path, raw bytes or a PIL image into an RGB :class:`PIL.Image.Image`.
* :func:`load_video` reads a video file, a folder of extracted frames, a list of frame files, an ndarray or a list of
  PIL images into a :class:`Video` (sampled ``(T, H, W, 3)`` uint8 frames plus the metadata a transformers video
  processor wants).
* :func:`sample_frame_indices` is the deterministic frame sampler used by :func:`load_video`.
* :func:`image_to_data_url` encodes an image for OpenAI-compatible chat APIs.

Video files are decoded with decord when it is installed and falls back to PyAV; both are imported lazily, so
this module imports without either.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import numbers
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps

from unifiedreward.errors import MediaError

if TYPE_CHECKING:  # pragma: no cover
    from transformers.video_utils import VideoMetadata

logger = logging.getLogger(__name__)

#: File name extensions (lower case) counted as frame images inside a frame folder.
FRAME_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})

#: Values accepted by the ``backend`` argument of :func:`load_video`.
VIDEO_BACKENDS: tuple[str, ...] = ("auto", "decord", "pyav")

#: A clip whose frame count is below this fraction of ``duration * fps`` (the container's own duration) is
#: reported as truncated. Applies where no stored frame count can be checked (decord, and PyAV on mkv/webm).
MIN_DURATION_COVERAGE = 0.8

_MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif", "BMP": "image/bmp"}
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_INT_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")

PathLike = str | os.PathLike


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


# ----------------------------------------------------------------------------------------------------------------
# images


def _fit_max_pixels(width: int, height: int, max_pixels: int | None) -> tuple[int, int]:
    """Largest size with the same aspect ratio (each side floored) such that ``w * h <= max_pixels``."""
    if max_pixels is None or width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    new_w = max(1, math.floor(width * scale))
    new_h = max(1, math.floor(height * scale))
    # guard against floating-point overshoot
    while new_w * new_h > max_pixels and (new_w > 1 or new_h > 1):
        if new_w >= new_h:
            new_w -= 1
        else:
            new_h -= 1
    return new_w, new_h


def _check_max_pixels(max_pixels: int | None) -> None:
    if max_pixels is not None and (isinstance(max_pixels, bool) or int(max_pixels) != max_pixels or max_pixels < 1):
        raise ValueError(f"max_pixels must be a positive integer or None, got {max_pixels!r}")


def _downsize(img: Image.Image, max_pixels: int | None) -> Image.Image:
    size = _fit_max_pixels(img.width, img.height, max_pixels)
    if size == img.size:
        return img
    return img.resize(size, Image.Resampling.BICUBIC)


def _composite_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB.

    * transparent images (``RGBA``, ``LA``, ``PA``, ``P``/``L``/``RGB`` with a transparency key) are composited on
      white;
    * high bit-depth greyscale (``I;16*``, ``I``) is scaled to 8 bits (``v / 257``) when any value exceeds 255,
      otherwise taken as is; float images (``F``) are multiplied by 255 when all values are <= 1, then clipped;
    * everything else (``L``, ``1``, ``P``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``...) goes through ``convert("RGB")``.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in _INT_MODES or mode == "F":
        arr = np.asarray(img).astype(np.float64)
        if arr.size:
            if mode == "F":
                if np.nanmax(arr) <= 1.0:
                    arr = arr * 255.0
            elif arr.max() > 255:
                arr = arr / 257.0
        arr = np.clip(np.nan_to_num(np.round(arr)), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    has_transparency = (
        img.has_transparency_data if hasattr(img, "has_transparency_data") else "transparency" in img.info
    )
    if mode in _ALPHA_MODES or has_transparency:
        return _composite_on_white(img)
    return img.convert("RGB")


def _describe(exc: BaseException, limit: int = 300) -> str:
    """One line describing an exception (decord messages carry multi-line C++ traces)."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > limit:
        first = first[:limit] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _check_file(path: Path) -> None:
    """Raise :class:`MediaError` unless ``path`` is an existing, non-empty regular file."""
    if not path.exists():
        raise MediaError(path, "no such file or directory")
    if path.is_dir():
        raise MediaError(path, "is a directory, not a file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MediaError(path, f"cannot stat the file ({_describe(exc)})") from exc
    if size == 0:
        raise MediaError(path, "the file is empty (0 bytes)")


def load_image(src: PathLike | bytes | Image.Image, *, max_pixels: int | None = None) -> Image.Image:
    """Load an image as a fully decoded RGB :class:`PIL.Image.Image`.

    The EXIF orientation is applied (so a phone photo comes out upright), any mode is converted to RGB
    (transparency is composited on white, 16-bit greyscale is scaled to 8 bits, CMYK/palette/greyscale are
    converted), and the pixels are decoded right away so a truncated file fails here rather than later. The input
    image is never modified.

    Args:
        src: a file path (``str`` or ``os.PathLike``), the raw bytes of an encoded image, or a PIL image.
        max_pixels: if given, downsize (bicubic, aspect ratio kept, each side floored) so that
            ``width * height <= max_pixels``. Images already small enough are never upscaled.

    Returns:
        A new RGB image.

    Raises:
        MediaError: the file is missing, a directory, empty, truncated, corrupt or not an image (``path`` is the
            file, or ``None`` for bytes).
        TypeError: ``src`` is of an unsupported type.
        ValueError: ``max_pixels`` is not a positive integer.
    """
    _check_max_pixels(max_pixels)
    path: Path | None = None
    if isinstance(src, Image.Image):
        img = src
        filename = getattr(src, "filename", None)
        path = Path(filename) if filename else None
        opened = False
    elif isinstance(src, (bytes, bytearray, memoryview)):
        if len(src) == 0:
            raise MediaError(None, "empty image data (0 bytes)")
        opened = True
        try:
            img = Image.open(io.BytesIO(bytes(src)))
        except Exception as exc:
            raise MediaError(None, f"not a readable image ({_describe(exc)})") from exc
    elif isinstance(src, (str, os.PathLike)):
        path = Path(src)
        _check_file(path)
        opened = True
        try:
            img = Image.open(path)
        except Exception as exc:
            raise MediaError(path, f"not a readable image ({_describe(exc)})") from exc
    else:
        raise TypeError(f"load_image expects a path, bytes or a PIL image, got {type(src).__name__}")

    try:
        try:
            img.load()
        except Exception as exc:
            raise MediaError(path, f"cannot decode the image, truncated or corrupt ({_describe(exc)})") from exc
        try:
            oriented = ImageOps.exif_transpose(img)
        except (
            OSError,
            ValueError,
            TypeError,
            KeyError,
            IndexError,
            AttributeError,
            SyntaxError,
            struct.error,
        ) as exc:
            # a broken EXIF block should not lose an otherwise good image
            logger.warning("ignoring unreadable EXIF orientation of %s: %s", path or "<in-memory image>", exc)
            oriented = img.copy()
        if oriented is None:  # pragma: no cover - only with in_place=True
            oriented = img
        try:
            rgb = _to_rgb(oriented)
        except Exception as exc:
            raise MediaError(path, f"cannot convert image mode {oriented.mode!r} to RGB ({_describe(exc)})") from exc
        if rgb is img:
            rgb = img.copy()
        return _downsize(rgb, max_pixels)
    finally:
        if opened:
            img.close()


def image_to_data_url(image: Image.Image, *, format: str = "JPEG", quality: int = 95) -> str:
    """Encode an image as a ``data:`` URL, as OpenAI-compatible chat APIs take in ``image_url`` parts.

    Args:
        image: the image; converted to RGB first (transparency on white) when the format cannot store its mode
            (always for JPEG).
        format: a PIL format name: ``"JPEG"`` (default, as upstream UnifiedReward sends), ``"PNG"``, ``"WEBP"``...
        quality: encoder quality for lossy formats (JPEG, WEBP); ignored otherwise.

    Returns:
        ``"data:image/jpeg;base64,..."`` (the MIME type follows ``format``).
    """
    fmt = format.upper()
    if fmt == "JPG":
        fmt = "JPEG"
    mime = _MIME_TYPES.get(fmt, f"image/{fmt.lower()}")
    if fmt == "JPEG" or image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        image = _to_rgb(image)
    kwargs: dict[str, Any] = {"quality": int(quality)} if fmt in ("JPEG", "WEBP") else {}
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


# ----------------------------------------------------------------------------------------------------------------
# frame sampling


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


# ----------------------------------------------------------------------------------------------------------------
# videos


def _natural_key(name: str) -> tuple[list[Any], str]:
    """Sort key that orders ``2.jpg`` before ``10.jpg`` (digit runs compare as numbers)."""
    parts = re.split(r"(\d+)", name)
    return [int(p) if i % 2 else p.lower() for i, p in enumerate(parts)], name


def _clean_fps(value: Any) -> float | None:
    """A positive finite float, or ``None``."""
    try:
        fps = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return fps if math.isfinite(fps) and fps > 0 else None


def _resize_frames(frames: np.ndarray, max_pixels: int | None) -> np.ndarray:
    """Downsize every frame of ``(T, H, W, 3)`` with the :func:`load_image` rule."""
    height, width = frames.shape[1:3]
    size = _fit_max_pixels(width, height, max_pixels)
    if size == (width, height):
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.Resampling.BICUBIC)) for f in frames])


def _stack_images(images: list[Image.Image], where: str) -> np.ndarray:
    """Stack RGB images, resizing any whose size differs from the first one (with a warning)."""
    size = images[0].size
    arrays = []
    for i, img in enumerate(images):
        if img.size != size:
            logger.warning("frame %d of %s is %sx%s, resizing to %sx%s", i, where, *img.size, *size)
            img = img.resize(size, Image.Resampling.BICUBIC)
        arrays.append(np.asarray(img, dtype=np.uint8))
    return np.stack(arrays)


def _import_decord() -> Any:
    import decord

    return decord


def _import_av() -> Any:
    import av

    return av


def _stream_duration(av: Any, container: Any, stream: Any) -> float | None:
    """Duration in seconds of the video stream (or, failing that, of the container), or ``None``."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return float(container.duration) / av.time_base
    return None


def _probe_duration(path: Path) -> float | None:
    """The duration the container declares, read with PyAV without decoding; ``None`` if unavailable."""
    try:
        av = _import_av()
    except ImportError:
        return None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            return _stream_duration(av, container, container.streams.video[0])
    except (OSError, ValueError, IndexError, av.FFmpegError):
        return None


def _check_duration_coverage(path: Path, count: int, native_fps: float | None, duration: float | None) -> None:
    """Raise :class:`MediaError` if ``count`` frames cover much less than the declared duration (a cut file)."""
    if not native_fps or not duration:
        return
    expected = duration * native_fps
    if count < MIN_DURATION_COVERAGE * expected - 1:
        raise MediaError(
            path,
            f"only {count} frame(s) are readable but the container declares {duration:.3g} s at {native_fps:.3g} fps "
            f"(about {expected:.0f} frames): truncated",
        )


def _read_decord(path: Path, num_frames: int | None, fps: float | None, max_pixels: int | None) -> Video:
    """Decode the sampled frames of ``path`` with decord (random access through ``get_batch``)."""
    decord = _import_decord()
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    except Exception as exc:
        raise MediaError(path, f"decord cannot open the video ({_describe(exc)})") from exc
    try:
        total = len(reader)
        if total <= 0:
            raise MediaError(path, "the video has no frames")
        native_fps = _clean_fps(reader.get_avg_fps())
        # decord silently returns the readable prefix of a cut mkv/webm: compare with the declared duration
        _check_duration_coverage(path, total, native_fps, _probe_duration(path))
        indices = sample_frame_indices(total, native_fps=native_fps, num_frames=num_frames, fps=fps)
        try:
            batch = reader.get_batch(indices)
            frames = batch.asnumpy() if hasattr(batch, "asnumpy") else np.asarray(batch)
        except Exception as exc:
            raise MediaError(path, f"decord cannot decode frames {indices} ({_describe(exc)})") from exc
    finally:
        del reader
    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[0] != len(indices) or frames.shape[-1] != 3:
        raise MediaError(path, f"decord returned frames of unexpected shape {frames.shape}")
    return Video(
        frames=_resize_frames(np.ascontiguousarray(frames), max_pixels),
        frame_indices=indices,
        total_num_frames=total,
        fps=native_fps,
        source=str(path),
        backend="decord",
    )


def _pyav_open(av: Any, path: Path) -> tuple[Any, Any]:
    try:
        container = av.open(str(path))
    except Exception as exc:
        raise MediaError(path, f"PyAV cannot open the video ({_describe(exc)})") from exc
    if not container.streams.video:
        container.close()
        raise MediaError(path, "the file has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def _pyav_count_frames(av: Any, path: Path) -> int:
    """Count the frames of ``path`` by decoding all of them (for containers that do not store a count)."""
    container, stream = _pyav_open(av, path)
    count = 0
    try:
        for _ in container.decode(stream):
            count += 1
    except Exception as exc:
        raise MediaError(
            path, f"decoding failed after {count} frames, truncated or corrupt ({_describe(exc)})"
        ) from exc
    finally:
        container.close()
    return count


def _read_pyav(path: Path, num_frames: int | None, fps: float | None, max_pixels: int | None) -> Video:
    """Decode ``path`` sequentially with PyAV, keeping only the sampled frames (no seeking).

    The container's frame count is used when it stores one (``stream.frames > 0``, e.g. mp4, avi); a stream that
    then ends or fails before the last sampled index is reported as truncated. Otherwise (mkv, webm) the frames are
    counted by a first decoding pass, and a count far below the declared duration (see
    :data:`MIN_DURATION_COVERAGE`) is reported as truncated.
    """
    av = _import_av()
    container, stream = _pyav_open(av, path)
    native_fps = _clean_fps(stream.average_rate) or _clean_fps(stream.guessed_rate)
    total = int(stream.frames or 0)
    if total <= 0:  # the container stores no frame count (mkv, webm): count by decoding
        duration = _stream_duration(av, container, stream)
        container.close()
        total = _pyav_count_frames(av, path)
        if total <= 0:
            raise MediaError(path, "the video has no decodable frames")
        _check_duration_coverage(path, total, native_fps, duration)
        container, stream = _pyav_open(av, path)
    try:
        indices = sample_frame_indices(total, native_fps=native_fps, num_frames=num_frames, fps=fps)
        position = {index: pos for pos, index in enumerate(indices)}
        last = indices[-1]
        kept: list[np.ndarray | None] = [None] * len(indices)
        decoded = 0
        try:
            for i, frame in enumerate(container.decode(stream)):
                decoded = i + 1
                pos = position.get(i)
                if pos is not None:
                    kept[pos] = frame.to_ndarray(format="rgb24")
                if i >= last:
                    break
        except Exception as exc:
            raise MediaError(
                path, f"decoding failed after {decoded} frames, truncated or corrupt ({_describe(exc)})"
            ) from exc
    finally:
        container.close()
    if decoded <= last:
        raise MediaError(
            path,
            f"the stream ended after {decoded} decodable frames but {total} are declared "
            f"(frame {last} was wanted): truncated or corrupt",
        )
    frames = np.stack(kept)  # type: ignore[arg-type]
    return Video(
        frames=_resize_frames(frames, max_pixels),
        frame_indices=indices,
        total_num_frames=total,
        fps=native_fps,
        source=str(path),
        backend="pyav",
    )


def _load_video_file(
    path: Path, num_frames: int | None, fps: float | None, backend: str, max_pixels: int | None
) -> Video:
    _check_file(path)
    if backend == "decord":
        return _read_decord(path, num_frames, fps, max_pixels)
    if backend == "pyav":
        return _read_pyav(path, num_frames, fps, max_pixels)
    try:
        _import_decord()
    except (ImportError, OSError) as exc:  # not installed, or its bundled FFmpeg fails to load
        logger.debug("decord is unavailable (%s), decoding %s with PyAV", exc, path)
        return _read_pyav(path, num_frames, fps, max_pixels)
    try:
        return _read_decord(path, num_frames, fps, max_pixels)
    except MediaError as decord_error:
        logger.warning("decord failed on %s (%s); falling back to PyAV", path, decord_error.reason)
        try:
            _import_av()
        except ImportError:
            raise decord_error from None
        try:
            return _read_pyav(path, num_frames, fps, max_pixels)
        except MediaError as pyav_error:
            raise MediaError(path, f"{pyav_error.reason}; decord also failed: {decord_error.reason}") from pyav_error


def _load_frame_files(
    paths: list[Path], where: str, source: str | None, num_frames: int | None, max_pixels: int | None
) -> Video:
    """Load the sampled frames of an ordered list of image files."""
    indices = sample_frame_indices(len(paths), num_frames=num_frames)
    images = []
    for index in indices:
        try:
            images.append(load_image(paths[index], max_pixels=max_pixels))
        except MediaError as exc:
            raise MediaError(exc.path, f"frame {index} of {where}: {exc.reason}") from exc
    return Video(
        frames=_stack_images(images, where),
        frame_indices=indices,
        total_num_frames=len(paths),
        fps=None,
        source=source,
        backend="frames",
    )


def _list_frame_folder(folder: Path) -> list[Path]:
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        raise MediaError(folder, f"cannot list the frame folder ({_describe(exc)})") from exc
    frames = [
        p for p in entries if p.suffix.lower() in FRAME_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    ]
    if not frames:
        raise MediaError(folder, f"the folder contains no frame images ({', '.join(sorted(FRAME_EXTENSIONS))})")
    return sorted(frames, key=lambda p: _natural_key(p.name))


def _warn_fps_ignored(fps: float | None, what: str) -> None:
    if fps is not None:
        logger.warning(
            "fps=%s ignored for %s: the native frame rate is unknown; sampling by num_frames only", fps, what
        )


def load_video(
    src: PathLike | Sequence[PathLike] | Sequence[Image.Image] | np.ndarray,
    *,
    num_frames: int | None = None,
    fps: float | None = None,
    backend: str = "auto",
    max_pixels: int | None = None,
) -> Video:
    """Load and sample a video into a :class:`Video`.

    Accepted sources:

    * a video file (mp4, avi, webm, mkv, mov...). ``backend="auto"`` tries decord and falls back to PyAV when decord
      is not installed or fails on the file; ``"decord"`` / ``"pyav"`` force one. decord decodes only the sampled
      frames (``get_batch``); PyAV decodes sequentially up to the last sampled frame and keeps the sampled ones
      (no seeking). The container's frame count is used when it stores one, otherwise frames are counted by
      decoding. A file cut short is detected when fewer frames decode than the container declares, or when the
      readable frames cover less than :data:`MIN_DURATION_COVERAGE` of its declared duration.
      ``Video.backend`` is ``"decord"`` or ``"pyav"``.
    * a directory of extracted frame images (the ShareGPTVideo layout), ordered by natural name order (``2.jpg``
      before ``10.jpg``); hidden files and non-image files are skipped. ``backend="frames"``, ``fps=None``.
    * a list of frame image paths, in the given order (``backend="frames"``).
    * a ``(T, H, W, 3)`` uint8 array or a list of PIL images (``backend="array"``, ``source=None``).

    For frames given as images or arrays the native frame rate is unknown: ``fps`` is then ignored (with a logged
    warning) and only ``num_frames`` applies. Only the sampled frame images are read, so a corrupt frame that is
    not sampled goes unnoticed. Frames whose size differs from the first sampled one are resized to it (with a
    warning). The ``backend`` argument only matters for video files.

    Args:
        src: the video, as above.
        num_frames: maximum number of frames; see :func:`sample_frame_indices` for the exact rule.
        fps: sample at this many frames per second (needs a known native frame rate), then cap at ``num_frames``.
        backend: ``"auto"``, ``"decord"`` or ``"pyav"``.
        max_pixels: downsize each frame so that ``width * height <= max_pixels`` (same rule as :func:`load_image`).

    Returns:
        The sampled frames with their indices, the source's frame count and frame rate, and the backend used.

    Raises:
        MediaError: the source is missing, empty, truncated, corrupt, has no video stream or no frames, or is a
            folder without frame images or with an unreadable sampled frame. The message names the file.
        ValueError: invalid ``num_frames``, ``fps``, ``max_pixels`` or ``backend``, or a malformed array.
        TypeError: ``src`` is of an unsupported type.
        ImportError: a forced backend (or, for ``"auto"``, both) is not installed.
    """
    if backend not in VIDEO_BACKENDS:
        raise ValueError(f"backend must be one of {VIDEO_BACKENDS}, got {backend!r}")
    if num_frames is not None and (isinstance(num_frames, bool) or int(num_frames) != num_frames or num_frames < 1):
        raise ValueError(f"num_frames must be a positive integer or None, got {num_frames!r}")
    if fps is not None and (
        isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not (math.isfinite(fps) and fps > 0)
    ):
        raise ValueError(f"fps must be a positive number or None, got {fps!r}")
    _check_max_pixels(max_pixels)

    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if path.is_dir():
            _warn_fps_ignored(fps, f"frame folder {path}")
            return _load_frame_files(_list_frame_folder(path), str(path), str(path), num_frames, max_pixels)
        return _load_video_file(path, num_frames, fps, backend, max_pixels)

    if isinstance(src, np.ndarray):
        if src.ndim != 4 or src.shape[-1] != 3 or src.dtype != np.uint8:
            raise ValueError(f"a video array must be (T, H, W, 3) uint8, got {src.shape} {src.dtype}")
        if src.shape[0] == 0:
            raise MediaError(None, "the video array has no frames")
        _warn_fps_ignored(fps, "an in-memory array")
        indices = sample_frame_indices(src.shape[0], num_frames=num_frames)
        frames = np.ascontiguousarray(src[indices])
        return Video(
            frames=_resize_frames(frames, max_pixels),
            frame_indices=indices,
            total_num_frames=int(src.shape[0]),
            fps=None,
            source=None,
            backend="array",
        )

    if isinstance(src, Sequence) and not isinstance(src, (bytes, bytearray)):
        items = list(src)
        if not items:
            raise MediaError(None, "empty list of frames")
        if all(isinstance(item, Image.Image) for item in items):
            _warn_fps_ignored(fps, "a list of PIL images")
            indices = sample_frame_indices(len(items), num_frames=num_frames)
            images = [load_image(items[i], max_pixels=max_pixels) for i in indices]
            return Video(
                frames=_stack_images(images, "a list of PIL images"),
                frame_indices=indices,
                total_num_frames=len(items),
                fps=None,
                source=None,
                backend="array",
            )
        if all(isinstance(item, (str, os.PathLike)) for item in items):
            paths = [Path(item) for item in items]
            parents = {p.parent for p in paths}
            source = str(parents.pop()) if len(parents) == 1 else None
            _warn_fps_ignored(fps, "a list of frame files")
            return _load_frame_files(paths, "a list of frame files", source, num_frames, max_pixels)
        raise TypeError("a list video source must hold only paths or only PIL images")

    raise TypeError(f"load_video cannot read a {type(src).__name__}")
