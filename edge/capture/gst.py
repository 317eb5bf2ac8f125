"""The one place that imports GStreamer's Python bindings.

Debian's libgstreamer links libunwind, whose ``_Unwind_*`` symbols then win over libgcc's for C++
extension modules loaded later (mediapipe's, onnxruntime, ...): the first C++
exception they throw crashes the process. Loading libgcc_s into the global namespace first keeps
exception unwinding on libgcc, as those modules were built for.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from typing import Any

with contextlib.suppress(OSError):  # not glibc: nothing to protect against
    ctypes.CDLL("libgcc_s.so.1", mode=os.RTLD_GLOBAL)

Gst: Any
try:
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst as _Gst

    Gst = _Gst
    GST_IMPORT_ERROR: str | None = None
except (ImportError, ValueError) as _exc:  # pragma: no cover - depends on the system
    Gst = None
    GST_IMPORT_ERROR = str(_exc)
