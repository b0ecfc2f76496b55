"""The package's layout rules (docs/architecture.md), checked on the code itself.

- Imports between the package's top-level units only point down the layers (no module imports back up).
- Product code never imports :mod:`unifiedreward.testing`.
- No module is over 600 lines.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "unifiedreward"

#: The layer of each top-level unit (docs/architecture.md): a unit may import only units of a lower layer.
LAYERS: dict[str, int] = {
    "errors": 0, "args": 0, "tiny": 0, "__init__": 0,
    "media": 1, "io": 1, "modeling": 1,
    "chat": 2,
    "protocol": 3, "inputs": 3,
    "judge": 4, "data": 4,
    "training": 5, "eval": 5,
    "train": 6, "synth": 6,
    "preference": 7,
    "dpo": 8,
    "demo": 9, "testing": 9,
    "cli": 10, "__main__": 11,
}  # fmt: skip

MAX_LINES = 600


def _unit(module: str) -> str:
    """``unifiedreward.judge.cli`` -> ``judge``; ``unifiedreward`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return found


def _imports(path: Path, module: str) -> set[str]:
    """The ``unifiedreward...`` modules ``path`` imports (absolute and relative imports, also lazy ones)."""
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.split(".")[0] == "unifiedreward")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "unifiedreward":
                continue
            if target == "unifiedreward":  # from unifiedreward import judge (a unit) / __version__ (an attribute)
                for alias in node.names:
                    unit = PACKAGE / alias.name
                    is_unit = unit.is_dir() or unit.with_suffix(".py").exists()
                    names.add(f"unifiedreward.{alias.name}" if is_unit else "unifiedreward")
            else:
                names.add(target)
    return names


def import_graph() -> dict[str, set[str]]:
    """``unit -> {units it imports}`` over the whole package (imports inside a unit are left out)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in _modules():
        source = _unit(module)
        graph[source]
        for target in _imports(path, module):
            unit = _unit(target)
            if unit != source:
                graph[source].add(unit)
    return dict(graph)


def test_every_unit_has_a_layer():
    assert set(import_graph()) <= set(LAYERS), "add new top-level units to LAYERS and docs/architecture.md"


def test_imports_only_point_down_the_layers():
    upward = [
        f"{source} (layer {LAYERS[source]}) imports {target} (layer {LAYERS.get(target)})"
        for source, targets in import_graph().items()
        for target in sorted(targets)
        if source in LAYERS and LAYERS[source] <= LAYERS.get(target, 99)
    ]
    assert not upward, "\n".join(upward)


def test_product_code_never_imports_testing():
    offenders = sorted(
        module
        for module, path in _modules()
        if _unit(module) != "testing" and any(_unit(t) == "testing" for t in _imports(path, module))
    )
    assert not offenders


@pytest.mark.parametrize("module,path", _modules(), ids=[m for m, _ in _modules()])
def test_no_module_is_over_600_lines(module, path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module}: {lines} lines; split it along its seams"


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The rule can fail: a fake ``io`` module importing ``judge`` is reported."""
    fake = tmp_path / "unifiedreward"
    (fake / "io").mkdir(parents=True)
    (fake / "io" / "__init__.py").write_text("from unifiedreward.judge import RewardJudge\n")
    (fake / "judge").mkdir()
    (fake / "judge" / "__init__.py").write_text("from ..io import x\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert import_graph() == {"io": {"judge"}, "judge": {"io"}}
    with pytest.raises(AssertionError, match="io \\(layer 1\\) imports judge"):
        test_imports_only_point_down_the_layers()
