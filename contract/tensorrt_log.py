"""TensorRT's messages routed into Python logging (logger ``tensorrt``), for the engine builder and
the room's backend alike. Takes the ``tensorrt`` module as an argument, so importing this module
never needs TensorRT."""

from __future__ import annotations

import logging
from typing import Any

_trt_log = logging.getLogger("tensorrt")


def tensorrt_logger(trt: Any) -> Any:
    """A ``trt.ILogger`` that forwards each message at the matching Python logging level."""

    class _Logger(trt.ILogger):  # type: ignore[misc, name-defined, unused-ignore]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: Any, msg: str) -> None:
            level = {
                trt.ILogger.INTERNAL_ERROR: logging.CRITICAL,
                trt.ILogger.ERROR: logging.ERROR,
                trt.ILogger.WARNING: logging.WARNING,
                trt.ILogger.INFO: logging.INFO,
            }.get(severity, logging.DEBUG)
            _trt_log.log(level, "%s", msg)

    return _Logger()
