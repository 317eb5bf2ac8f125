"""Pages of the files the room mapped while it loaded, taken out of its resident set once loading is done.

A library's code and a model's mapped weights are pages of files: the kernel keeps them in its page
cache, shared by every process that maps them, and counts in a process's resident size every page
the process has touched through its mapping. Loading touches much that a session never runs again:
the import-time code of some forty libraries, ONNX Runtime's graph optimisers, MediaPipe's graph
set-up, CTranslate2's loader, Praat's start-up. ``madvise(MADV_DONTNEED)`` on a mapping whose pages
all still hold the file's own bytes (no page of it was ever written, hence copied) takes them out of
the process's page tables and leaves them in the page cache: the next use of a page maps it again
from there (a minor fault, no disk read while the cache holds it), and what no thread uses again
stops counting for the room and becomes memory the kernel can reclaim first.

:func:`drop_file_pages` does that, once, for every mapping that is of a regular file, not writable,
not locked and without a single copied page (``Anonymous: 0 kB`` in ``/proc/self/smaps``: a
relocated read-only table holds copied pages and is left alone, as is any writable mapping, device
memory and the process's own anonymous memory). A thread that runs code in a dropped page while it
happens takes one more minor fault; nothing it reads can differ, since the file's bytes are what the
page held. A file cut short in place while the room runs would fault (``SIGBUS``) when a dropped
page past its new end is read again, as an unread page of a mapped model's weights always could:
installers, pip and ``clinic-export`` replace a file (a new file under the old name, which the
mapping does not see); copying a pack over the files a running room maps is what docs/models.md
warns against.

Linux only; elsewhere nothing is done.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import os
import sys
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

SMAPS = Path("/proc/self/smaps")


@dataclass(frozen=True)
class Mapping:
    start: int
    end: int
    perms: str
    path: str
    rss_kib: int = 0
    anonymous_kib: int = 0
    locked_kib: int = 0

    @property
    def clean_file(self) -> bool:
        """Only pages of a regular file's own bytes, none copied, none writable or locked."""
        if not self.path.startswith("/") or self.path.startswith(("/dev/", "/proc/", "/sys/")):
            return False
        if "w" in self.perms or self.anonymous_kib or self.locked_kib or not self.rss_kib:
            return False
        try:
            return Path(self.path).is_file()
        except OSError:  # deleted or unreadable: leave it
            return False


def mappings(smaps: str) -> list[Mapping]:
    """The mappings ``/proc/<pid>/smaps`` text describes, with their resident, copied and locked KiB."""
    found: list[Mapping] = []
    fields: dict[str, int] = {}
    head: list[str] | None = None

    def close() -> None:
        if head is not None:
            low, high = head[0].split("-")
            path = head[5] if len(head) > 5 else ""
            found.append(
                Mapping(
                    int(low, 16),
                    int(high, 16),
                    head[1],
                    path,
                    fields.get("Rss", 0),
                    fields.get("Anonymous", 0),
                    fields.get("Locked", 0),
                )
            )

    for line in smaps.splitlines():
        parts = line.split(None, 5)
        if parts and "-" in parts[0] and not parts[0].endswith(":"):
            close()
            head, fields = parts, {}
        elif len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
            fields[parts[0][:-1]] = int(parts[1])
    close()
    return found


def drop_file_pages(smaps: Path = SMAPS) -> int:
    """Take the pages of every clean file mapping (see the module doc) out of this process's resident
    set; returns the bytes that were resident in them."""
    if sys.platform != "linux":
        return 0
    try:
        text = smaps.read_text(encoding="utf-8", errors="replace")
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError as exc:
        logger.debug("mapped files left resident: %s", exc)
        return 0
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    libc.madvise.restype = ctypes.c_int
    dropped = 0
    for mapping in mappings(text):
        if not mapping.clean_file:
            continue
        if libc.madvise(mapping.start, mapping.end - mapping.start, mmap.MADV_DONTNEED) != 0:
            logger.debug("madvise %s: %s", mapping.path, os.strerror(ctypes.get_errno()))
            continue
        dropped += mapping.rss_kib * 1024
    return dropped
