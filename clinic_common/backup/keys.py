"""The age keys backups are encrypted to: the recipient (public, on the room) and the identity
(private, kept by clinic IT away from the room)."""

from __future__ import annotations

import os
from pathlib import Path

import pyrage

from clinic_common.errors import ConfigError


def generate(identity_file: Path) -> str:
    """Write a new identity (owner-only) to ``identity_file``; return its recipient (``age1...``)."""
    if identity_file.exists():
        raise ConfigError(f"{identity_file} exists; a backup key is never overwritten")
    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    fd = os.open(identity_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"# clinic-edge backup key (rooms and hub); recipient: {recipient}\n{identity}\n")
    return recipient


def recipient(text: str) -> pyrage.x25519.Recipient:
    """``text``: an ``age1...`` recipient, or a file holding one (a line of its own)."""
    path = Path(text)
    if not text.startswith("age1") and path.is_file():
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
        text = next((ln for ln in lines if ln.startswith("age1")), "")
    try:
        return pyrage.x25519.Recipient.from_str(text.strip())
    except pyrage.RecipientError as exc:
        raise ConfigError(f"not an age recipient ({exc}); give age1... or a file with one") from None


def identity(path: Path) -> pyrage.x25519.Identity:
    """The identity in ``path`` (age's key file format: comments and one AGE-SECRET-KEY- line)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the backup key {path}: {exc.strerror}") from None
    secret = next((ln.strip() for ln in lines if ln.strip().startswith("AGE-SECRET-KEY-")), "")
    try:
        return pyrage.x25519.Identity.from_str(secret)
    except pyrage.IdentityError:
        raise ConfigError(f"{path} holds no age identity (AGE-SECRET-KEY-...)") from None
