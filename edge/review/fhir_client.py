"""Filing a transaction Bundle with the clinic's FHIR server: an HTTPS client that never follows a
redirect and counts a bundle as filed only when the server answered 2xx with a FHIR
``transaction-response`` Bundle.

A redirect is a failure, whatever its target: following one would send the clinic's credentials to
another origin (in clear text when it points at ``http://``), and the page and the access log would
record "filed" for a bundle that a different server received, or none.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from clinic_common.mqtt import read_password
from edge.config.models import FhirEndpointConfig
from edge.review.fhir import FhirError, FhirUnreachableError

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Filed:
    status: int
    location: str  # the server's Location header, or ""
    entries: int  # the transaction-response's entries (one per resource filed)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Turns every 3xx into an error instead of a second request."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def _headers(endpoint: FhirEndpointConfig) -> dict[str, str]:
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if endpoint.token_file is not None:
        headers["Authorization"] = f"Bearer {read_password(endpoint.token_file)}"
    elif endpoint.username is not None and endpoint.password_file is not None:
        pair = f"{endpoint.username}:{read_password(endpoint.password_file)}".encode()
        headers["Authorization"] = f"Basic {base64.b64encode(pair).decode('ascii')}"
    return headers


def _transaction_response(body: bytes, url: str, status: int) -> int:
    """The number of entries of a ``transaction-response`` Bundle, or FhirError."""
    try:
        answer = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        answer = None
    if (
        not isinstance(answer, dict)
        or answer.get("resourceType") != "Bundle"
        or answer.get("type") != "transaction-response"
    ):
        raise FhirError(
            f"the FHIR server {url} answered HTTP {status} but not with a FHIR transaction-response Bundle: "
            "nothing is known to be filed"
        )
    entries = answer.get("entry") or []
    return len(entries) if isinstance(entries, list) else 0


def post_bundle(bundle: dict[str, Any], endpoint: FhirEndpointConfig) -> Filed:
    """POST the transaction bundle to the clinic's FHIR server with its credentials.

    Raises:
        FhirError: the server refused it, redirected it, or did not confirm the transaction.
        FhirUnreachableError: the server could not be reached (nothing was filed).
    """
    context = ssl.create_default_context(cafile=str(endpoint.ca_file) if endpoint.ca_file else None)
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _NoRedirects())
    request = urllib.request.Request(  # noqa: S310 - the configured https (or loopback) endpoint
        endpoint.url, data=json.dumps(bundle).encode("utf-8"), headers=_headers(endpoint), method="POST"
    )
    try:
        with opener.open(request, timeout=endpoint.timeout_s) as response:
            status = int(response.status)
            location = response.headers.get("Location", "")
            body = response.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            target = exc.headers.get("Location", "") if exc.headers else ""
            raise FhirError(
                f"the FHIR server {endpoint.url} answered with a redirect (HTTP {exc.code} to {target or '?'}); "
                "redirects are not followed and the credentials were not sent on: nothing was filed. "
                "Configure the endpoint's final https address"
            ) from None
        raise FhirError(f"the FHIR server {endpoint.url} refused the bundle: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FhirUnreachableError(f"cannot reach the FHIR server {endpoint.url}: {reason}") from None
    if not 200 <= status < 300:
        raise FhirError(f"the FHIR server {endpoint.url} answered HTTP {status}: nothing is known to be filed")
    entries = _transaction_response(body, endpoint.url, status)
    logger.info("bundle filed with %s: HTTP %d, %d entries", endpoint.url, status, entries)
    return Filed(status, location, entries)
