"""Print the import graph between the package's top-level units (``python scripts/dev/import_graph.py``).

Each line is ``unit -> units it imports``; a unit is a top-level module or subpackage of ``unifiedreward``
(``unifiedreward.judge``, ``unifiedreward.io``, ...). The rules the graph must keep are in ``docs/architecture.md``
and are checked by ``tests/test_architecture.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from test_architecture import import_graph

if __name__ == "__main__":
    for unit, targets in sorted(import_graph().items()):
        print(f"{unit} -> {', '.join(sorted(targets)) or '-'}")
