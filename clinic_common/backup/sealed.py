"""The sealed archive: named files and a ``manifest.json`` listing each with its SHA-256, in one tar
encrypted to an age recipient before it reaches the destination. Written beside the destination and
renamed, so a failed backup never leaves a half-written file under the final name; read back into a
folder, refusing names that would leave it and files whose hash differs from the manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sqlite3
import tarfile
import tempfile
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

import pyrage

from clinic_common.backup.keys import identity as read_identity
from clinic_common.backup.keys import recipient as parse_recipient
from clinic_common.errors import ConfigError, StoreError

FORMAT = 1  # the archive's layout: a manifest.json with the files' hashes, then the files
MANIFEST = "manifest.json"
SUFFIX = ".clinic-backup"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def online_copy(source: Path, target: Path) -> None:
    """``source`` (a live SQLite database) copied consistently to ``target`` while others write: SQLite's
    online backup, a page batch at a time, so writers are never held for the whole copy.

    Raises:
        StoreError: ``source`` cannot be read.
    """
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst, pages=1024)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot copy {source}: {exc}") from None
    finally:
        dst.close()
        src.close()


def dated_name(prefix: str, when: datetime) -> str:
    """``<prefix>-<UTC time>.clinic-backup``: sorts by time among one source's backups."""
    return f"{prefix}-{when.astimezone(timezone.utc):%Y%m%dT%H%M%S.%fZ}{SUFFIX}"


def prune(folder: Path, prefix: str, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest backups named ``<prefix>-...`` in ``folder``; return those deleted."""
    mine = sorted(folder.glob(f"{prefix}-*{SUFFIX}"))
    old = mine[: max(0, len(mine) - keep)]
    for path in old:
        path.unlink()
    return old


def destination(out: Path, prefix: str) -> Path:
    """The file a backup goes to: ``out``, or a dated name in ``out`` when it is a folder.

    Raises:
        ConfigError: that file exists (a backup never overwrites one) or its folder does not.
    """
    if out.is_dir():
        out = out / dated_name(prefix, datetime.now(timezone.utc))
    if out.exists():
        raise ConfigError(f"{out} exists; choose a new file name (a backup never overwrites one)")
    if not out.parent.is_dir():
        raise ConfigError(f"{out.parent} is not a folder; create it or choose another --out")
    return out


def seal(files: dict[str, Path], manifest: dict[str, Any], out: Path, recipient: str, work: Path) -> int:
    """Write ``files`` (archive name -> file) and ``manifest`` (plus each file's SHA-256 under
    ``files``) as one archive encrypted to ``recipient``, to ``out``; ``work`` is a folder on the
    same file system as ``out`` for the plain tar. Returns the size written.

    Raises:
        ConfigError: ``recipient`` is not an age recipient.
    """
    to = parse_recipient(recipient)
    listed = {**manifest, "files": {name: _sha256(path) for name, path in files.items()}}
    plain = work / "backup.tar"
    with tarfile.open(plain, "w") as tar:
        data = json.dumps(listed, indent=1).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for name, path in files.items():
            tar.add(path, arcname=name, recursive=False)
    partial = work / "backup.age"
    pyrage.encrypt_file(str(plain), str(partial), [to])
    plain.unlink()
    partial.chmod(0o600)
    size = partial.stat().st_size
    partial.replace(out)
    return size


def _safe_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The archive's regular files, refusing any name that would leave the extraction folder."""
    members = []
    for member in tar.getmembers():
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts or not member.isfile():
            raise ConfigError(f"the backup holds an unexpected entry {member.name!r}; refused")
        members.append(member)
    return members


def unseal(backup: Path, identity_file: Path, folder: Path, kind: str) -> dict[str, Any]:
    """Decrypt ``backup`` with the key in ``identity_file`` into ``folder`` and check every file
    against the manifest; returns the manifest. The files are under ``folder/files``.

    Raises:
        ConfigError: a wrong key, a damaged or truncated file, not a ``kind`` backup, or a file whose
            hash differs from the manifest.
    """
    plain = folder / "backup.tar"
    try:
        pyrage.decrypt_file(str(backup), str(plain), [read_identity(identity_file)])
    except (pyrage.DecryptError, OSError) as exc:  # a wrong key, or a damaged or truncated file
        raise ConfigError(f"cannot decrypt {backup} with {identity_file}: {exc}") from None
    try:
        with tarfile.open(plain) as tar:
            for member in _safe_members(tar):
                target = folder / "files" / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:
                    continue
                with source, target.open("wb") as f:
                    shutil.copyfileobj(source, f)
    except tarfile.TarError as exc:
        raise ConfigError(f"{backup} is not a {kind} backup: {exc}") from None
    plain.unlink()
    try:
        manifest: dict[str, Any] = json.loads((folder / "files" / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ConfigError(f"{backup} has no readable manifest; not a {kind} backup") from None
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise ConfigError(f"{backup}: the manifest lists no files")
    for name, digest in listed.items():
        path = folder / "files" / name
        if not path.is_file() or _sha256(path) != digest:
            raise ConfigError(f"{backup}: {name} is missing or damaged (its SHA-256 differs from the manifest)")
    return manifest


def restorable_schema(
    manifest: dict[str, Any], backup: Path, kind: str, newest: int, *, unmarked_ok: bool = False
) -> int:
    """The database schema a ``kind`` backup holds, once it is one this software reads (``newest``
    or older). ``unmarked_ok``: a manifest without a kind counts as ``kind`` (the room's first backups).

    Raises:
        ConfigError: another product's backup, or one from a newer schema or archive format.
    """
    found = manifest.get("kind", kind if unmarked_ok else None)
    if found != kind:
        what = f"a {found} backup" if found else "a backup without a product's mark"
        raise ConfigError(f"{backup} is {what}, not a {kind} one; restore it with that product's command")
    schema = int(str(manifest.get("schema_version", 0)))
    if manifest.get("format") != FORMAT or schema > newest:
        raise ConfigError(
            f"{backup} comes from a newer {kind} (database schema {schema}, this software reads up to "
            f"{newest}); install that release or newer to restore it"
        )
    return schema


def work_folder(near: Path, prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A private scratch folder beside ``near`` (same file system: the final rename is atomic)."""
    return tempfile.TemporaryDirectory(prefix=prefix, dir=near)
