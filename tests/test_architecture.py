"""Layers that point one way, read from the source with ``ast``.

Every first-party import counts: at the top of a module, deferred into a function and under
``TYPE_CHECKING``, and importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, so those
count too. The rules: no import cycle anywhere; the contract and the shared service package import no
product; the toolchain never imports the room or the hub; the room never imports the hub or the
toolchain; the hub only the contract and the shared service package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("contract", "clinic_common", "clinic_signals", "edge", "export", "hub")
# package -> the first-party packages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "contract": set(),
    "clinic_common": set(),
    "clinic_signals": {"contract"},
    "export": {"contract", "clinic_signals"},
    "edge": {"contract", "clinic_common", "clinic_signals"},
    "hub": {"contract", "clinic_common"},
}


def modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def import_graph(root: Path, packages: Iterable[str]) -> dict[str, set[str]]:
    """Module -> the first-party modules (and their parent packages) it imports."""
    mods = modules(root, packages)

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                names = [base, *(f"{base}.{a.name}" for a in node.names)]
            for name in names:
                target = known(name)
                while target:
                    if target != module and not module.startswith(target + "."):
                        graph[module].add(target)
                    target = target.rpartition(".")[0] if "." in target else ""
                    target = target if target in mods else ""
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            step = next(edges, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = counter
                    counter += 1
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph[step]))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def forbidden(graph: dict[str, set[str]]) -> list[str]:
    out = []
    for module, targets in graph.items():
        own = module.split(".")[0]
        for target in targets:
            other = target.split(".")[0]
            if other != own and other not in ALLOWED[own]:
                out.append(f"{module} -> {target}")
    return sorted(out)


@pytest.mark.unit
def test_no_import_cycles() -> None:
    found = cycles(import_graph(ROOT, PACKAGES))
    assert found == [], "import cycles (break them by moving the shared part down a layer):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


@pytest.mark.unit
def test_layers_point_one_way() -> None:
    assert forbidden(import_graph(ROOT, PACKAGES)) == []


@pytest.mark.unit
def test_every_package_is_checked() -> None:
    on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "benchmarks", "scripts"}
    assert on_disk == set(PACKAGES), "a new top-level package needs its place in ALLOWED"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("files", "expected_cycles", "expected_forbidden"),
    [
        pytest.param(
            {"edge/__init__.py": "", "edge/a.py": "from edge.b import x\n", "edge/b.py": "x = 1\n"},
            [],
            [],
            id="one-way",
        ),
        pytest.param(
            {
                "edge/__init__.py": "",
                "edge/a.py": "def f():\n    from edge.b import x\n",
                "edge/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from edge.a import f\n",
            },
            [["edge.a", "edge.b"]],
            [],
            id="deferred-and-type-checking-imports-count",
        ),
        pytest.param(
            {
                "edge/__init__.py": "",
                "edge/pkg/__init__.py": "from edge.pkg.top import run\n",
                "edge/pkg/top.py": "from edge.low import y\n",
                "edge/pkg/base.py": "z = 1\n",
                "edge/low.py": "from edge.pkg.base import z\n",
            },
            [["edge.low", "edge.pkg", "edge.pkg.top"]],
            [],
            id="a-package-init-runs-on-import",
        ),
        pytest.param(
            {"edge/__init__.py": "", "edge/a.py": "from . import b\n", "edge/b.py": "from .a import c\n"},
            [["edge.a", "edge.b"]],
            [],
            id="relative-imports",
        ),
        pytest.param(
            {"edge/__init__.py": "import hub.web\n", "hub/__init__.py": "", "hub/web.py": ""},
            [],
            ["edge -> hub", "edge -> hub.web"],
            id="room-into-hub",
        ),
        pytest.param(
            {"export/__init__.py": "from edge.x import y\n", "edge/__init__.py": "", "edge/x.py": "y = 1\n"},
            [],
            ["export -> edge", "export -> edge.x"],
            id="toolchain-into-room",
        ),
    ],
)
def test_the_checker_sees_what_python_runs(
    tmp_path: Path, files: dict[str, str], expected_cycles: list[list[str]], expected_forbidden: list[str]
) -> None:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    packages = sorted({rel.split("/")[0] for rel in files})
    graph = import_graph(tmp_path, packages)
    assert cycles(graph) == expected_cycles
    assert forbidden(graph) == expected_forbidden


MAX_MODULE_BYTES = 20_000


@pytest.mark.unit
def test_modules_stay_small_enough_to_read() -> None:
    """A module over 20 KB has always turned out to hold two concerns: split it by concern."""
    large = {
        name: path.stat().st_size
        for name, path in modules(ROOT, PACKAGES).items()
        if path.stat().st_size > MAX_MODULE_BYTES
    }
    assert not large, f"split these by concern: {large}"


@pytest.mark.unit
def test_the_audio_rate_is_written_once() -> None:
    """16 kHz lives in ``contract.audio.SAMPLE_RATE``; every stage takes it from there."""
    import re

    written = [
        name
        for name, path in modules(ROOT, PACKAGES).items()
        if name != "contract.audio" and re.search(r"\b16_?000\b", path.read_text(encoding="utf-8"))
    ]
    assert not written, f"use contract.audio.SAMPLE_RATE in {written}"
