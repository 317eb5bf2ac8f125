"""Source URIs and the GStreamer description of their demuxing/decoding part."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlparse

from edge.errors import SourceError

SourceKind = Literal["v4l2", "csi", "file", "rtsp", "test"]

_TEST_PATTERNS = {"smpte", "ball", "snow", "black", "white", "gradient", "pinwheel", "circular"}
MAX_CSI_SENSOR = 7  # Jetson carrier boards have at most a handful of CSI ports
_TEST_WAVES = {"sine", "square", "saw", "triangle", "silence", "white-noise", "pink-noise", "ticks"}


@dataclass(frozen=True)
class SourceSpec:
    """A parsed source URI.

    ``live`` sources (cameras, RTSP, test) run at their own pace: when analysis falls behind, frames
    are dropped and counted. Files are read as fast as analysis allows, and nothing is dropped.
    """

    kind: SourceKind
    uri: str
    live: bool
    device: str | None = None  # v4l2 device node
    path: Path | None = None  # file
    pattern: str = "ball"  # test video pattern
    wave: str = "sine"  # test audio wave
    freq_hz: float = 440.0  # test audio frequency
    audio: bool = True  # test: produce audio
    sensor_id: int = 0  # csi: the Argus sensor

    @property
    def redacted(self) -> str:
        """The URI without credentials, for logs and the database."""
        parsed = urlparse(self.uri)
        if parsed.password or parsed.username:
            host = parsed.hostname or ""
            port = f":{parsed.port}" if parsed.port else ""
            return parsed._replace(netloc=f"***@{host}{port}").geturl()
        return self.uri


def parse_source(uri: str) -> SourceSpec:
    """Parse and check a source URI before any pipeline is built.

    Raises:
        SourceError: unknown scheme, missing camera device or file, or bad test parameters.
    """
    if uri.startswith("test:"):
        return _parse_test(uri)
    parsed = urlparse(uri)
    if parsed.scheme == "v4l2":
        device = unquote(parsed.path) or "/dev/video0"
        if not Path(device).exists():
            raise SourceError(f"camera {device} not found (source {uri!r}); check the cable and `ls /dev/video*`")
        if not os.access(device, os.R_OK | os.W_OK):
            raise SourceError(f"camera {device} exists but is not accessible; is the user in group 'video'?")
        return SourceSpec("v4l2", uri, live=True, device=device)
    if parsed.scheme == "csi":
        sensor = parsed.netloc or "0"
        if not sensor.isdigit() or int(sensor) > MAX_CSI_SENSOR:
            raise SourceError(f"CSI source {uri!r}: expected csi://<sensor id 0-{MAX_CSI_SENSOR}>, e.g. csi://0")
        return SourceSpec("csi", f"csi://{int(sensor)}", live=True, sensor_id=int(sensor))
    if parsed.scheme == "file":
        path = Path(unquote(parsed.path))
        if not path.is_file():
            raise SourceError(f"source file not found: {path} (from {uri!r})")
        return SourceSpec("file", path.resolve().as_uri(), live=False, path=path.resolve())
    if parsed.scheme in ("rtsp", "rtsps"):
        if not parsed.hostname:
            raise SourceError(f"RTSP source {uri!r} has no host")
        return SourceSpec("rtsp", uri, live=True)
    raise SourceError(
        f"unsupported source {uri!r}: expected v4l2:///dev/videoN, csi://N (a Jetson's CSI camera), file:///path, "
        "rtsp://host/path or test:"
    )


def _parse_test(uri: str) -> SourceSpec:
    query = parse_qs(uri.removeprefix("test:").lstrip("?"), keep_blank_values=True)
    pattern = query.get("pattern", ["ball"])[-1]
    wave = query.get("wave", ["sine"])[-1]
    if pattern not in _TEST_PATTERNS:
        raise SourceError(f"test source pattern {pattern!r} is not one of {sorted(_TEST_PATTERNS)}")
    if wave not in _TEST_WAVES:
        raise SourceError(f"test source wave {wave!r} is not one of {sorted(_TEST_WAVES)}")
    try:
        freq = float(query.get("freq", ["440"])[-1])
    except ValueError:
        raise SourceError(f"test source freq must be a number, got {query['freq'][-1]!r}") from None
    audio = query.get("audio", ["1"])[-1] not in ("0", "false", "no")
    return SourceSpec("test", uri, live=True, pattern=pattern, wave=wave, freq_hz=freq, audio=audio)
