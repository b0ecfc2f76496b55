"""Project-wide exception types.

Every error that is the user's input's fault (a missing file, a corrupt video, a malformed record, an unsupported
checkpoint) is a subclass of :class:`UnifiedRewardError`, so pipelines can catch one type, count the item as bad,
and go on.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

#: How many problems :func:`list_problems` shows before "... and N more".
MAX_LISTED_PROBLEMS = 20


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


class DataError(UnifiedRewardError):
    """A data, input or output file or one of its records is unusable (missing, malformed, inconsistent).

    The one data error of the whole package. The message always names the file and, for record-level problems, the
    record (``"<path>: record 'x': <reason>"``); line-level problems put the line into ``path``
    (``"<path>:<line>"``).

    Attributes:
        reason: what is wrong, in words.
        path: the data file (or ``None``).
        record_id: the record's id (or ``None`` for file-level problems).
    """

    def __init__(self, reason: str, *, path: str | Path | None = None, record_id: str | None = None):
        self.reason = reason
        self.path = None if path is None else str(path)
        self.record_id = record_id
        where = []
        if self.path is not None:
            where.append(self.path)
        if record_id is not None:
            where.append(f"record {record_id!r}")
        super().__init__(f"{': '.join(where)}: {reason}" if where else reason)


class SettingsError(DataError):
    """A resumed job was started with settings that differ from the ones stored with its output.

    Raised by :func:`unifiedreward.io.settings.check_settings`; the message lists every changed key as
    ``key: old -> new`` and says to use ``--overwrite`` to start over.

    Attributes:
        changed: ``{key: (stored value, new value)}`` for every key that differs; a key absent on one side is
            shown there as the string ``"<absent>"``.
    """

    def __init__(self, reason: str, *, path: str | Path | None = None, changed: dict | None = None):
        super().__init__(reason, path=path)
        self.changed = dict(changed or {})


def list_problems(header: str, problems: Sequence[str], *, limit: int = MAX_LISTED_PROBLEMS) -> str:
    """One error message for many problems: ``header``, then the first ``limit`` problems one per indented line,
    then ``... and N more`` if some were left out."""
    shown = list(problems[:limit])
    more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    return header + "\n  " + "\n  ".join(shown) + more
