"""Project-wide exception types.

Every error that is the user's input's fault (a missing file, a corrupt video, a malformed record, an unsupported
checkpoint) is a subclass of :class:`UnifiedRewardError`, so pipelines can catch one type, count the item as bad,
and go on.
"""

from __future__ import annotations

from pathlib import Path


class UnifiedRewardError(Exception):
    """Base class of every error raised deliberately by this package."""


class MediaError(UnifiedRewardError):
    """An image or video could not be read (missing, empty, truncated, corrupt or not a media file).

    Attributes:
        path: the offending file or folder, or ``None`` for in-memory inputs (bytes).
        reason: a short human-readable cause.
    """

    def __init__(self, path: str | Path | None, reason: str):
        self.path = None if path is None else str(path)
        self.reason = reason
        where = self.path if self.path is not None else "<in-memory data>"
        super().__init__(f"cannot read media {where!s}: {reason}")


class ModelLoadError(UnifiedRewardError):
    """A reward model or processor could not be loaded (unsupported architecture, missing files, ...)."""


class TemplateError(UnifiedRewardError):
    """A prompt template was asked for that does not exist, or was rendered with missing or wrong fields."""
