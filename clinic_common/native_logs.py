"""Native libraries' chatter (MediaPipe's TensorFlow Lite and absl, whisper.cpp's model loading)
goes to standard error from C++, around Python's logging. :func:`native_logs_to` routes what they
print while a model is built into a Python logger at DEBUG (seen with ``-v``), so a run's terminal
and journal hold the product's own lines.

Standard error (file descriptor 2) is shared by the process, so while it is redirected, lines that
are the product's own log records (written by Python's logging from another thread) are passed
through to the real standard error unchanged. One redirection at a time (a lock).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_OWN_RECORD = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")  # the format clinic_common.cli sets
_lock = threading.Lock()


@contextmanager
def native_logs_to(logger: logging.Logger) -> Iterator[None]:
    """Within the block, what native code writes to standard error is logged to ``logger`` at DEBUG."""
    with _lock:
        sys.stderr.flush()
        saved = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)

        def pump() -> None:
            pending = b""
            while chunk := os.read(read_end, 65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    _route(line, saved, logger)
            if pending:
                _route(pending, saved, logger)

        reader = threading.Thread(target=pump, name="native-logs", daemon=True)
        reader.start()
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)  # closes the pipe's last write end held by fd 2: the reader sees EOF
            reader.join(timeout=10)
            os.close(read_end)
            os.close(saved)


def _route(line: bytes, real_stderr: int, logger: logging.Logger) -> None:
    if _OWN_RECORD.match(line):
        os.write(real_stderr, line + b"\n")
    elif line.strip():
        logger.debug("%s", line.decode("utf-8", "replace").rstrip())
