"""Regenerate ``unifiedreward/protocol/templates.json`` from the protocol reference.

The reference (``shared/reference/unifiedreward-protocol.md``) prints every upstream prompt verbatim in four-backtick
``text`` fences; where whitespace matters, a ``json`` fence with the exact string follows and wins. This script copies
those strings, byte for byte, into the package's data file. It is a maintenance tool: the package never reads the
reference at run time, and ``tests/test_protocol_templates.py`` pins the data file by hash.

Usage:
    python scripts/dev/extract_templates.py ../shared/reference/unifiedreward-protocol.md
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ID_RE = re.compile(r"`(T-[A-Z0-9-]+)`")
OUT = Path(__file__).resolve().parents[2] / "unifiedreward" / "protocol" / "templates.json"


def extract(markdown: str) -> dict[str, str]:
    """Return ``{template_id: exact_text}`` for every template fence of the reference."""
    lines = markdown.split("\n")
    templates: dict[str, str] = {}
    current_id: str | None = None
    gpt_part = iter(["T-GPT-JUDGE-SYSTEM", "T-GPT-JUDGE-USER"])
    last_text_id: str | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            ids = ID_RE.findall(line)
            current_id = ids[0] if ids else None
            if line.startswith("#### 1.6.3"):
                current_id = "T-GRPO-SYSTEM"
        elif line.startswith("`T-"):
            current_id = ID_RE.findall(line)[0]
        if line in ("````text", "````json"):
            kind = line[4:]
            j = i + 1
            while lines[j] != "````":
                j += 1
            body = "\n".join(lines[i + 1 : j])
            if kind == "text" and current_id is not None:
                tid = next(gpt_part) if current_id == "T-GPT-JUDGE" else current_id
                if tid in templates:
                    raise ValueError(f"template {tid} printed twice (line {i + 1})")
                templates[tid] = body
                last_text_id = tid
            elif kind == "json" and last_text_id is not None:
                exact = json.loads(body)
                if not isinstance(exact, str):
                    raise ValueError(f"json fence at line {i + 1} is not a string")
                templates[last_text_id] = exact
                last_text_id = None
            i = j
        i += 1
    return templates


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared/reference/unifiedreward-protocol.md")
    templates = extract(source.read_text(encoding="utf-8"))
    OUT.write_text(json.dumps(templates, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(templates)} templates to {OUT}")


if __name__ == "__main__":
    main()
