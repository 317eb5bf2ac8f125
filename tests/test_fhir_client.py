"""Filing with the clinic's FHIR server over real HTTP on loopback: a redirect is never followed (the
credentials stay with the configured origin) and only a 2xx transaction-response counts as filed."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest

from edge.config.models import FhirEndpointConfig
from edge.review.fhir import FhirError
from edge.review.fhir_client import post_bundle

BUNDLE: dict[str, Any] = {"resourceType": "Bundle", "type": "transaction", "entry": []}


class _Server(http.server.BaseHTTPRequestHandler):
    """Answers every POST with the class's ``status``, ``headers`` and ``body``; records what it got."""

    status: ClassVar[int] = 200
    headers_out: ClassVar[dict[str, str]] = {}
    body: ClassVar[bytes] = b""
    received: ClassVar[list[tuple[str, str]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append((self.path, self.headers.get("Authorization", "")))
        self.send_response(self.status)
        for name, value in self.headers_out.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST  # noqa: N815 - the handler method names are http.server's

    def log_message(self, *_args: object) -> None:
        return


@contextmanager
def _serve(status: int, body: bytes = b"", **headers: str) -> Iterator[tuple[str, type[_Server]]]:
    handler = type("Handler", (_Server,), {"status": status, "headers_out": headers, "body": body, "received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/fhir", handler
    finally:
        server.shutdown()
        server.server_close()


def _endpoint(url: str, tmp_path: Path) -> FhirEndpointConfig:
    token = tmp_path / "token"
    token.write_text("clinic-token-0042\n", encoding="utf-8")
    return FhirEndpointConfig(url=url, token_file=token)


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failure_and_the_token_never_reaches_its_target(tmp_path: Path, code: int) -> None:
    with _serve(200, b"{}") as (elsewhere, captured), _serve(code, Location=elsewhere + "/steal") as (url, first):
        with pytest.raises(FhirError, match=rf"redirect \(HTTP {code} to {elsewhere}/steal\).*nothing was filed"):
            post_bundle(BUNDLE, _endpoint(url, tmp_path))
        assert first.received == [("/fhir", "Bearer clinic-token-0042")]
        assert captured.received == [], "the redirect's target got a request"


_RESPONSE = json.dumps({"resourceType": "Bundle", "type": "transaction-response", "entry": [{}, {}]}).encode()


@pytest.mark.parametrize(
    ("status", "body", "filed"),
    [
        (200, _RESPONSE, True),
        (201, _RESPONSE, True),
        (200, b"<html>Welcome to the proxy</html>", False),  # a captive portal or a proxy's page
        (200, json.dumps({"resourceType": "OperationOutcome"}).encode(), False),
        (200, json.dumps({"resourceType": "Bundle", "type": "batch-response"}).encode(), False),
        (202, b"", False),
    ],
)
def test_only_a_2xx_transaction_response_counts_as_filed(tmp_path: Path, status: int, body: bytes, filed: bool) -> None:
    with _serve(status, body, Location="Bundle/filed-1") as (url, _):
        if filed:
            outcome = post_bundle(BUNDLE, _endpoint(url, tmp_path))
            assert (outcome.status, outcome.location, outcome.entries) == (status, "Bundle/filed-1", 2)
        else:
            with pytest.raises(FhirError, match="not with a FHIR transaction-response"):
                post_bundle(BUNDLE, _endpoint(url, tmp_path))
