"""The settings a job's output was made with, stored beside it and checked when the job is resumed.

A resumed job appends to an existing output. If the command changed in between (another model, prompt version,
pair order, input file, shard, ...), the file would silently mix records of two different runs. So every resumable
job stores its settings in ``<output>.settings.json`` on the first run, and a resumed run with different settings
stops with a :class:`~unifiedreward.errors.SettingsError` that lists every changed key.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from unifiedreward.errors import SettingsError
from unifiedreward.io.files import read_json, write_json_atomic

logger = logging.getLogger(__name__)

__all__ = ["ABSENT", "check_settings", "settings_path"]

#: How a key missing on one side of a comparison is shown.
ABSENT = "<absent>"


def settings_path(output: str | os.PathLike) -> Path:
    """``<output>.settings.json`` (``out.jsonl`` -> ``out.jsonl.settings.json``)."""
    output = Path(output)
    return output.with_name(output.name + ".settings.json")


def _normalized(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings as they read back from JSON (tuples become lists, keys strings), so comparisons are exact."""
    return json.loads(json.dumps(dict(settings), sort_keys=True))


def check_settings(
    path: str | os.PathLike,
    settings: Mapping[str, Any],
    *,
    fresh: bool,
    keys: Collection[str] | None = None,
) -> None:
    """Store ``settings`` at ``path``, or check that the stored ones are the same.

    Args:
        path: the settings file, by convention ``<output>.settings.json`` (:func:`settings_path`).
        settings: JSON-serializable values that define the output (model, prompt version, input file, ...).
        fresh: the output is new or being overwritten: (re)write the file without comparing.
        keys: compare only these keys (default: every key of either side). Other keys are informational: when
            only they changed, the file is updated to the new values.

    Raises:
        SettingsError: a resumed output (``fresh=False`` and the file exists) was made with other settings. The
            message lists ``key: old -> new`` for every differing key (``<absent>`` for a key one side lacks) and
            says to use ``--overwrite`` to start over; ``error.changed`` maps each key to ``(old, new)``.
        DataError: the stored file is not valid JSON or not a JSON object.
    """
    path = Path(path)
    new = _normalized(settings)
    if fresh or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, new)
        return
    old = read_json(path, what="settings file")
    if not isinstance(old, dict):
        raise SettingsError(f"settings file holds a {type(old).__name__}, not a JSON object", path=path)
    compared = sorted(set(old) | set(new)) if keys is None else sorted(keys)
    changed = {
        key: (old.get(key, ABSENT), new.get(key, ABSENT))
        for key in compared
        if old.get(key, ABSENT) != new.get(key, ABSENT)
    }
    if changed:
        lines = [f"{key}: {before!r} -> {after!r}" for key, (before, after) in changed.items()]
        raise SettingsError(
            f"the existing output was made with other settings ({len(changed)} changed); resume with the same "
            "settings, write to another output, or use --overwrite to start over:\n  " + "\n  ".join(lines),
            path=path,
            changed=changed,
        )
    if old != new:
        logger.info("%s: updating informational settings %s", path, sorted(k for k in new if old.get(k) != new[k]))
        write_json_atomic(path, new)
