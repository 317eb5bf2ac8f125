"""Whether a folder lies on an encrypted volume: the block device under it, or any device that one
is stacked on (LVM on LUKS, say), is a dm-crypt mapping; or the file system encrypts (eCryptfs);
or it lives in memory only (tmpfs). Read from the kernel's sysfs and mount table, nothing run.

The appliance keeps transcripts (where configured), consent references and per-window results in
its state folder; on a device that can be carried away, that folder belongs on LUKS (on a Jetson,
with the key sealed by its firmware TPM). ``clinic-edge doctor`` warns when it is not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MEMORY_FS = {"tmpfs", "ramfs"}
ENCRYPTING_FS = {"ecryptfs"}


@dataclass(frozen=True)
class AtRest:
    protected: bool
    how: str  # what protects it, or where it is stored in clear


def _crypt_below(device: Path, seen: set[Path]) -> str | None:
    """The dm-crypt mapping ``device`` is, or is stacked on (its name), else None."""
    device = device.resolve()
    if device in seen:
        return None
    seen.add(device)
    uuid = device / "dm" / "uuid"
    if uuid.is_file() and uuid.read_text(encoding="utf-8").strip().startswith("CRYPT-"):
        name = device / "dm" / "name"
        return name.read_text(encoding="utf-8").strip() if name.is_file() else device.name
    slaves = device / "slaves"
    if slaves.is_dir():
        for slave in sorted(slaves.iterdir()):
            found = _crypt_below(slave, seen)
            if found:
                return found
    parent = device.parent  # a partition's disk
    if (parent / "dev").is_file() and parent != device:
        return _crypt_below(parent, seen)
    return None


def _mount_of(folder: Path, mounts: Path) -> tuple[str, str] | None:
    """(mount point, file system type) of the mount holding ``folder``."""
    best: tuple[str, str] | None = None
    try:
        lines = mounts.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    target = str(folder)
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) > len(best[0])):
            best = (point, fields[2])
    return best


def at_rest(folder: Path, sysfs: Path = Path("/sys"), mounts: Path = Path("/proc/self/mounts")) -> AtRest:
    """How ``folder`` (or, when it does not exist yet, its nearest existing parent) is stored."""
    probe = folder if folder.exists() else next((p for p in folder.parents if p.exists()), Path("/"))
    probe = probe.resolve()
    mount = _mount_of(probe, mounts)
    if mount is not None and mount[1] in MEMORY_FS:
        return AtRest(True, f"in memory only ({mount[1]} at {mount[0]})")
    if mount is not None and mount[1] in ENCRYPTING_FS:
        return AtRest(True, f"encrypted by the file system ({mount[1]} at {mount[0]})")
    st = probe.stat()
    device = sysfs / "dev" / "block" / f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    if device.exists():
        name = _crypt_below(device, set())
        if name:
            return AtRest(True, f"on the encrypted volume {name} (dm-crypt)")
    where = f"{mount[1]} at {mount[0]}" if mount else "an unknown file system"
    return AtRest(False, f"not encrypted ({where})")
