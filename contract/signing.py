"""Signed model packs: an Ed25519 signature over ``pack.json``, which holds the SHA-256 of every
file of the pack, so that a room loads only packs signed by a key it trusts.

``pack.json.sig`` is a small JSON document: the algorithm, the signing key's id (the first 16 hex
digits of the SHA-256 of its raw public key) and the signature (base64) over the exact bytes of
``pack.json``. Keys are PEM files: the private key (PKCS#8, mode 0600) stays where packs are built;
rooms list public keys (SubjectPublicKeyInfo) in ``models.trusted_keys``. Written by
``clinic-export keygen`` and ``clinic-export sign``, checked by the room (:mod:`edge.inference.pack`).
The cryptography package (OpenSSL) does the signing: no hand-written cryptography.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_SUFFIX = ".sig"
ALGORITHM = "ed25519"


class SignatureError(ValueError):
    """A pack's signature is missing, unreadable, by an unknown key, or does not verify."""


@dataclass(frozen=True)
class Signer:
    key_id: str
    key_file: Path  # the trusted public key that verified it
    digest: str  # SHA-256 of the signed index, as verified


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key(private_path: Path, public_path: Path) -> str:
    """A new key pair: the private key 0600, the public key beside it. Returns the key's id."""
    key = Ed25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public = key.public_key()
    public_path.write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return key_id(public)


def load_public(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise SignatureError(f"cannot read the public key {path}: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"{path} is not an Ed25519 public key")
    return key


def sign_file(index: Path, private_path: Path) -> Path:
    """Sign ``index`` with the private key; writes and returns ``<index>.sig``."""
    try:
        key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SignatureError(f"cannot read the private key {private_path}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{private_path} is not an Ed25519 private key")
    signature = key.sign(index.read_bytes())
    out = index.with_name(index.name + SIGNATURE_SUFFIX)
    document = {
        "algorithm": ALGORITHM,
        "key_id": key_id(key.public_key()),
        "signature": base64.b64encode(signature).decode(),
    }
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return out


def verify_file(index: Path, trusted: Sequence[Path]) -> Signer:
    """Who signed ``index``, when the signature verifies with one of the ``trusted`` public keys.

    Raises:
        SignatureError: with what is wrong and what to do.
    """
    sig_path = index.with_name(index.name + SIGNATURE_SUFFIX)
    if not trusted:
        raise SignatureError(
            "models.trusted_keys lists no key: a pack is loaded only when signed by a key listed there"
        )
    try:
        document = json.loads(sig_path.read_text(encoding="utf-8"))
        algorithm, kid, signature = document["algorithm"], document["key_id"], base64.b64decode(document["signature"])
    except FileNotFoundError:
        raise SignatureError(
            f"{index.parent} is not signed ({sig_path.name} missing): sign it with "
            f"`clinic-export sign --pack {index.parent} --key <private key>`"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SignatureError(f"{sig_path} is unreadable: {exc}") from None
    if algorithm != ALGORITHM:
        raise SignatureError(f"{sig_path} uses {algorithm!r}; only {ALGORITHM} is accepted")
    keys = {key_id(k): (k, p) for p in trusted for k in (load_public(p),)}
    if kid not in keys:
        raise SignatureError(
            f"{index.parent} is signed by key {kid}, which is not among models.trusted_keys "
            f"({', '.join(f'{i} ({p.name})' for i, (_, p) in sorted(keys.items()))})"
        )
    public, path = keys[kid]
    data = index.read_bytes()
    try:
        public.verify(signature, data)
    except InvalidSignature:
        raise SignatureError(
            f"the signature of {index} does not verify with key {kid} ({path.name}): the pack's index was "
            "changed after it was signed; rebuild or re-sign the pack"
        ) from None
    return Signer(kid, path, hashlib.sha256(data).hexdigest())
