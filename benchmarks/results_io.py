"""Where and how every benchmark writes its results: ``benchmarks/results/<name>-<machine>.json``
and ``.md``. The machine tag is the device's name where the board names itself (a Jetson's device
tree model) and the architecture otherwise, with the CPU count: results from different devices never
overwrite each other, and every file says which device made it."""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEVICE_TREE_MODEL = Path("/proc/device-tree/model")
STOP_GRACE_S = 60.0  # a room closes its session when told to stop; this long is allowed
CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "fma", "f16c", "asimd", "asimddp", "fphp")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def evict_page_cache(*roots: Path) -> int:
    """Drop the page cache's copies of the files under ``roots`` (the room's libraries and models), so
    that a run maps them as a device does after boot: read from disk. How a file came into the cache
    changes how much of it a mapping makes resident: the same room measured 454 MiB with its libraries
    read from disk and 520 MiB right after the installer had written them. Pages a running process has
    mapped stay. Returns the files handed to the kernel."""
    count = 0
    for root in roots:
        for path in root.rglob("*"):
            if path.is_symlink() or not path.is_file():
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                count += 1
            finally:
                os.close(fd)
    return count


def board() -> str | None:
    """The board's own name (e.g. 'NVIDIA Jetson Orin Nano Developer Kit'), where it has one."""
    name = _read(DEVICE_TREE_MODEL).strip("\x00 \n")
    return name or None


def cpu() -> dict[str, Any]:
    """CPU model, the instruction-set features that decide int8/fp16 speed, and memory."""
    info = _read(Path("/proc/cpuinfo"))
    model = re.search(r"^(?:model name|Model|CPU part)\s*:\s*(.+)$", info, re.MULTILINE)
    flags = set()
    for line in info.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[1].split())
    memory = re.search(r"^MemTotal:\s+(\d+) kB", _read(Path("/proc/meminfo")), re.MULTILINE)
    return {
        "cpu_model": model.group(1).strip() if model else platform.processor() or platform.machine(),
        "cpu_features": sorted(f for f in CPU_FEATURES if f in flags),
        "memory_gib": round(int(memory.group(1)) / 1024**2, 1) if memory else None,
    }


def machine(**extra: Any) -> dict[str, Any]:
    """The machine details every results file carries, plus ``extra`` (library versions...)."""
    details: dict[str, Any] = {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    details.update(cpu())
    details["system"] = platform.platform()
    if board() is not None:
        details["board"] = board()
    return {**details, **extra}


def tag() -> str:
    name = board()
    prefix = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") if name else platform.machine()
    return f"{prefix}-{os.cpu_count()}cpu"


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


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def interrupt_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C, so a stopped benchmark stops what it started (see ``stop``)."""
    signal.signal(signal.SIGTERM, _interrupt)


def stop(procs: list[subprocess.Popen[str]]) -> None:
    """Ask processes that are still running to stop (SIGTERM), then kill those that do not."""
    live = [p for p in procs if p.poll() is None]
    for p in live:
        p.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for p in live:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
