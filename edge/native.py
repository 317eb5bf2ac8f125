"""Thread settings of the native libraries the room loads, applied before any of them is imported.

The room runs its models one window at a time on a few threads of its own; numerical libraries that
start a pool of worker threads per call only add contention on a small machine:

* OpenBLAS (numpy's and SciPy's matrix products: the speaker features, the pulse filters) starts a
  thread per core whose workers spin on ``sched_yield`` between calls; at the room's small products
  one thread is faster, and the spinning cost a tenth of a room's CPU.
* OpenMP (CTranslate2, the speech-to-text engine) keeps its workers busy-waiting after each
  parallel region; ``PASSIVE`` lets them sleep, so the other channels get the cores back.

Each is a default: a value already in the environment (the unit's ``Environment=``, a shell) wins.
"""

from __future__ import annotations

import os

DEFAULTS = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_WAIT_POLICY": "PASSIVE",
}


def apply_defaults(environ: os._Environ[str] | dict[str, str] = os.environ) -> dict[str, str]:
    """Set every variable of :data:`DEFAULTS` that ``environ`` lacks; returns those set."""
    applied = {name: value for name, value in DEFAULTS.items() if name not in environ}
    environ.update(applied)
    return applied
