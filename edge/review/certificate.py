"""The review page's own certificate, made on the appliance the first time the page starts without
one (``review.certificate = "self-signed"``, the default), as appliance web pages do: a P-256 key and
a certificate for the appliance's host name and addresses, kept in ``<state_dir>/review-tls`` (0700,
the key 0600). A browser cannot know it, so it warns once; the technician or therapist compares the
SHA-256 fingerprint it shows with the one ``clinic-edge doctor`` prints (and the service logs) and
accepts it. When the appliance gets an address the certificate does not name, a new one is made
(with a new fingerprint, logged). A clinic with its own certificate sets ``[review.tls]``."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge.config.models import SELF_SIGNED_DIR as FOLDER

logger = logging.getLogger(__name__)

CERT = "review.crt"
KEY = "review.key"
VALID_DAYS = 825  # the longest browsers accept for a server certificate they are told to trust
PROBE = "192.0.2.1"  # TEST-NET-1: connecting a UDP socket sends nothing, it only picks the route


@dataclass(frozen=True)
class Names:
    dns: tuple[str, ...]
    ips: tuple[str, ...]


def appliance_names() -> Names:
    """The names and addresses a browser in the clinic may use for this appliance."""
    host = socket.gethostname()
    dns = sorted({host, f"{host}.local", "localhost"})
    ips = {"127.0.0.1", "::1"}
    try:
        for info in socket.getaddrinfo(host, None):
            ips.add(str(info[4][0]))
    except OSError:
        pass
    for family, probe in ((socket.AF_INET, PROBE), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))
                ips.add(str(s.getsockname()[0]))
        except OSError:
            continue  # no route of that family: nothing to name
    usable = sorted(a for a in ips if not ipaddress.ip_address(a.split("%")[0]).is_link_local)
    return Names(tuple(dns), tuple(usable))


def _names_in(cert: x509.Certificate) -> Names:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return Names((), ())
    return Names(
        tuple(san.get_values_for_type(x509.DNSName)), tuple(str(a) for a in san.get_values_for_type(x509.IPAddress))
    )


def fingerprint(cert_file: Path) -> str:
    """The certificate's SHA-256 fingerprint as browsers show it (AB:CD:...)."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def paths(state_dir: Path) -> tuple[Path, Path]:
    return state_dir / FOLDER / CERT, state_dir / FOLDER / KEY


def ensure(state_dir: Path, names: Names | None = None) -> tuple[Path, Path, bool]:
    """The self-signed certificate and key, made (or remade for new addresses) when needed.
    Returns the two paths and whether a new certificate was made."""
    cert_file, key_file = paths(state_dir)
    names = names or appliance_names()
    if cert_file.is_file() and key_file.is_file():
        existing = x509.load_pem_x509_certificate(cert_file.read_bytes())
        held = _names_in(existing)
        expires = existing.not_valid_after.replace(tzinfo=dt.timezone.utc)  # naive UTC in cryptography < 42
        soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30)
        if set(names.ips) <= set(held.ips) and set(names.dns) <= set(held.dns) and expires > soon:
            return cert_file, key_file, False
    cert_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names.dns[0] if names.dns else "clinic-edge")])
    now = dt.datetime.now(dt.timezone.utc)
    san = [x509.DNSName(d) for d in names.dns] + [x509.IPAddress(ipaddress.ip_address(a)) for a in names.ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as fh:
        fh.write(pem_key)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    logger.warning(
        "review page: a new self-signed certificate for %s; SHA-256 fingerprint %s",
        ", ".join((*names.dns, *names.ips)),
        fingerprint(cert_file),
    )
    return cert_file, key_file, True
