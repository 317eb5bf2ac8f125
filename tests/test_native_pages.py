"""Pages of zeros handed back to the system (edge.native_pages): what holds data stays, what held only
zeros stops being resident, and Praat computes the same after its static data was released."""

from __future__ import annotations

import ctypes
import json
import mmap
import subprocess
import sys

import pytest

from edge.native_pages import release_zero_pages

PAGE = mmap.PAGESIZE


def _resident(address: int, pages: int) -> list[bool]:
    """Which of ``pages`` pages from ``address`` are in memory (mincore)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
    vector = (ctypes.c_ubyte * pages)()
    if libc.mincore(address, pages * PAGE, vector) != 0:
        raise OSError(ctypes.get_errno(), "mincore")
    return [bool(v & 1) for v in vector]


def _anonymous(pages: int) -> int:
    """A private anonymous mapping of ``pages`` pages, straight from the C library (no Python buffer
    that would pin it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)
    address = libc.mmap(
        None, pages * PAGE, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0
    )
    if address in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap")
    return int(address)


def _unmap(address: int, pages: int) -> None:
    libc = ctypes.CDLL(None)
    libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
    libc.munmap(address, pages * PAGE)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("pages", "written"),
    [
        (8, {}),  # all touched, all zeros: all released
        (8, {0: b"\x01", 7: b"\xff"}),  # data at both ends
        (16, {3: b"x", 4: b"y", 9: b"z"}),  # runs of zeros between pages with data
        (1030, {1023: b"a", 1024: b"b"}),  # data on both sides of a chunk's edge
        (4, {2: b"\x00" * 7 + b"\x01"}),  # one byte, at the end of a page's word
    ],
)
def test_pages_of_zeros_are_released_and_data_stays(pages: int, written: dict[int, bytes]) -> None:
    address = _anonymous(pages)
    try:
        for i in range(pages):  # every page written: resident, zeros unless given data
            ctypes.memset(address + i * PAGE, 0, 1)
        for i, data in written.items():
            ctypes.memmove(address + i * PAGE + 100, data, len(data))
        assert all(_resident(address, pages))

        released = release_zero_pages(address, address + pages * PAGE)

        assert released == (pages - len(written)) * PAGE
        assert [i for i, r in enumerate(_resident(address, pages)) if r] == sorted(written)
        content = ctypes.string_at(address, pages * PAGE)
        expected = bytearray(pages * PAGE)
        for i, data in written.items():
            expected[i * PAGE + 100 : i * PAGE + 100 + len(data)] = data
        assert content == bytes(expected)  # data where it was, zeros everywhere else
        ctypes.memset(address, 7, PAGE)  # a released page takes writes again
        assert ctypes.string_at(address, 2) == b"\x07\x07"
    finally:
        _unmap(address, pages)


@pytest.mark.unit
def test_a_range_not_on_page_boundaries_is_refused() -> None:
    with pytest.raises(ValueError, match="page-aligned"):
        release_zero_pages(PAGE + 8, 3 * PAGE)


PRAAT = """
import ctypes, json, mmap
import numpy as np
import parselmouth
from edge.native import settle_heap
from edge.native_pages import STATIC_ZEROS, static_ranges

PAGE = mmap.PAGESIZE
libc = ctypes.CDLL(None)
libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)

def resident():
    total = 0
    for ranges in static_ranges(STATIC_ZEROS).values():
        for start, end in ranges:
            n = (end - start) // PAGE
            vector = (ctypes.c_ubyte * n)()
            libc.mincore(start, end - start, vector)
            total += sum(v & 1 for v in vector) * PAGE
    return total

def cues():
    t = np.arange(16000 * 2) / 16000
    wave = 0.3 * np.sin(2 * np.pi * 140 * t) * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    sound = parselmouth.Sound(wave + 0.01 * np.random.default_rng(1).standard_normal(t.size), 16000)
    pitch = sound.to_pitch()
    points = parselmouth.praat.call(sound, "To PointProcess (periodic, cc)", 75, 500)
    return [pitch.get_value_at_time(1.0), parselmouth.praat.call(points, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3),
            parselmouth.praat.call([sound, points], "Get shimmer (local)", 0, 0, 0.0001, 0.02, 1.3, 1.6),
            sound.to_harmonicity().values.mean()]

before = resident()
first = cues()
settle_heap()
after = resident()
second = cues()
print(json.dumps({"libraries": len(static_ranges(STATIC_ZEROS)), "before": before, "after": after,
                  "again": resident(), "first": first, "second": second}))
"""


def test_praat_static_zeros_are_released_by_settling_and_praat_computes_the_same() -> None:
    out = subprocess.run([sys.executable, "-c", PRAAT], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["libraries"] == 1  # parselmouth found among the loaded libraries
    assert result["before"] - result["after"] > 30 * 2**20  # Praat's table of zeros (39 MiB, 0.4.7)
    assert result["second"] == result["first"]  # the voice cues, bit for bit
    assert result["again"] - result["after"] < 4 * 2**20  # computing cues does not bring it back
