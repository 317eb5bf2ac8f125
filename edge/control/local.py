"""The local control socket: ``<state_dir>/control.sock``, one JSON command per connection.

Clients are served concurrently (up to :data:`MAX_CLIENTS` at once; more get a "busy" reply), and
a client that sends nothing for ``idle_timeout_s`` is dropped, so an idle or stuck client never
holds up a ``pause``.

The socket is created with mode 0600, so only the service's user (and root) can send commands;
`clinic-edge control` is its client. It is bound inside a private (0700) folder next to its final
path, set to 0600 there and then renamed into place, so no other user can reach it at any moment.
The process umask is never changed: it is shared by every thread (rooms of one process, capture,
store), and changing it around the bind could leave files and folders made meanwhile, or the whole
process, with the socket's restrictive mask.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import socketserver
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.control.commands import MAX_COMMAND_BYTES, CommandError, parse_command, stamped
from edge.errors import EdgeError

logger = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
MAX_CLIENTS = 8
IDLE_TIMEOUT_S = 5.0
POLL_S = 0.05  # how soon close() returns: the serving loop looks for a shutdown this often
Handler = Callable[[bytes, str], dict[str, str]]


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """One thread per client, at most ``MAX_CLIENTS`` at once."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 4 * MAX_CLIENTS  # connections waiting to be accepted

    def __init__(self, address: str, request: type[socketserver.BaseRequestHandler]) -> None:
        super().__init__(address, request)
        self.slots = threading.BoundedSemaphore(MAX_CLIENTS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(json.dumps({"result": "error", "error": "busy: too many clients"}).encode() + b"\n")
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class ControlSocket:
    def __init__(self, path: Path, handler: Handler, idle_timeout_s: float = IDLE_TIMEOUT_S) -> None:
        self.path = path
        outer_handler = handler

        class _Request(socketserver.StreamRequestHandler):
            timeout = idle_timeout_s  # applied to the connection: an idle client is dropped

            def handle(self) -> None:
                try:
                    raw = self.rfile.readline(MAX_COMMAND_BYTES + 2).rstrip(b"\n")
                except (TimeoutError, OSError):
                    logger.debug("control client sent nothing for %.1f s; dropped", idle_timeout_s)
                    return
                reply = outer_handler(raw, "local socket")
                try:
                    self.wfile.write(json.dumps(reply).encode() + b"\n")
                except OSError:
                    logger.debug("control client left before its reply")

        if path.exists() or path.is_symlink():
            path.unlink()
        self._server = _bind_private(path, _Request)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(POLL_S,), name="control-socket", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        logger.info("control socket at %s", self.path)

    def close(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for a serving loop, which never started otherwise
            self._server.shutdown()
        self._server.server_close()
        self.path.unlink(missing_ok=True)


def _bind_private(path: Path, request: type[socketserver.BaseRequestHandler]) -> _Server:
    """A Unix stream server listening at ``path`` with mode 0600, never reachable with a wider mode."""
    private = Path(tempfile.mkdtemp(prefix=".ctl-", dir=path.parent))  # 0700, whatever the umask
    staging = private / "s"
    try:
        server = _Server(str(staging), request)
        try:
            staging.chmod(0o600)
            staging.replace(path)
        except OSError:
            server.server_close()
            raise
    finally:
        staging.unlink(missing_ok=True)
        private.rmdir()
    return server


def send(path: Path, command: dict[str, object], timeout_s: float = 10.0) -> dict[str, str]:
    """Send one command (stamped with its issue time) to a running appliance and return its reply."""
    raw = json.dumps(stamped(command)).encode()
    parse_command(raw)  # refuse locally what the appliance would refuse
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(str(path))
            sock.sendall(raw + b"\n")
            data = sock.makefile("rb").readline()
    except FileNotFoundError:
        raise EdgeError(f"no appliance is listening at {path}; is clinic-edge running with this config?") from None
    except PermissionError:
        raise EdgeError(f"not allowed to use {path}; run as the service's user or root") from None
    except OSError as exc:
        raise EdgeError(f"cannot reach the appliance at {path}: {exc}") from None
    reply: dict[str, str] = json.loads(data or b"{}")
    return reply


__all__ = ["SOCKET_NAME", "CommandError", "ControlSocket", "send"]
