"""The sealed archive both products' backups are (clinic_common.backup.sealed): what a restore
accepts, and that a damaged or foreign archive is refused before anything is read from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinic_common.backup import sealed
from clinic_common.backup.keys import generate
from clinic_common.errors import ConfigError

CASES = [  # manifest, kind, unmarked_ok, newest -> schema, or the refusal's words
    ({"format": 1, "kind": "clinic-hub", "schema_version": 6}, "clinic-hub", False, 6, 6),
    ({"format": 1, "kind": "clinic-hub", "schema_version": 5}, "clinic-hub", False, 6, 5),
    ({"format": 1, "kind": "clinic-hub", "schema_version": 7}, "clinic-hub", False, 6, "newer clinic-hub"),
    ({"format": 2, "kind": "clinic-hub", "schema_version": 6}, "clinic-hub", False, 6, "newer clinic-hub"),
    ({"format": 1, "kind": "clinic-edge", "schema_version": 3}, "clinic-hub", False, 6, "clinic-edge backup"),
    ({"format": 1, "kind": "clinic-hub", "schema_version": 3}, "clinic-edge", True, 9, "clinic-hub backup"),
    ({"format": 1, "schema_version": 3}, "clinic-edge", True, 9, 3),  # the room's first backups: no kind
    ({"format": 1, "schema_version": 3}, "clinic-hub", False, 9, "without a product's mark"),
]


@pytest.mark.unit
@pytest.mark.parametrize(("manifest", "kind", "unmarked_ok", "newest", "expected"), CASES)
def test_what_a_restore_accepts(
    manifest: dict[str, object], kind: str, unmarked_ok: bool, newest: int, expected: int | str
) -> None:
    backup = Path("x.clinic-backup")
    if isinstance(expected, int):
        assert sealed.restorable_schema(manifest, backup, kind, newest, unmarked_ok=unmarked_ok) == expected
    else:
        with pytest.raises(ConfigError, match=expected):
            sealed.restorable_schema(manifest, backup, kind, newest, unmarked_ok=unmarked_ok)


@pytest.mark.unit
def test_a_sealed_archive_round_trips_and_refuses_tampering(tmp_path: Path) -> None:
    key = tmp_path / "key"
    recipient = generate(key)
    (tmp_path / "a.db").write_bytes(b"database bytes" * 1000)
    out = sealed.destination(tmp_path, "clinic-hub")
    sealed.seal({"database/a.db": tmp_path / "a.db"}, {"format": 1, "kind": "clinic-hub"}, out, recipient, tmp_path)
    assert out.name.startswith("clinic-hub-") and out.suffix == ".clinic-backup"
    assert b"database bytes" not in out.read_bytes()
    (tmp_path / "open").mkdir()
    manifest = sealed.unseal(out, key, tmp_path / "open", "clinic-hub")
    assert (tmp_path / "open" / "files" / "database" / "a.db").read_bytes() == (tmp_path / "a.db").read_bytes()
    assert manifest["kind"] == "clinic-hub" and set(manifest["files"]) == {"database/a.db"}
    flipped = bytearray(out.read_bytes())
    flipped[len(flipped) // 2] ^= 1
    tampered = tmp_path / "tampered.clinic-backup"
    tampered.write_bytes(bytes(flipped))
    (tmp_path / "again").mkdir()
    with pytest.raises(ConfigError, match="cannot decrypt"):  # age authenticates every chunk
        sealed.unseal(tampered, key, tmp_path / "again", "clinic-hub")
    with pytest.raises(ConfigError, match="exists"):
        sealed.destination(out, "clinic-hub")
    assert [p.name for p in sealed.prune(tmp_path, "clinic-hub", 0)] == [out.name]
