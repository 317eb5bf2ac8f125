"""The fast loop's rule, enforced: a test marked ``unit`` touches no database, starts no process
(broker, browser, database server, tools) and starts no GStreamer capture (clips, cameras).

``scripts/test.sh --fast`` runs the ``unit`` tests alone. A test marked ``unit`` that crosses one of
these lines fails with :class:`BoundaryCrossedError` naming what it touched, so the marker cannot drift
from what the tests do. ``CLINIC_TEST_BOUNDARY=all`` applies the rule to every test (how the unit set
is found: the tests that still pass).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest


class BoundaryCrossedError(RuntimeError):
    """A unit test reached for something only the full suite may use."""


def _refuse(what: str) -> Any:
    def refused(*_args: Any, **_kwargs: Any) -> Any:
        raise BoundaryCrossedError(f"a unit test {what}: mark it otherwise (tests/boundary.py)")

    return refused


IMPORT_TIME_PROBES = ("ctypes.util", "numpy.testing._private.utils")


def _popen_outside_library_lookups(real: Any) -> Any:
    """Processes stay refused, except what a first import of some libraries runs in whichever test
    comes first: ``ctypes.util``'s library look-ups (``ldconfig -p``) and numpy.testing's CPU probe
    (``lscpu``, reached through SciPy)."""

    def popen(*args: Any, **kwargs: Any) -> Any:
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_globals.get("__name__") in IMPORT_TIME_PROBES:
                return real(*args, **kwargs)
            frame = frame.f_back  # type: ignore[assignment]
        raise BoundaryCrossedError("a unit test started a process: mark it otherwise (tests/boundary.py)")

    return popen


def applies(item: pytest.Item) -> bool:
    return os.environ.get("CLINIC_TEST_BOUNDARY") == "all" or item.get_closest_marker("unit") is not None


@pytest.fixture(autouse=True)
def unit_boundary(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if not applies(request.node):
        yield
        return
    monkeypatch.setattr(sqlite3, "connect", _refuse("opened an SQLite database"))
    monkeypatch.setattr(sqlite3.dbapi2, "connect", _refuse("opened an SQLite database"))  # SQLAlchemy's way in
    monkeypatch.setattr(subprocess, "Popen", _popen_outside_library_lookups(subprocess.Popen))
    # The room's own capture (GStreamer's classes themselves are not patched: gi's overrides do not
    # survive having their attributes replaced and put back).
    from edge.capture.pipeline import GstCapture

    monkeypatch.setattr(GstCapture, "start", _refuse("started a GStreamer capture"))
    yield
