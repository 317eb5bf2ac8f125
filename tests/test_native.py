"""The room's thread defaults for native libraries (edge.native): set before numpy loads, and a value
the environment already has wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

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
