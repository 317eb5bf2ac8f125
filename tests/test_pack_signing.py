"""Signed model packs: a room loads a pack only when its pack.json carries a valid Ed25519 signature
by a key in models.trusted_keys; `clinic-export keygen/sign` make them; doctor names the signer."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from contract.signing import generate_key, sign_file
from edge.config import load_config
from edge.config.models import ModelsConfig
from edge.errors import ModelError
from edge.inference.pack import open_pack, trust_pack
from export.cli import main as export_main
from tests.conftest import PACK_KEY, signing_key, write_config


def _copy(default_pack: Path, where: Path) -> Path:
    """The default pack's index (unsigned) with its model files linked, not copied (93 MB)."""
    where.mkdir()
    for item in default_pack.iterdir():
        if item.name == "pack.json":
            shutil.copy(item, where / item.name)
        elif item.name != "pack.json.sig":
            (where / item.name).symlink_to(item)
    return where


def _other_key(tmp: Path) -> tuple[Path, Path]:
    private, public = tmp / "other.key", tmp / "other.key.pub"
    generate_key(private, public)
    return private, public


@pytest.mark.unit
@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda pack, tmp: None, r"is not signed \(pack\.json\.sig missing\): sign it with `clinic-export sign"),
        (
            lambda pack, tmp: sign_file(pack / "pack.json", _other_key(tmp)[0]),
            r"is signed by key [0-9a-f]{16}, which is not among models\.trusted_keys",
        ),
        (
            lambda pack, tmp: (
                sign_file(pack / "pack.json", signing_key()[0]),
                (pack / "pack.json").write_text((pack / "pack.json").read_text().replace('"fp32"', '"fp32" ', 1)),
            ),
            r"does not verify with key [0-9a-f]{16} \(tests\.key\.pub\): the pack's index was changed after it was "
            r"signed",
        ),
        (
            lambda pack, tmp: (pack / "pack.json.sig").write_text("not json"),
            r"pack\.json\.sig is unreadable",
        ),
    ],
    ids=["unsigned", "unknown key", "index changed after signing", "unreadable signature"],
)
def test_an_untrusted_pack_stops_the_start_with_the_reason(
    default_pack: Path, tmp_path: Path, prepare: Callable[[Path, Path], object], message: str
) -> None:
    from edge.runtime import Appliance

    pack = _copy(default_pack, tmp_path / "pack")
    prepare(pack, tmp_path)
    cfg = write_config(tmp_path / "room.toml", face_model=Path(), state_dir=tmp_path / "s", mqtt_port=None, pack=pack)
    with pytest.raises(ModelError, match=message):
        Appliance(load_config(cfg), "test:")


@pytest.mark.unit
def test_a_pack_signed_by_a_trusted_key_loads_and_must_stay_as_signed(default_pack: Path, tmp_path: Path) -> None:
    pack = _copy(default_pack, tmp_path / "pack")
    with pytest.raises(ModelError, match="was not authenticated"):
        open_pack(pack)  # never read before its signature was checked
    private, public = _other_key(tmp_path)
    sign_file(pack / "pack.json", private)
    signer = trust_pack(ModelsConfig(pack=pack, trusted_keys=[PACK_KEY, public]))
    assert signer is not None and signer.key_file == public
    assert open_pack(pack).models
    (pack / "pack.json").write_text((pack / "pack.json").read_text() + "\n")  # replaced while running
    with pytest.raises(ModelError, match="changed since its signature was checked; restart"):
        open_pack(pack)


@pytest.mark.unit
def test_keygen_and_sign_from_the_command_line(
    default_pack: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "keys" / "clinic.key"
    assert export_main(["keygen", "--out", str(key)]) == 0
    assert (key.stat().st_mode & 0o777) == 0o600 and key.with_name("clinic.key.pub").is_file()
    assert export_main(["keygen", "--out", str(key)]) != 0
    assert "a signing key is never overwritten" in caplog.text
    pack = _copy(default_pack, tmp_path / "pack")
    assert export_main(["sign", "--pack", str(pack), "--key", str(key)]) == 0
    assert "signed:" in capsys.readouterr().out
    signer = trust_pack(ModelsConfig(pack=pack, trusted_keys=[key.with_name("clinic.key.pub")]))
    assert signer is not None


@pytest.mark.unit
def test_doctor_names_the_packs_signer(default_pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge.cli import main

    cfg = write_config(
        tmp_path / "room.toml", face_model=Path(), state_dir=tmp_path / "s", mqtt_port=None, pack=default_pack
    )
    main(["doctor", "--config", str(cfg)])
    out = capsys.readouterr().out
    assert f"pack signed by key {trust_pack(load_config(cfg).models).key_id} ({PACK_KEY})" in out  # type: ignore[union-attr]


def _release(pack: Path, release: int | None, private: Path) -> None:
    """Rewrite the pack's index with ``release`` and sign it (as a pack built then would be)."""
    import json

    index = json.loads((pack / "pack.json").read_text())
    index["release"] = release
    (pack / "pack.json").write_text(json.dumps(index, indent=2))
    sign_file(pack / "pack.json", private)


@pytest.mark.unit
def test_an_older_signed_pack_is_refused_unless_pinned(default_pack: Path, tmp_path: Path) -> None:
    """Every pack a trusted key ever signed verifies: without a record an attacker who can write the
    pack folder could put back an old one. The room records the newest release per key and refuses
    older ones; models.pin_release goes back on purpose."""
    private, public = _other_key(tmp_path)
    record = tmp_path / "state" / "pack-releases.json"
    new, old, unnumbered = (_copy(default_pack, tmp_path / n) for n in ("new", "old", "unnumbered"))
    _release(new, 1_800_000_000, private)
    _release(old, 1_790_000_000, private)
    _release(unnumbered, None, private)
    signer = trust_pack(ModelsConfig(pack=new, trusted_keys=[public]), record)
    assert signer is not None and record.read_text() == f'{{"{signer.key_id}": 1800000000}}'
    assert record.stat().st_mode & 0o777 == 0o600
    for pack in (old, unnumbered):
        with pytest.raises(ModelError, match=r"older than release 1800000000 this room loaded .* models\.pin_release"):
            trust_pack(ModelsConfig(pack=pack, trusted_keys=[public]), record)
    assert trust_pack(ModelsConfig(pack=old, trusted_keys=[public], pin_release=1_790_000_000), record)
    with pytest.raises(ModelError, match=r"models\.pin_release asks for 1790000000"):
        trust_pack(ModelsConfig(pack=new, trusted_keys=[public], pin_release=1_790_000_000), record)
    assert "1800000000" in record.read_text()  # going back on purpose does not lower the record


@pytest.mark.unit
def test_a_pack_written_again_gets_a_newer_release(default_pack: Path, tmp_path: Path) -> None:
    from export.pack import read_index, write_index

    pack = tmp_path / "pack"
    shutil.copytree(default_pack, pack, symlinks=True)
    first = read_index(pack).release
    write_index(pack, read_index(pack))
    second = read_index(pack).release
    assert second is not None and (first is None or second > first)
    write_index(pack, read_index(pack))
    third = read_index(pack).release
    assert third is not None and third > second
