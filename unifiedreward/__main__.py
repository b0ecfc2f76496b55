"""``python -m unifiedreward <command> ...``: the same as the ``unifiedreward`` console script."""

from __future__ import annotations

import sys

from unifiedreward.cli import main

if __name__ == "__main__":
    sys.exit(main())
