"""Zeros a native library wrote into its static data while it loaded, handed back to the system.

A shared library's zero-initialised static data (its ``.bss``) costs memory only for the pages that
are written. Praat (parselmouth, the voice cues) writes 39 MiB of its 81 MiB of static data while it
loads, and all but 86 of those pages (of 20,804, parselmouth 0.4.7) still hold nothing but zeros
afterwards: a fifteenth of a room's memory that holds nothing. ``madvise(MADV_DONTNEED)`` on private
anonymous memory gives the page back; the next read of it sees zeros, as before, and the next write
gets a fresh page. Dropping a page that holds only zeros therefore changes nothing the library can
see, as long as nothing writes to it between the check and the drop: :func:`release_static_zeros`
runs once the room has loaded, before any thread runs the library's code (:func:`edge.native.settle_heap`),
and only for the libraries named in :data:`STATIC_ZEROS`.

Linux on a 64-bit machine (x86_64, aarch64); elsewhere nothing is done.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# libraries whose static data is mostly zeros written at load time (file names start with these)
STATIC_ZEROS = ("parselmouth.",)

_PT_LOAD = 1
_CHUNK_PAGES = 1024  # pages checked at a time: a bounded temporary


class _Phdr(ctypes.Structure):  # Elf64_Phdr
    _fields_ = (
        ("p_type", ctypes.c_uint32),
        ("p_flags", ctypes.c_uint32),
        ("p_offset", ctypes.c_uint64),
        ("p_vaddr", ctypes.c_uint64),
        ("p_paddr", ctypes.c_uint64),
        ("p_filesz", ctypes.c_uint64),
        ("p_memsz", ctypes.c_uint64),
        ("p_align", ctypes.c_uint64),
    )


class _DlPhdrInfo(ctypes.Structure):  # the leading fields of struct dl_phdr_info (64-bit)
    _fields_ = (
        ("dlpi_addr", ctypes.c_uint64),
        ("dlpi_name", ctypes.c_char_p),
        ("dlpi_phdr", ctypes.POINTER(_Phdr)),
        ("dlpi_phnum", ctypes.c_uint16),
    )


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_DlPhdrInfo), ctypes.c_size_t, ctypes.c_void_p)


def _libc() -> ctypes.CDLL | None:
    if sys.platform != "linux" or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    if not hasattr(libc, "dl_iterate_phdr") or not hasattr(libc, "madvise"):
        return None
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    libc.madvise.restype = ctypes.c_int
    return libc


def static_ranges(prefixes: Iterable[str]) -> dict[str, list[tuple[int, int]]]:
    """The whole pages of zero-initialised static data of each loaded library whose file name starts
    with one of ``prefixes``: file path -> ``[(start, end), ...]`` addresses."""
    libc = _libc()
    wanted = tuple(prefixes)
    found: dict[str, list[tuple[int, int]]] = {}
    if libc is None or not wanted:
        return found
    page = mmap.PAGESIZE

    def visit(info: ctypes._Pointer[_DlPhdrInfo], _size: int, _data: int | None) -> int:
        entry = info.contents
        path = os.fsdecode(entry.dlpi_name or b"")
        if not Path(path).name.startswith(wanted):
            return 0
        for i in range(entry.dlpi_phnum):
            header = entry.dlpi_phdr[i]
            if header.p_type != _PT_LOAD or header.p_memsz <= header.p_filesz:
                continue
            start = -(-(entry.dlpi_addr + header.p_vaddr + header.p_filesz) // page) * page  # past the file's bytes
            end = (entry.dlpi_addr + header.p_vaddr + header.p_memsz) // page * page
            if end > start:
                found.setdefault(path, []).append((start, end))
        return 0

    libc.dl_iterate_phdr(_CALLBACK(visit), None)
    return found


def release_zero_pages(start: int, end: int) -> int:
    """Give back every page of ``[start, end)`` (page-aligned, private anonymous memory) that holds only
    zeros; returns the bytes released. Nothing may write to the range meanwhile."""
    libc = _libc()
    page = mmap.PAGESIZE
    if libc is None or end <= start:
        return 0
    if start % page or end % page:
        raise ValueError(f"range {start:#x}-{end:#x} is not page-aligned ({page} bytes)")
    words = page // 8
    released = 0
    for chunk in range(start, end, _CHUNK_PAGES * page):
        pages = min(_CHUNK_PAGES, (end - chunk) // page)
        memory = np.ctypeslib.as_array((ctypes.c_uint64 * (pages * words)).from_address(chunk))
        zero = ~memory.reshape(pages, words).any(axis=1)
        edges = np.flatnonzero(np.diff(np.concatenate(([0], zero.astype(np.int8), [0]))))
        for first, stop in zip(edges[::2], edges[1::2], strict=True):
            length = int(stop - first) * page
            if libc.madvise(chunk + int(first) * page, length, mmap.MADV_DONTNEED) != 0:
                errno = ctypes.get_errno()
                logger.debug("madvise at %#x: %s", chunk + int(first) * page, os.strerror(errno))
                continue
            released += length
    return released


def release_static_zeros(prefixes: Iterable[str] = STATIC_ZEROS) -> int:
    """Release the all-zero pages of the static data of the libraries :data:`STATIC_ZEROS` names
    (those loaded); returns the bytes released. Call it before any thread runs those libraries."""
    total = 0
    for path, ranges in static_ranges(prefixes).items():
        released = sum(release_zero_pages(start, end) for start, end in ranges)
        logger.debug("%s: %.1f MiB of zeros in its static data handed back", Path(path).name, released / 2**20)
        total += released
    return total
