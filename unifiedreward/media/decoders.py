"""Video decoders: decord, PyAV, frame folders, frame lists and in-memory frames, behind :func:`load_video`.

decord and PyAV are imported lazily (:func:`_import_decord`, :func:`_import_av`), so the package imports without
either. Every failure is a :class:`~unifiedreward.errors.MediaError` naming the file or folder.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from unifiedreward.errors import MediaError
from unifiedreward.media.frames import natural_key, resize_frames, sample_frame_indices, stack_images
from unifiedreward.media.image import PathLike, check_file, check_max_pixels, describe_error, load_image
from unifiedreward.media.video import Video

logger = logging.getLogger(__name__)

#: File name extensions (lower case) counted as frame images inside a frame folder.
FRAME_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})

#: Values accepted by the ``backend`` argument of :func:`load_video`.
VIDEO_BACKENDS: tuple[str, ...] = ("auto", "decord", "pyav")

#: A clip whose frame count is below this fraction of ``duration * fps`` (the container's own duration) is
#: reported as truncated. Applies where no stored frame count can be checked (decord, and PyAV on mkv/webm).
MIN_DURATION_COVERAGE = 0.8


def _clean_fps(value: Any) -> float | None:
    """A positive finite float, or ``None``."""
    try:
        fps = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return fps if math.isfinite(fps) and fps > 0 else None


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
        raise MediaError(path, f"decord cannot open the video ({describe_error(exc)})") from exc
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
            raise MediaError(path, f"decord cannot decode frames {indices} ({describe_error(exc)})") from exc
    finally:
        del reader
    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[0] != len(indices) or frames.shape[-1] != 3:
        raise MediaError(path, f"decord returned frames of unexpected shape {frames.shape}")
    return Video(
        frames=resize_frames(np.ascontiguousarray(frames), max_pixels),
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
        raise MediaError(path, f"PyAV cannot open the video ({describe_error(exc)})") from exc
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
            path, f"decoding failed after {count} frames, truncated or corrupt ({describe_error(exc)})"
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
                path, f"decoding failed after {decoded} frames, truncated or corrupt ({describe_error(exc)})"
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
        frames=resize_frames(frames, max_pixels),
        frame_indices=indices,
        total_num_frames=total,
        fps=native_fps,
        source=str(path),
        backend="pyav",
    )


#: How many files decord failed on and PyAV decoded instead (this process).
_DECORD_FALLBACKS = 0


def _load_video_file(
    path: Path, num_frames: int | None, fps: float | None, backend: str, max_pixels: int | None
) -> Video:
    check_file(path)
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
        global _DECORD_FALLBACKS
        _DECORD_FALLBACKS += 1
        # the first fallback is a warning; a data set of clips decord cannot read (e.g. frames narrower than 32 px)
        # would otherwise print one per file
        logger.log(logging.WARNING if _DECORD_FALLBACKS == 1 else logging.DEBUG,
                   "decord failed on %s (%s); falling back to PyAV%s", path, decord_error.reason,
                   " (further fallbacks are logged at debug level)" if _DECORD_FALLBACKS == 1 else "")  # fmt: skip
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
        frames=stack_images(images, where),
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
        raise MediaError(folder, f"cannot list the frame folder ({describe_error(exc)})") from exc
    frames = [
        p for p in entries if p.suffix.lower() in FRAME_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    ]
    if not frames:
        raise MediaError(folder, f"the folder contains no frame images ({', '.join(sorted(FRAME_EXTENSIONS))})")
    return sorted(frames, key=lambda p: natural_key(p.name))


def _warn_fps_ignored(fps: float | None, what: str) -> None:
    if fps is not None:
        logger.warning(
            "fps=%s ignored for %s: the native frame rate is unknown; sampling by num_frames only", fps, what
        )


def check_video_options(*, num_frames: int | None, fps: float | None, backend: str) -> None:
    """Raise ``ValueError`` for a ``num_frames``/``fps``/``backend`` that :func:`load_video` does not accept."""
    if backend not in VIDEO_BACKENDS:
        raise ValueError(f"backend must be one of {VIDEO_BACKENDS}, got {backend!r}")
    if num_frames is not None and (isinstance(num_frames, bool) or int(num_frames) != num_frames or num_frames < 1):
        raise ValueError(f"num_frames must be a positive integer or None, got {num_frames!r}")
    if fps is not None and (
        isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not (math.isfinite(fps) and fps > 0)
    ):
        raise ValueError(f"fps must be a positive number or None, got {fps!r}")


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
    check_video_options(num_frames=num_frames, fps=fps, backend=backend)
    check_max_pixels(max_pixels)

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
            frames=resize_frames(frames, max_pixels),
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
                frames=stack_images(images, "a list of PIL images"),
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
