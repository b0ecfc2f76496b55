"""The resumable-job engine and its files: what every long-running command of the package is built on.

* :mod:`~unifiedreward.io.files` — JSON / JSONL reading (errors name ``file:line``; a truncated last line can be
  repaired) and crash-safe writing (``fsync``, atomic replace).
* :mod:`~unifiedreward.io.keys` — :func:`id_key`, the one identity rule for record ids.
* :mod:`~unifiedreward.io.shards` — ``--shard i/n`` parsing, the split rule, shard file names, merging.
* :mod:`~unifiedreward.io.settings` — ``<output>.settings.json``: a resumed job with other settings is refused.
* :mod:`~unifiedreward.io.job` — :func:`run_resumable`: chunked processing with prefetch, resume, retry of failed
  records.

Errors are :class:`unifiedreward.errors.DataError` (bad files and records) and its subclass
:class:`unifiedreward.errors.SettingsError`.
"""

from unifiedreward.io.files import (
    append_jsonl,
    read_json,
    read_jsonl,
    to_jsonable,
    write_json_atomic,
    write_jsonl_atomic,
)
from unifiedreward.io.job import JobStats, run_resumable
from unifiedreward.io.keys import id_key
from unifiedreward.io.settings import check_settings, settings_path
from unifiedreward.io.shards import merge_jsonl, parse_shard, select_shard, shard_path

__all__ = [
    "JobStats",
    "append_jsonl",
    "check_settings",
    "id_key",
    "merge_jsonl",
    "parse_shard",
    "read_json",
    "read_jsonl",
    "run_resumable",
    "select_shard",
    "settings_path",
    "shard_path",
    "to_jsonable",
    "write_json_atomic",
    "write_jsonl_atomic",
]
