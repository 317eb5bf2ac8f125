"""What the service needs on an NVIDIA Jetson (JetPack 6, Orin): the device nodes CUDA, TensorRT and
Argus open, the groups that own them, and the Argus daemon's socket.

The room's unit is ``DevicePolicy=closed`` with only the video4linux and ALSA classes; under it the
GPU's nodes are blocked and CUDA fails to initialise, so the room would fall back to the CPU. The
drop-in written by ``clinic-edge systemd-dropin`` (``--jetson``, or on its own when it runs on a
Jetson) allows exactly the nodes below, read from the device's ``/dev`` when they are there (JetPack's
node set differs between modules and releases) and otherwise the JetPack 6 Orin set:

* CUDA and TensorRT: ``/dev/nvmap``, ``/dev/nvhost-ctrl``, ``/dev/nvhost-ctrl-gpu``,
  ``/dev/nvhost-prof-gpu``, the ``/dev/nvgpu/igpu0/*`` nodes of Orin's integrated GPU, ``/dev/nvidiactl``
  where present, and the DRM render nodes (``/dev/dri/renderD*``: CUDA's initialisation fails without
  them on JetPack 6.2);
* video decode and conversion (``nvv4l2decoder``, ``nvvidconv``): ``/dev/nvhost-nvdec*``,
  ``/dev/nvhost-vic``, ``/dev/v4l2-nvdec``;
* CSI cameras (Argus): the capture pipeline's ``/dev/nvhost-vi*``, ``/dev/nvhost-isp*``,
  ``/dev/nvhost-nvcsi``, ``/dev/nvhost-ctrl-isp``, ``/dev/nvhost-ctrl-nvcsi``; ``nvargus-daemon`` does the
  camera work and is reached through ``/tmp/argus_socket``, which the drop-in binds into the unit's
  private ``/tmp``.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterable
from pathlib import Path

TEGRA_RELEASE = Path("/etc/nv_tegra_release")
ARGUS_SOCKET = Path("/tmp/argus_socket")  # noqa: S108 - nvargus-daemon's fixed path
# Patterns under /dev of the nodes the service may open (read and write), with why.
NODE_PATTERNS: dict[str, str] = {
    "nvmap": "CUDA memory",
    "nvhost-ctrl": "CUDA",
    "nvhost-ctrl-gpu": "CUDA",
    "nvhost-prof-gpu": "CUDA",
    "nvhost-gpu": "CUDA (Xavier)",
    "nvhost-as-gpu": "CUDA (Xavier)",
    "nvhost-tsg-gpu": "CUDA (Xavier)",
    "nvhost-ctxsw-gpu": "CUDA (Xavier)",
    "nvhost-sched-gpu": "CUDA (Xavier)",
    "nvgpu/igpu0/*": "CUDA (Orin's integrated GPU)",
    "nvidiactl": "CUDA (JetPack 6 with the open GPU driver)",
    "nvidia0": "CUDA (JetPack 6 with the open GPU driver)",
    "dri/renderD*": "CUDA initialisation (JetPack 6.2)",
    "nvhost-nvdec*": "nvv4l2decoder",
    "v4l2-nvdec": "nvv4l2decoder",
    "nvhost-vic": "nvvidconv",
    "nvhost-vi*": "CSI capture (Argus)",
    "nvhost-isp*": "CSI capture (Argus)",
    "nvhost-nvcsi": "CSI capture (Argus)",
    "nvhost-ctrl-isp": "CSI capture (Argus)",
    "nvhost-ctrl-nvcsi": "CSI capture (Argus)",
}
# JetPack 6 on Orin, for a drop-in written away from the device (``--jetson`` on another machine).
ORIN_NODES: tuple[str, ...] = (
    "nvmap",
    "nvhost-ctrl",
    "nvhost-ctrl-gpu",
    "nvhost-prof-gpu",
    *(f"nvgpu/igpu0/{n}" for n in ("as", "channel", "ctrl", "ctxsw", "dbg", "power", "prof", "tsg")),
    "dri/renderD128",
    "nvhost-nvdec",
    "nvhost-vic",
    "nvhost-vi",
    "nvhost-isp",
    "nvhost-nvcsi",
    "nvhost-ctrl-isp",
    "nvhost-ctrl-nvcsi",
)
GROUPS = ("video", "render")  # JetPack gives the GPU, codec and camera nodes to these groups


def is_jetson(release: Path = TEGRA_RELEASE, dev: Path = Path("/dev")) -> bool:
    """Whether this machine is a Jetson (L4T's release file, or the Tegra memory manager's node)."""
    return release.is_file() or (dev / "nvmap").exists()


def _walk(dev: Path) -> Iterable[str]:
    """Character devices under ``dev`` (two levels: ``/dev/nvgpu/igpu0/ctrl``), relative to it."""
    for root, _dirs, files in os.walk(dev):
        depth = Path(root).relative_to(dev).parts
        if len(depth) > 2:
            continue
        for name in files:
            path = Path(root) / name
            try:
                if stat.S_ISCHR(path.stat().st_mode):
                    yield str(path.relative_to(dev))
            except OSError:
                continue


def gpu_nodes(dev: Path = Path("/dev"), present: Iterable[str] | None = None) -> list[str]:
    """The nodes of :data:`NODE_PATTERNS` that exist (``present``: names relative to ``dev``, for
    tests; otherwise the character devices under ``dev``), or the Orin set when none does."""
    names = sorted(set(present if present is not None else _walk(dev)))
    found = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in NODE_PATTERNS)]
    return found or list(ORIN_NODES)


def dropin_lines(dev: Path = Path("/dev"), present: Iterable[str] | None = None) -> list[str]:
    """The Jetson part of the room unit's drop-in ([Unit] and [Service] lines, with comments)."""
    service = [
        "# Jetson: the GPU (CUDA, TensorRT), the video engines and the CSI camera (Argus). Regenerate on the",
        "# device after a JetPack upgrade: the nodes are read from its /dev.",
    ]
    service += [f"DeviceAllow=/dev/{node} rw" for node in gpu_nodes(dev, present)]
    service += [
        f"SupplementaryGroups={' '.join(GROUPS)}",
        "# nvargus-daemon serves CSI cameras over a socket in the host's /tmp (the unit's own /tmp is private).",
        f"BindPaths=-{ARGUS_SOCKET}",
    ]
    unit = ["[Unit]", "After=nvargus-daemon.service", "Wants=nvargus-daemon.service"]
    return [*unit, "[Service]", *service]
