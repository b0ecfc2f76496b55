"""What the demo prints between its stages: one prefix, one place (and the log level after a training run)."""

from __future__ import annotations

import logging

__all__ = ["quiet", "say"]


def say(text: str) -> None:
    """Print ``[demo] text`` at once (the stages' progress lines)."""
    print(f"[demo] {text}", flush=True)


def quiet() -> None:
    """After training: back to warnings only (``run_training`` sets the package's loggers to INFO)."""
    import transformers

    logging.getLogger("unifiedreward").setLevel(logging.WARNING)
    transformers.utils.logging.set_verbosity_warning()
