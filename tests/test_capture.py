"""Real GStreamer pipelines: test sources and generated files into numpy."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.capture import GstCapture, parse_source
from edge.capture.frames import AudioChunk, VideoFrame
from edge.errors import SourceError
from tests.conftest import make_clip


def _drain(cap: GstCapture, seconds: float) -> tuple[list[VideoFrame], list[AudioChunk]]:
    frames: list[VideoFrame] = []
    chunks: list[AudioChunk] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = cap.video.get(timeout=0.05)
        if frame is not None:
            frames.append(frame)
        while (chunk := cap.audio.get_nowait()) is not None:
            chunks.append(chunk)
        if cap.eos.is_set() and cap.video.qsize() == 0 and cap.audio.qsize() == 0:
            break
    return frames, chunks


def test_test_source_delivers_rgb_frames_and_16k_mono_audio() -> None:
    with GstCapture(parse_source("test:?pattern=smpte"), width=320, fps=10) as cap:
        frames, chunks = _drain(cap, 2.0)
    assert cap.error is None
    assert 12 <= len(frames) <= 22  # about 10 fps for 2 s
    assert all(f.rgb.shape == (240, 320, 3) and f.rgb.dtype == np.uint8 for f in frames)
    pts = [f.pts_s for f in frames]
    assert pts == sorted(pts)
    assert np.median(np.diff(pts)) == pytest.approx(0.1, abs=0.02)
    assert chunks and all(c.rate == 16_000 and c.samples.dtype == np.float32 for c in chunks)
    total = sum(c.samples.shape[0] for c in chunks)
    assert total == pytest.approx(16_000 * (chunks[-1].end_s - chunks[0].pts_s), rel=0.02)
    # a 440 Hz sine: the strongest frequency of the captured audio
    audio = np.concatenate([c.samples for c in chunks])[:16_000]
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.argmax(spectrum) * 16_000 / audio.shape[0] == pytest.approx(440, abs=3)


def test_frame_rows_keep_their_layout_when_the_width_is_not_stride_aligned() -> None:
    # 324 px * 3 bytes is not a multiple of 4: GStreamer pads each row, capture must undo it
    with GstCapture(parse_source("test:?pattern=smpte&audio=0"), width=324, fps=5) as cap:
        frames, _ = _drain(cap, 1.0)
    frame = frames[-1].rgb
    assert frame.shape[1] == 324
    # SMPTE bars: the top-left bar is light grey/white-ish, the bars are vertical (columns constant)
    assert np.abs(frame[10].astype(int) - frame[60].astype(int)).max() <= 2


def test_file_source_is_read_completely_with_both_streams(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mkv", seconds=3.0)
    with GstCapture(parse_source(clip.as_uri()), width=320, fps=10, video_queue=2, audio_queue=8) as cap:
        frames, chunks = _drain(cap, 30.0)
    assert cap.error is None
    assert cap.eos.is_set()
    assert cap.video.dropped == 0 and cap.audio.dropped == 0  # files wait for analysis
    assert 28 <= len(frames) <= 31
    audio_s = sum(c.samples.shape[0] for c in chunks) / 16_000
    assert audio_s == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize(
    ("chroma", "decoder"),
    [
        ("I420", "openh264dec"),  # 4:2:0, what cameras send: OpenH264
        ("Y444", "avdec_h264"),  # a 4:4:4 profile OpenH264 does not take: FFmpeg's decoder still does it
    ],
)
def test_h264_goes_to_openh264_where_it_takes_the_stream(tmp_path: Path, chroma: str, decoder: str) -> None:
    """The CPU path ranks OpenH264 above FFmpeg's decoder (edge.capture.plan); decodebin builds it for
    a stream its pads accept and FFmpeg's for the rest; the frames come through whole either way."""
    from edge.capture.pipeline import installed

    if not installed("openh264dec"):
        pytest.skip("OpenH264's GStreamer decoder is not installed (gstreamer1.0-plugins-bad with libopenh264)")
    clip = make_clip(tmp_path / "clip.mkv", seconds=2.0, audio=False, chroma=chroma)
    with GstCapture(parse_source(clip.as_uri()), width=320, fps=10) as cap:
        frames, _ = _drain(cap, 30.0)
        decoders = {
            e.get_factory().get_name()
            for e in _elements(cap._pipeline)
            if e.get_factory() is not None and {"Decoder", "Video"} <= set(e.get_factory().get_klass().split("/"))
        }
    assert cap.error is None and 18 <= len(frames) <= 21
    assert decoders == {decoder}
    assert all(f.rgb.shape == (240, 320, 3) and f.rgb.std() > 10 for f in frames)  # pictures, not blanks


def _elements(bin_: Any) -> list[Any]:
    """Every element inside ``bin_``, nested bins included."""
    out: list[Any] = []
    iterator = bin_.iterate_recurse()
    while True:
        ok, element = iterator.next()
        if ok != 1:  # Gst.IteratorResult.OK
            return out
        out.append(element)


def test_file_without_audio_gives_video_only(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "video.mkv", seconds=2.0, audio=False)
    with GstCapture(parse_source(clip.as_uri()), width=320, fps=10) as cap:
        frames, chunks = _drain(cap, 30.0)
    assert frames and not chunks
    assert not cap.has_audio


def test_corrupt_file_is_reported(tmp_path: Path) -> None:
    clip = tmp_path / "broken.mkv"
    clip.write_bytes(b"\x1aE\xdf\xa3" + b"\x00" * 4096)
    cap = GstCapture(parse_source(clip.as_uri()), width=320, fps=10)
    try:
        cap.start(timeout_s=5)
    except SourceError as exc:  # refused at start ...
        message = str(exc)
    else:  # ... or reported on the bus while running
        _drain(cap, 5.0)
        message = cap.error or ""
    finally:
        cap.stop()
    assert "could not determine type of stream" in message.lower(), message
