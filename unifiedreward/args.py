"""Command-line parsing shared by every entry point: dataclass arguments, ``--config file.yaml``, flags on top.

Each entry point defines ``XxxArguments`` dataclasses whose fields carry ``metadata={"help": ...}`` (so ``--help``
documents every flag) and calls :func:`parse_args`. A YAML file given with ``--config`` sets defaults; flags given
on the command line override it (the TRL ``TrlParser`` convention).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def parse_args(dataclass_types: Sequence[type], argv: Sequence[str] | None = None, **parser_kwargs: Any) -> tuple:
    """Parse ``argv`` into instances of ``dataclass_types``.

    Args:
        dataclass_types: argument dataclasses, e.g. ``(ModelArguments, DataArguments)``.
        argv: the arguments (``None``: ``sys.argv[1:]``).
        **parser_kwargs: passed to :class:`transformers.HfArgumentParser` (e.g. ``description``, ``prog``).

    Returns:
        One instance per dataclass type, in order.

    Raises:
        SystemExit: on ``--help`` or bad flags (argparse behaviour), or unknown keys in the YAML file.
    """
    import yaml
    from transformers import HfArgumentParser

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path, default=None)
    known, rest = pre.parse_known_args(argv)
    parser = HfArgumentParser(dataclass_types, **parser_kwargs)
    parser.add_argument(
        "--config", type=Path, default=None, help="YAML file of default values; command-line flags override it."
    )
    if known.config is not None:
        values = yaml.safe_load(known.config.read_text(encoding="utf-8")) or {}
        if not isinstance(values, dict):
            parser.error(f"{known.config}: expected a mapping of flag names to values")
        valid = {action.dest for action in parser._actions}
        unknown = sorted(set(values) - valid)
        if unknown:
            parser.error(f"{known.config}: unknown keys {unknown}")
        for action in parser._actions:
            if action.dest in values:
                action.required = False  # the file provides it
        parser.set_defaults(**values)
    parsed = parser.parse_args_into_dataclasses(args=list(rest), return_remaining_strings=False)
    return tuple(parsed[: len(dataclass_types)])  # drop the namespace holding --config
