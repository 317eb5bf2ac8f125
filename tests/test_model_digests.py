"""Model files are hashed once per process while they do not change, and again whenever they do."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from contract import files
from edge.inference import digests


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every real hash of a file, in order."""
    calls: list[Path] = []
    real = files.sha256_file

    def counting(path: Path) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(digests, "sha256_file", counting)
    digests.forget()
    return calls


def _next_tick(after: int, probe: Path) -> None:
    """Until the file system's clock has moved past ``after`` (its times tick coarsely)."""
    while True:
        probe.write_bytes(b"tick")
        if probe.stat().st_ctime_ns > after:
            return


@pytest.mark.unit
def test_an_unchanged_settled_file_is_hashed_once(
    tmp_path: Path, counted: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(digests, "SETTLE_S", 0.0)
    model = tmp_path / "model.onnx"
    model.write_bytes(b"weights" * 1000)
    first = digests.file_sha256(model)
    assert first == hashlib.sha256(b"weights" * 1000).hexdigest()
    assert digests.file_sha256(model) == first
    assert len(counted) == 1


@pytest.mark.unit
def test_a_file_changed_with_its_time_set_back_is_hashed_again(
    tmp_path: Path, counted: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(digests, "SETTLE_S", 0.0)
    model = tmp_path / "model.onnx"
    model.write_bytes(b"a" * 4096)
    before = model.stat()
    first = digests.file_sha256(model)
    _next_tick(before.st_ctime_ns, tmp_path / "probe")
    model.write_bytes(b"b" * 4096)  # same size
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))  # modification time as it was
    assert digests.file_sha256(model) == hashlib.sha256(b"b" * 4096).hexdigest() != first
    assert len(counted) == 2


@pytest.mark.unit
def test_a_file_changed_just_now_is_not_remembered(tmp_path: Path, counted: list[Path]) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"fresh")
    digests.file_sha256(model)
    digests.file_sha256(model)
    assert len(counted) == 2  # within SETTLE_S of its change: the next write may keep its times
