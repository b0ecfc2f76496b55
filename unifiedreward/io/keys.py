"""Record identity: the one rule every job uses to match input items, output records and shard files."""

from __future__ import annotations

from typing import Any

__all__ = ["id_key"]


def id_key(value: Any) -> str:
    """The stable string key of a record id: ``str(value)``.

    So ``3`` and ``"3"`` are the same record (and count as duplicates of each other), and keys can be compared,
    sorted and stored as JSON object keys.

    >>> id_key(3) == id_key("3") == "3"
    True
    """
    return str(value)
