"""The room's thread defaults for native libraries (edge.native): set before numpy loads, and a value
the environment already has wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edge import native
from edge.native import DEFAULTS, apply_defaults


@pytest.mark.unit
@pytest.mark.parametrize(
    ("environ", "applied"),
    [
        ({}, DEFAULTS),
        ({"OPENBLAS_NUM_THREADS": "4"}, {"OMP_WAIT_POLICY": "PASSIVE"}),
        ({"OPENBLAS_NUM_THREADS": "2", "OMP_WAIT_POLICY": "ACTIVE"}, {}),
    ],
)
def test_defaults_fill_only_what_is_missing(environ: dict[str, str], applied: dict[str, str]) -> None:
    before = dict(environ)
    assert apply_defaults(environ) == applied
    assert environ == {**DEFAULTS, **before}


PROBE = "import edge, numpy, json; from threadpoolctl import threadpool_info; " + (
    "print(json.dumps([i['num_threads'] for i in threadpool_info() if i['internal_api'] == 'openblas']))"
)


@pytest.mark.parametrize(("given", "threads"), [(None, 1), ("2", 2)])
def test_numpy_in_a_room_process_multiplies_on_one_thread(given: str | None, threads: int) -> None:
    env = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    pools = json.loads(out.stdout)
    assert pools and all(n == threads for n in pools)


ARENAS = """
import ctypes, json, os, sys, tempfile, threading
import edge
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
start = threading.Barrier(16)
def work():
    start.wait()
    for size in range(64, 64 * 200, 64):
        libc.free(libc.malloc(size))
threads = [threading.Thread(target=work) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
fd, path = tempfile.mkstemp()
stream = libc.fdopen(fd, b"w")
libc.malloc_info(0, ctypes.c_void_p(stream))
libc.fclose(ctypes.c_void_p(stream))
text = open(path).read()
os.unlink(path)
print(text.count("<heap nr="))
"""


@pytest.mark.parametrize(("given", "most"), [(None, 1), ("8", 8)])
def test_a_room_process_keeps_its_threads_in_one_malloc_arena(given: str | None, most: int) -> None:
    """Sixteen threads allocating at once: one arena at the default (glibc would give each
    thread one of its own, up to 8 per core); MALLOC_ARENA_MAX in the environment wins."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    if given is not None:
        env["MALLOC_ARENA_MAX"] = given
    out = subprocess.run([sys.executable, "-c", ARENAS], env=env, capture_output=True, text=True, check=True)
    arenas = int(out.stdout.split()[-1])
    assert 1 <= arenas <= most
    if given is not None:
        assert arenas > 2  # the probe does make threads take arenas of their own: the default's bound is real


LARGE = """
import ctypes, edge
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def on_heap(address):
    for line in open("/proc/self/maps"):
        if line.rstrip().endswith("[heap]"):
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            if start <= address < end:
                return True
    return False
size = 2 << 20
libc.free(libc.malloc(size))  # glibc's own rule raises its threshold to this size here
block = libc.malloc(size)
print(on_heap(block))
libc.free(block)
"""


@pytest.mark.parametrize(("given", "heap"), [(None, False), ("4194304", True)])
def test_a_room_process_gives_large_blocks_back_when_freed(given: str | None, heap: bool) -> None:
    """A 2 MiB block allocated after an equal one was freed: at the room's default it has pages of its
    own (given back when freed); glibc's moving threshold would have put it in the heap, as a
    threshold above its size from the environment does."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    if given is not None:
        env["MALLOC_MMAP_THRESHOLD_"] = given
    out = subprocess.run([sys.executable, "-c", LARGE], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == str(heap)


def test_without_the_room_setting_glibc_moves_its_threshold() -> None:
    """The check above can tell the two apart: the same probe without edge's setting (``import ctypes``
    alone) puts the second block in the heap."""
    probe = LARGE.replace("import ctypes, edge", "import ctypes")
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "True"


@pytest.mark.unit
def test_threads_started_by_a_library_yield_the_cpu_and_never_gain_it() -> None:
    """The threads a load started are found by difference; their nice value is raised, and a later
    call asking for less changes nothing (lowering it would need privileges)."""
    go = threading.Event()
    before = native.threads()
    worker = threading.Thread(target=go.wait)
    worker.start()
    try:
        assert worker.native_id in native.threads() - before
        assert worker.native_id not in native.native_threads_since(before)  # a Python thread: not a library's
        started = {worker.native_id or 0}
        assert native.lower_priority(started, 7) == 1
        assert os.getpriority(os.PRIO_PROCESS, worker.native_id or 0) == 7
        assert native.lower_priority(started, 3) == 0
        assert os.getpriority(os.PRIO_PROCESS, worker.native_id or 0) == 7
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < 7  # the caller keeps its own
    finally:
        go.set()
        worker.join()
    gone = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # no thread can have this id
    assert native.lower_priority({gone}, 9) == 0  # skipped, no error


SETTLE = """
import gc, json, weakref
from edge.native import settle_heap
class Node:
    pass
def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a
loaded = [cycle() for _ in range(5000)]  # what loading keeps: lives as long as the process
garbage = cycle()
gone = weakref.ref(garbage)
del garbage  # loading's garbage: a cycle only the collector frees
frozen = settle_heap()
later = cycle()
after = weakref.ref(later)
del later
gc.collect()
print(json.dumps({"frozen": frozen, "count": gc.get_freeze_count(), "loading_garbage_freed": gone() is None,
                  "walked": len(gc.get_objects()), "session_garbage_freed": after() is None}))
"""


def test_settling_the_heap_frees_loadings_garbage_and_leaves_the_rest_out_of_collections() -> None:
    out = subprocess.run([sys.executable, "-c", SETTLE], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["frozen"] == result["count"] >= 3 * 5000  # the list and its 10,000 nodes at least
    assert result["loading_garbage_freed"]  # collected before the freeze, not kept forever
    assert result["session_garbage_freed"]  # objects made afterwards are collected as before
    assert result["walked"] < 1000  # a collection no longer walks what was loaded
