"""Thread settings of the native libraries the room loads, applied before any of them is imported.

The room runs its models one window at a time on a few threads of its own; numerical libraries that
start a pool of worker threads per call only add contention on a small machine:

* OpenBLAS (numpy's and SciPy's matrix products: the speaker features, the pulse filters) starts a
  thread per core whose workers spin on ``sched_yield`` between calls; at the room's small products
  one thread is faster, and the spinning cost a tenth of a room's CPU.
* OpenMP (CTranslate2, the speech-to-text engine) keeps its workers busy-waiting after each
  parallel region; ``PASSIVE`` lets them sleep, so the other channels get the cores back.

And the C library's heap (glibc), three settings:

* arenas: each thread that allocates gets a malloc arena of its own, up to eight per core, and
  memory freed in one arena is not reused by another. The room's ~30 threads (capture, the models'
  pools, the words, the windows) spread its transient buffers over a dozen arenas, and the room's
  resident size grew by a few hundred MiB in its first minute. Two arenas cost no measurable CPU
  and kept that growth smaller; one (``MALLOC_ARENA_MAX=1``) keeps the free space of one arena from
  standing idle beside the other's: 6-7 MiB less over a room's session (454-456 MiB against 458-464,
  demo room), with the same CPU, latency and memory in the same hour's A/B of four rooms as
  processes and in one process (docs/benchmarks.md). Most of the room's allocations do not take
  the arena's lock: small ones come from each thread's cache, large ones have pages of their own.
* large blocks: glibc serves a block above its mmap threshold (128 KiB at first) from pages of its
  own and returns them when the block is freed, but it raises the threshold to the size of every
  such block freed (up to 32 MiB), so that from then on the speech-to-text engine's buffers of one
  pass (several MiB each, freed after it) were served from the heap, where the holes they leave
  stayed resident: ~100 MiB of a room's ~680. A fixed threshold of 1 MiB
  (``MALLOC_MMAP_THRESHOLD_=1048576``) gives those pages back after each pass, for the page faults
  of touching them again in the next (about a tenth more of the room's CPU, in the system's time;
  docs/benchmarks.md). Blocks below it (a camera frame, a window's features) stay on the heap.
* the heap's top: with the threshold fixed, glibc would hand the heap's top back to the system
  whenever 128 KiB of it were free, and fault it in again with the next window's buffers; it keeps
  up to 64 MiB (``MALLOC_TRIM_THRESHOLD_``): a fifth fewer page faults, a few MiB more resident.

Each is set here through ``mallopt``, for what is allocated after it; :func:`trim_heap` hands the
heap's free pages back to the system once the models are loaded (loading frees whole model files'
worth of buffers), and :func:`settle_heap` the pages of zeros that Praat writes into its static data
as it loads (39 MiB; :mod:`edge.native_pages`).

And Python's own collector: a full collection walks every object the process holds, ~185,000 once
the libraries and models are loaded, and held the interpreter's lock for 92-114 ms in a room on an
idle machine (91-350 ms at four rooms on two cores, where each room had one in a ten-minute run). Nothing loaded
at the start is ever garbage, so :func:`settle_heap` moves it out of the collector's sight
(``gc.freeze``) after loading; a collection during a session then walks only the session's objects.

Each is a default: a value already in the environment (the unit's ``Environment=``, a shell) wins.

Threads can also yield the CPU: :func:`lower_priority` raises the nice value of given threads (Linux
keeps one per thread, and a thread starts with its creator's), so that on a busy device the work
that can wait (speech to text, which has seconds of slack and sheds what it cannot catch up with)
gives way to the work that cannot (the face path, a window's summary). :func:`threads` tells which
threads a library started, by the difference before and after it loaded.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULTS = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_WAIT_POLICY": "PASSIVE",
}


def apply_defaults(environ: os._Environ[str] | dict[str, str] = os.environ) -> dict[str, str]:
    """Set every variable of :data:`DEFAULTS` that ``environ`` lacks; returns those set."""
    applied = {name: value for name, value in DEFAULTS.items() if name not in environ}
    environ.update(applied)
    return applied


# glibc's malloc settings: environment variable -> (mallopt parameter number, the room's value)
MALLOC_SETTINGS = {
    "MALLOC_ARENA_MAX": (-8, 1),  # M_ARENA_MAX: arenas for all threads
    "MALLOC_MMAP_THRESHOLD_": (-3, 1 << 20),  # M_MMAP_THRESHOLD: larger blocks get pages of their own
    "MALLOC_TRIM_THRESHOLD_": (-1, 64 << 20),  # M_TRIM_THRESHOLD: free space kept at the heap's top
}


def _glibc() -> ctypes.CDLL | None:
    """The process's C library when it is glibc (mallopt and malloc_trim are glibc's), else None."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") else None


def tune_malloc(environ: os._Environ[str] | dict[str, str] = os.environ) -> dict[str, int]:
    """Apply :data:`MALLOC_SETTINGS` for what is allocated from now on, each unless the environment
    sets its variable (glibc read that at start); nothing where the C library is not glibc. Returns
    the settings applied."""
    libc = _glibc()
    if libc is None:
        return {}
    applied = {}
    for name, (parameter, value) in MALLOC_SETTINGS.items():
        if name not in environ and libc.mallopt(parameter, value):
            applied[name] = value
    return applied


def trim_heap() -> None:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere nothing)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def settle_heap() -> int:
    """Once the libraries and models are loaded: collect the garbage of loading, give its pages back
    (:func:`trim_heap`) with the zeros libraries wrote into their static data
    (:mod:`edge.native_pages`), take the pages of mapped files that loading read out of the resident
    set (:mod:`edge.native_files`), and exempt what is left from later collections (``gc.freeze``: those
    objects live as long as the process; one freed later by its reference count is still freed).
    Returns how many objects the collector no longer walks."""
    from edge.native_files import drop_file_pages  # noqa: PLC0415
    from edge.native_pages import release_static_zeros  # noqa: PLC0415 - numpy: after apply_defaults

    gc.collect()
    trim_heap()
    released = release_static_zeros()
    if released:
        logger.info("libraries' static data: %.1f MiB of zeros handed back", released / 2**20)
    dropped = drop_file_pages()
    if dropped:
        logger.info("pages of mapped libraries and models read while loading: %.1f MiB dropped", dropped / 2**20)
    gc.freeze()
    return gc.get_freeze_count()


def threads() -> frozenset[int]:
    """The kernel's ids of this process's threads now (empty where /proc has no task list)."""
    try:
        return frozenset(int(task.name) for task in Path("/proc/self/task").iterdir())
    except OSError:
        return frozenset()


def native_threads_since(before: frozenset[int]) -> frozenset[int]:
    """Threads started since ``before`` was taken by native code: Python's own threads (the MQTT
    client's, a capture's) that started meanwhile are not a library's workers."""
    python = {t.native_id for t in threading.enumerate()}
    return frozenset(tid for tid in threads() - before if tid not in python)


def lower_priority(tids: Iterable[int], nice: int) -> int:
    """Raise the nice value of the threads ``tids`` to ``nice`` (never lower it: that would need
    privileges); returns how many were changed. A thread gone meanwhile is skipped."""
    changed = 0
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
                changed += 1
        except (ProcessLookupError, PermissionError) as exc:
            logger.debug("thread %d keeps its priority: %s", tid, exc)
    return changed
