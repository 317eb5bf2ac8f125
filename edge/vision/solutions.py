"""MediaPipe's face detection and face mesh, loaded without the rest of MediaPipe's Python package.

``import mediapipe`` runs the package's ``__init__``, which imports every legacy solution (hands,
pose, holistic, objectron, ...), their drawing helpers and through them matplotlib's pyplot, and the
Tasks API: 31 MiB of a room's memory (49 against 18 MiB for MediaPipe's import, mediapipe 0.10.18,
OpenCV already loaded) and a third of a second of its start, for modules the room never calls. The
room needs two modules of ``mediapipe.python.solutions``. :func:`solution` imports the solutions'
modules as the package does, but for the drawing helpers, with the two package ``__init__`` files
that pull in the rest (``mediapipe`` and ``mediapipe.python.solutions``) registered but not run;
``mediapipe.python``'s own (the framework's bindings, which the solutions use) runs as usual. Where
MediaPipe was already imported in full (a test, a notebook), that is used as it is. Code in the same
process that imports MediaPipe afterwards gets the package as loaded here: ``mediapipe.solutions``
and its modules, not the drawing helpers or the Tasks API; the repository's own code
(scripts/make_scene.py) loads MediaPipe through here.

mediapipe is pinned (pyproject.toml); tests/test_vision_solutions.py checks that detection and mesh
loaded this way give what the full package gives, to the bit, and that matplotlib is not loaded.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Literal

from edge.errors import ModelError

# packages whose __init__ imports what the room does not use
_NOT_RUN = ("mediapipe", "mediapipe.python.solutions")
# what mediapipe.python.solutions' __init__ imports, but its drawing helpers (drawing_utils,
# drawing_styles: matplotlib): the solutions' modules register their calculators' options with
# protobuf, and a graph whose options are not registered loses them on its way through Python
# (face detection without its non-maximum suppression: one face found twice)
_SOLUTIONS = (
    "face_detection",
    "face_mesh",
    "face_mesh_connections",
    "hands",
    "hands_connections",
    "holistic",
    "objectron",
    "pose",
    "selfie_segmentation",
)
_lock = threading.Lock()


def _register_without_running(name: str) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = importlib.import_module(parent_name) if parent_name else None
    spec = importlib.machinery.PathFinder.find_spec(name, getattr(parent, "__path__", None))
    if spec is None or spec.submodule_search_locations is None:
        raise ModelError(f"{name} is not installed; install the 'edge' extra (scripts/setup.sh)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    if parent is not None:
        setattr(parent, child, module)
    if name == "mediapipe.python.solutions":  # the package's own alias: mediapipe.solutions.<name> works
        setattr(sys.modules["mediapipe"], "solutions", module)  # noqa: B010 - a module attribute


def solution(name: Literal["face_detection", "face_mesh"]) -> ModuleType:
    """The module ``mediapipe.python.solutions.<name>``, imported as the module docstring says."""
    with _lock:
        # mediapipe imports sounddevice (an audio-capture library) for features the appliance does not
        # use; its import probes for PortAudio by running the C compiler. Blocking it keeps audio
        # capture GStreamer's alone and the start free of subprocesses.
        sys.modules.setdefault("sounddevice", None)  # type: ignore[arg-type]
        for package in _NOT_RUN:
            if package not in sys.modules:
                _register_without_running(package)
        modules = {each: importlib.import_module(f"mediapipe.python.solutions.{each}") for each in _SOLUTIONS}
        return modules[name]
