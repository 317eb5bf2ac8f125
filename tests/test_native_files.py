"""Pages of mapped files taken out of the resident set (edge.native_files): which mappings qualify,
that a clean one stops being resident and reads the same bytes again, that written copies are never
touched, and that the room's libraries compute the same after settling."""

from __future__ import annotations

import json
import mmap
import subprocess
import sys
from pathlib import Path

import pytest

from edge.native_files import Mapping, drop_file_pages, mappings

PAGE = mmap.PAGESIZE
SMAPS = """\
7f0000000000-7f0000004000 r-xp 00000000 08:01 42                         {lib}
Size:                 16 kB
Rss:                  12 kB
Anonymous:             0 kB
Locked:                0 kB
VmFlags: rd ex mr mw me
7f0000004000-7f0000005000 r--p 00004000 08:01 42                         {lib}
Rss:                   4 kB
Anonymous:             4 kB
7f0000005000-7f0000006000 rw-p 00005000 08:01 42                         {lib}
Rss:                   4 kB
Anonymous:             0 kB
7f0000006000-7f0000008000 rw-p 00000000 00:00 0
Rss:                   8 kB
Anonymous:             8 kB
7f0000008000-7f0000009000 r--s 00000000 00:05 7                          /dev/nvmap
Rss:                   4 kB
7f0000009000-7f000000a000 r--p 00000000 08:01 43                         {gone} (deleted)
Rss:                   4 kB
7f000000a000-7f000000b000 r--p 00000000 08:01 44                         {lib}
Rss:                   4 kB
Locked:                4 kB
7f000000b000-7f000000c000 r--p 00000000 08:01 45                         {lib}
Rss:                   0 kB
"""


@pytest.mark.unit
def test_only_mappings_of_a_files_own_unwritten_bytes_qualify(tmp_path: Path) -> None:
    lib = tmp_path / "libexample.so"
    lib.write_bytes(b"\0" * 4 * PAGE)
    found = mappings(SMAPS.format(lib=lib, gone=tmp_path / "gone.so"))
    assert [(m.perms, m.rss_kib, m.anonymous_kib, m.locked_kib, m.clean_file) for m in found] == [
        ("r-xp", 12, 0, 0, True),  # code read while loading
        ("r--p", 4, 4, 0, False),  # a relocated read-only table: copied pages
        ("rw-p", 4, 0, 0, False),  # writable
        ("rw-p", 8, 8, 0, False),  # anonymous memory
        ("r--s", 4, 0, 0, False),  # device memory
        ("r--p", 4, 0, 0, False),  # a file deleted since
        ("r--p", 4, 0, 4, False),  # locked
        ("r--p", 0, 0, 0, False),  # nothing resident
    ]
    assert found[0] == Mapping(0x7F0000000000, 0x7F0000004000, "r-xp", str(lib), 12, 0, 0)


def _resident_kib(start: int) -> int:
    """Resident KiB of this process's mapping that starts at ``start``."""
    for mapping in mappings(Path("/proc/self/smaps").read_text()):
        if mapping.start == start:
            return mapping.rss_kib
    raise LookupError(f"no mapping at {start:#x}")


def _address(view: mmap.mmap) -> int:
    """Where ``view``'s mapping starts (numpy reads a read-only buffer's address; the array goes at once)."""
    import numpy as np

    return int(np.frombuffer(view, dtype=np.uint8).__array_interface__["data"][0])


@pytest.mark.unit
def test_a_clean_mapping_stops_being_resident_and_reads_the_same_and_written_copies_stay(tmp_path: Path) -> None:
    pages = 64
    data = bytes(range(256)) * (pages * PAGE // 256)
    clean_file, written_file = tmp_path / "weights.bin", tmp_path / "table.bin"
    clean_file.write_bytes(data)
    written_file.write_bytes(data)
    with clean_file.open("rb") as f1, written_file.open("r+b") as f2:
        clean = mmap.mmap(f1.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
        written = mmap.mmap(f2.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    try:
        assert clean[:] == data  # every page read: resident
        written[0:5] = b"hello"  # a private copy of the first page, not the file's bytes
        clean_at = _address(clean)
        assert _resident_kib(clean_at) == pages * PAGE // 1024

        dropped = drop_file_pages()

        assert dropped >= pages * PAGE
        assert _resident_kib(clean_at) == 0
        assert clean[:] == data  # read again from the page cache
        assert written[0:5] == b"hello" and written[5:] == data[5:]  # the copy was left alone
        assert written_file.read_bytes() == data  # and never reached the file
    finally:
        clean.close()
        written.close()


SETTLE = """
import json
import numpy as np
import onnx
import onnxruntime as ort
import parselmouth
from onnx import helper, TensorProto
from edge.native import settle_heap

def rss_file():
    for line in open("/proc/self/status"):
        if line.startswith("RssFile"):
            return int(line.split()[1]) * 1024

graph = helper.make_graph([helper.make_node("Tanh", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
session = ort.InferenceSession(helper.make_model(graph).SerializeToString(), providers=["CPUExecutionProvider"])

def work():
    t = np.arange(16000) / 16000
    sound = parselmouth.Sound(0.3 * np.sin(2 * np.pi * 140 * t), 16000)
    y = session.run(None, {"x": np.array([0.1, 0.5, -1.0, 2.0], np.float32)})[0]
    return [sound.to_pitch().get_value_at_time(0.5), *map(float, y)]

first, before = work(), rss_file()
settle_heap()
after = rss_file()
second = work()
print(json.dumps({"first": first, "second": second, "before": before, "after": after, "again": rss_file()}))
"""


def test_the_rooms_libraries_compute_the_same_after_settling_with_far_fewer_file_pages() -> None:
    """Praat, ONNX Runtime and numpy loaded and run, then settled as the room settles after loading:
    most of their file pages leave the resident set, the few a second run uses come back, and the
    results are the same bit for bit."""
    out = subprocess.run([sys.executable, "-c", SETTLE], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["second"] == result["first"]
    assert result["before"] - result["after"] > 20 * 2**20
    assert result["again"] < result["before"] / 2
