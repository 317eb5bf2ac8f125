"""Where and how every benchmark writes its results: ``benchmarks/results/<name>-<machine>.json``
and ``.md``, the machine tag being the architecture and CPU count (one place, so results from
another device, such as a Jetson, are marked the same way)."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any


def machine(**extra: Any) -> dict[str, Any]:
    """The machine details every results file carries, plus ``extra`` (library versions...)."""
    return {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(), **extra}


def tag() -> str:
    return f"{platform.machine()}-{os.cpu_count()}cpu"


def write_results(out: Path, name: str, results: Any, markdown: str) -> Path:
    """Write ``<name>-<tag>.json`` and ``.md`` into ``out`` (just ``<tag>`` without a name), print
    the table, and return the markdown file."""
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-{tag()}" if name else tag()
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    path = out / f"{stem}.md"
    path.write_text(markdown, encoding="utf-8")
    sys.stdout.write(markdown)
    return path
