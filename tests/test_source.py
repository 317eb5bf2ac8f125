"""Source URIs are checked before any pipeline is built."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pytest

from edge.capture.source import parse_source
from edge.errors import SourceError


@pytest.mark.unit
@pytest.mark.parametrize(
    ("uri", "expectation", "kind"),
    [
        ("test:", nullcontext(), "test"),
        ("test:?pattern=snow&wave=white-noise&freq=200", nullcontext(), "test"),
        ("rtsp://user:secret@10.0.0.9:554/stream", nullcontext(), "rtsp"),
        ("test:?pattern=plaid", pytest.raises(SourceError, match=r"pattern 'plaid' is not one of"), None),
        ("test:?freq=loud", pytest.raises(SourceError, match=r"freq must be a number, got 'loud'"), None),
        ("v4l2:///dev/video99", pytest.raises(SourceError, match=r"camera /dev/video99 not found"), None),
        (
            "file:///no/such/clip.mkv",
            pytest.raises(SourceError, match=r"source file not found: /no/such/clip\.mkv"),
            None,
        ),
        ("rtsp:///path-only", pytest.raises(SourceError, match=r"has no host"), None),
        (
            "http://cam/stream",
            pytest.raises(SourceError, match=r"unsupported source 'http://cam/stream'"),
            None,
        ),
    ],
)
def test_parse_source(uri: str, expectation: AbstractContextManager[Any], kind: str | None) -> None:
    with expectation:
        assert parse_source(uri).kind == kind


@pytest.mark.unit
def test_file_source_is_not_live(tmp_path: Path) -> None:
    clip = tmp_path / "a.mkv"
    clip.write_bytes(b"x")
    spec = parse_source(clip.as_uri())
    assert spec.kind == "file"
    assert not spec.live
    assert spec.path == clip


@pytest.mark.unit
def test_credentials_are_redacted() -> None:
    spec = parse_source("rtsp://user:secret@cam.local:554/stream")
    assert "secret" not in spec.redacted
    assert spec.redacted == "rtsp://***@cam.local:554/stream"
