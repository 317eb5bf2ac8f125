"""The review page reachable from the therapist's desk on first start: with no certificate
configured it makes its own for the appliance's names and addresses, serves TLS on every address,
and the fingerprint a browser shows is the one ``clinic-edge doctor`` prints and the service logs."""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from edge.config import load_config
from edge.review.certificate import Names, appliance_names, ensure, fingerprint
from tests.conftest import free_port, review_service, write_config

EDGE = (sys.executable, "-m", "edge")


def _room(tmp_path: Path, extra: str = "") -> Path:
    return write_config(
        tmp_path / "room.toml",
        face_model=tmp_path / "x.onnx",
        state_dir=tmp_path / "state",
        mqtt_port=None,
        extra=f"[review]\nport = {free_port()}\n" + extra,
    )


def _doctor_review(config: Path) -> dict[str, str]:
    run = subprocess.run(
        [*EDGE, "doctor", "--config", str(config), "--json"], capture_output=True, text=True, timeout=120
    )
    finding: dict[str, str] = next(f for f in json.loads(run.stdout)["findings"] if f["name"] == "review")
    return finding


def test_first_start_serves_tls_on_the_lan_with_the_fingerprint_doctor_shows(tmp_path: Path) -> None:
    config_path = _room(tmp_path)
    config = load_config(config_path)
    assert config.review.host == "0.0.0.0" and config.review_self_signed()  # noqa: S104 - the default checked
    assert "made at the review page's first start" in _doctor_review(config_path)["detail"]
    with review_service(config_path) as (_, lines):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # a browser that has not yet been told to trust it
        with (
            socket.create_connection(("127.0.0.1", config.review.port), timeout=10) as raw,
            context.wrap_socket(raw) as tls,
        ):
            served = tls.getpeercert(binary_form=True)
        assert served is not None
        shown = ":".join(f"{b:02X}" for b in hashlib.sha256(served).digest())
        doctor = _doctor_review(config_path)
        assert doctor["status"] == "pass" and shown in doctor["detail"], (shown, doctor)
        assert any(shown in line for line in lines), "the service logs the fingerprint too"
        cert = x509.load_der_x509_certificate(served)
        ips = {
            str(a)
            for a in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
                x509.IPAddress
            )
        }
        assert set(appliance_names().ips) <= ips, "every address a desk may use is named"
    key = tmp_path / "state" / "review-tls" / "review.key"
    assert key.stat().st_mode & 0o777 == 0o600


@pytest.mark.unit
def test_the_certificate_is_kept_and_remade_only_for_a_new_address(tmp_path: Path) -> None:
    names = Names(("appliance", "appliance.local", "localhost"), ("127.0.0.1", "192.168.1.20"))
    cert, _, made = ensure(tmp_path, names)
    first = fingerprint(cert)
    assert made and ensure(tmp_path, names)[2] is False and fingerprint(cert) == first
    moved = Names(names.dns, ("127.0.0.1", "192.168.1.31"))  # the clinic's DHCP gave a new address
    assert ensure(tmp_path, moved)[2] is True and fingerprint(cert) != first


@pytest.mark.unit
def test_no_certificate_keeps_the_page_on_the_appliance(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="needs TLS"):
        load_config(_room(tmp_path, 'certificate = "none"\n'))
    config = load_config(_room(tmp_path, 'certificate = "none"\nhost = "127.0.0.1"\n'))
    assert config.review_tls() is None
