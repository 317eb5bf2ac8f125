"""Model files' SHA-256, computed once per process for a file that has not changed since.

Every session checks the pack's files against their listed hashes before anything loads them. A
room runs one session after another and ``clinic-edge evaluate`` runs one per clip, so hashing the
same hundreds of megabytes again each time is wasted: the digest is remembered per file together
with its identity and change times (device, inode, size, modification and inode-change time in
nanoseconds). Any write, rename over, truncation or ``chmod`` updates the inode-change time, which
no user can set back, so a changed file is hashed again; an unchanged one keeps its digest. File
times tick coarsely (a few milliseconds), so a file changed within ``SETTLE_S`` of now could change
again without a new time: its digest is not remembered (git's rule for "racily clean" files).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from contract.files import sha256_file

_Stamp = tuple[int, int, int, int, int]

SETTLE_S = 2.0

_lock = threading.Lock()
_known: dict[str, tuple[_Stamp, str]] = {}


def _stamp(stat: os.stat_result) -> _Stamp:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def file_sha256(path: Path) -> str:
    """The SHA-256 of ``path``'s bytes, hashed again only when the file changed since last time.

    Raises:
        OSError: the file cannot be read.
    """
    resolved = path.resolve()
    key = str(resolved)
    before = _stamp(resolved.stat())
    with _lock:
        known = _known.get(key)
    if known is not None and known[0] == before:
        return known[1]
    digest = sha256_file(resolved)
    settled = time.time_ns() - before[4] > SETTLE_S * 1e9
    if settled and _stamp(resolved.stat()) == before:  # unchanged while it was read: the digest is the file's
        with _lock:
            _known[key] = (before, digest)
    return digest


def forget() -> None:
    """Hash every file again on its next check."""
    with _lock:
        _known.clear()
