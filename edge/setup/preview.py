"""The technician's live preview: the room's own capture, a few pictures a second, with the faces
found, the client region and the checks judged over the last seconds.

Pictures are kept in memory as one JPEG (the newest) for the technician's browser and never
written; audio stays as the last seconds of samples for the microphone checks. The preview holds
the devices only while the page asks for it (:class:`edge.capture.claim.PreviewHold`): a session
that starts takes them at once, and after ``setup.idle_minutes`` without a request the preview
stops by itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.calibration.checks import judge, verdict
from edge.calibration.intrinsics import MIN_VIEWS, find_corners, solve
from edge.calibration.measure import FrameStats, Measurements, measure_frame
from edge.capture.claim import PreviewHold
from edge.capture.pipeline import GstCapture
from edge.capture.source import SourceSpec
from edge.config.models import AppConfig
from edge.config.profile import CheckResult, Intrinsics, Region
from edge.vision.detect import FaceDetection, FaceDetector
from edge.vision.skin import SkinSampler

logger = logging.getLogger(__name__)

SESSION_REASON = "a session started: the preview ended so that the room has its camera and microphone"
BUSY_REASON = "a session is recording: the preview waits until the room is back in standby"
IDLE_REASON = "stopped: the page asked for nothing for a while (reload to start again)"
JPEG_QUALITY = 70
MESH_STEP = 3
MAX_BOARD_VIEWS = 40  # every third of the mesh's 468 points is drawn


@dataclass
class Face:
    """A face in the picture, in fractions of the frame."""

    x: float
    y: float
    w: float
    h: float
    analysed: bool  # the one the room would analyse: the largest whose centre is in the client region
    mesh: list[tuple[float, float]] = field(default_factory=list)  # its face mesh's points (every MESH_STEP-th)


@dataclass
class Enrolment:
    """A staff voice recorded from the page: its id, consent, the sound so far (memory only) and how
    it ended."""

    staff_id: str
    consent: str
    seconds: float
    started: float
    audio: list[npt.NDArray[np.float32]] = field(default_factory=list)
    status: str = "recording"  # recording | enrolling | stored | refused
    detail: str = ""

    def recorded_s(self, now: float) -> float:
        return min(self.seconds, now - self.started)


@dataclass
class Snapshot:
    """What the page shows: the state, the newest picture's faces, the checks and the verdict."""

    running: bool
    reason: str
    frames: int
    faces: list[Face]
    region: Region
    suggested: Region | None
    checks: list[CheckResult]
    ready: bool
    verdict: str
    gain_db: float
    frame_size: tuple[int, int]
    level_dbfs: float | None  # the microphone's level over the last moment
    enrolment: dict[str, Any] | None
    board: dict[str, Any] | None  # the checkerboard's views collected, when one is asked for


@dataclass
class _Recent:
    """The last seconds of the measurement."""

    window_s: float
    frames: deque[tuple[float, FrameStats, list[Face]]] = field(default_factory=deque)
    audio: deque[tuple[float, npt.NDArray[np.float32]]] = field(default_factory=deque)

    def trim(self, now: float) -> None:
        while self.frames and self.frames[0][0] < now - self.window_s:
            self.frames.popleft()
        while self.audio and self.audio[0][0] < now - self.window_s:
            self.audio.popleft()


def faces_of(detections: list[FaceDetection], region: Region, width: int, height: int) -> list[Face]:
    inside = [d for d in detections if region.contains(*d.center, width, height)]
    analysed = max(inside, key=lambda d: d.w * d.h) if inside else None
    return [Face(d.x / width, d.y / height, d.w / width, d.h / height, d is analysed) for d in detections]


def suggest(faces: list[list[Face]]) -> Region | None:
    """A client region around where the largest face was over the measurement, with half a face's
    width to spare on each side (for the technician to accept or adjust)."""
    largest = [max(f, key=lambda face: face.w * face.h) for f in faces if f]
    if not largest:
        return None
    x0 = min(f.x for f in largest)
    y0 = min(f.y for f in largest)
    x1 = max(f.x + f.w for f in largest)
    y1 = max(f.y + f.h for f in largest)
    pad = 0.5 * float(np.median([f.w for f in largest]))
    x0, y0, x1, y1 = max(0.0, x0 - pad), max(0.0, y0 - pad), min(1.0, x1 + pad), min(1.0, y1 + pad)
    return Region(x=round(x0, 3), y=round(y0, 3), w=round(x1 - x0, 3), h=round(y1 - y0, 3))


class Preview:
    """The preview's thread and what it keeps (the newest JPEG, the last seconds' numbers)."""

    def __init__(self, config: AppConfig, spec: SourceSpec, region: Region) -> None:
        self.config = config
        self.spec = spec
        self._lock = threading.Lock()
        self._region = region
        self._jpeg: bytes | None = None
        self._faces: list[Face] = []
        self._frames = 0
        self._recent = _Recent(config.setup.window_s)
        self._size = (0, 0)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_request = time.monotonic()
        self.reason = "starting"
        self.hold = PreviewHold(config.storage.state_dir)
        self._enrolment: Enrolment | None = None
        self._board: tuple[int, int, float] | None = None  # inner corners (columns, rows), square size in mm
        self._board_views: list[npt.NDArray[np.uint8]] = []  # frames showing the whole board (memory only)
        self._level: float | None = None

    # -- what the page calls --------------------------------------------------------------------
    def touch(self) -> None:
        """A request from the page: keep the preview going, and start it when it may."""
        with self._lock:
            self._last_request = time.monotonic()
            alive = self._thread is not None and self._thread.is_alive()
        if not alive:
            self.start()

    def start(self) -> bool:
        if not self.hold.take():
            if self.reason != SESSION_REASON:  # the page says first why the preview it had ended
                self.reason = BUSY_REASON
            return False
        self._stop.clear()
        self.reason = "running"
        self._thread = threading.Thread(target=self._run, name="setup-preview", daemon=True)
        self._thread.start()
        return True

    def stop(self, reason: str = "stopped") -> None:
        self.reason = reason
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def jpeg(self) -> bytes | None:
        with self._lock:
            return self._jpeg if self.running else None

    def set_region(self, region: Region) -> None:
        """The checks judge the drawn region from now on (the last seconds are judged again)."""
        with self._lock:
            self._region = region
            self._recent.frames.clear()

    def record_voice(self, staff_id: str, consent: str, seconds: float) -> None:
        """Record a staff member reading aloud for ``seconds`` from the room's microphone, then store
        the voice's embedding (never the recording), as ``clinic-edge staff-voice enroll`` does."""
        with self._lock:
            self._enrolment = Enrolment(staff_id, consent, seconds, time.monotonic())

    def set_board(self, cols: int, rows: int, square_mm: float) -> None:
        """Collect views of a printed checkerboard (for a wide lens) from now on."""
        with self._lock:
            self._board = (cols, rows, square_mm)
            self._board_views = []

    def lens(self) -> Intrinsics | None:
        """The lens solved from the views collected, once there are enough (None before, or without
        a checkerboard); the views are forgotten once solved.

        Raises:
            IntrinsicsError: the views do not give a lens.
        """
        with self._lock:
            board, views = self._board, list(self._board_views)
        if board is None or len(views) < MIN_VIEWS:
            return None
        solved = solve(views, board[:2], board[2])
        with self._lock:
            self._board_views = []
        return solved

    def _board_state(self) -> dict[str, Any] | None:
        with self._lock:
            if self._board is None:
                return None
            return {
                "pattern": f"{self._board[0]}x{self._board[1]}",
                "views": len(self._board_views),
                "needed": MIN_VIEWS,
            }

    def enrol_recording(self, staff_id: str, consent: str, wav: bytes) -> tuple[str, str]:
        """Enrol from an uploaded WAV file's bytes, read in memory; ("stored" or "refused", why)."""
        import io  # noqa: PLC0415

        from edge.speakers.staff import EnrolmentError, read_wav  # noqa: PLC0415

        try:
            audio = read_wav(io.BytesIO(wav))
        except (EnrolmentError, OSError, EOFError) as exc:
            return "refused", str(exc)
        enrolment = Enrolment(staff_id, consent, 0.0, time.monotonic(), [audio], status="enrolling")
        self._enrol(enrolment)
        with self._lock:
            self._enrolment = enrolment  # the page shows the newest enrolment, whichever way it came
        return enrolment.status, enrolment.detail

    def _enrol(self, enrolment: Enrolment) -> None:
        from edge.errors import EdgeError  # noqa: PLC0415
        from edge.speakers.cli import speaker_encoder, staff_voices  # noqa: PLC0415

        audio = np.concatenate(enrolment.audio) if enrolment.audio else np.zeros(0, np.float32)
        enrolment.audio.clear()  # the recording is forgotten whatever happens next
        try:
            encoder = speaker_encoder(self.config)
            try:
                voice = staff_voices(self.config).enroll(
                    enrolment.staff_id, enrolment.consent, audio, encoder, self.config.audio
                )
            finally:
                encoder.engine.close()
        except EdgeError as exc:
            enrolment.status, enrolment.detail = "refused", str(exc)
            return
        enrolment.status, enrolment.detail = "stored", f"{voice.speech_s:.0f} s of speech; only its embedding is kept"

    @property
    def region(self) -> Region:
        with self._lock:
            return self._region

    def measurements(self) -> Measurements:
        """The last seconds as the calibration's measurements (numbers only)."""
        return self._measured()[0]

    def photo(self) -> npt.NDArray[np.uint8] | None:
        """The newest picture (the browser's size), decoded from memory, for a report that asks for it."""
        jpeg = self.jpeg()
        if jpeg is None:
            return None
        bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        return None if bgr is None else np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), np.uint8)

    def _measured(self) -> tuple[Measurements, list[list[Face]], Region, list[Face], int, tuple[int, int]]:
        with self._lock:
            frames = [stats for _, stats, _ in self._recent.frames]
            seen = [faces for _, _, faces in self._recent.frames]
            audio = [a for _, a in self._recent.audio]
            span = self._recent.frames[-1][0] - self._recent.frames[0][0] if len(self._recent.frames) > 1 else 0.0
            region, faces, count, size = self._region, list(self._faces), self._frames, self._size
        m = Measurements(
            frames=frames,
            audio=np.concatenate(audio) if audio else np.zeros(0, np.float32),
            has_audio=bool(audio),
            duration_s=span + 1 / self.config.setup.preview_fps if frames else 0.0,
            configured_fps=max(1, round(self.config.setup.preview_fps)),
            frame_size=size,
            preview_has_face=any(any(f.analysed for f in faces) for faces in seen),
        )
        return m, seen, region, faces, count, size

    def snapshot(self) -> Snapshot:
        m, seen, region, faces, count, size = self._measured()
        frames = m.frames
        checks, gain = judge(m) if frames else ([], 0.0)
        result = verdict(checks)
        return Snapshot(
            running=self.running,
            reason=self.reason,
            frames=count,
            faces=faces,
            region=region,
            suggested=suggest(seen),
            checks=checks,
            ready=bool(checks) and result.ready,
            verdict=result.text if checks else "waiting for pictures",
            gain_db=round(gain, 1),
            frame_size=size,
            level_dbfs=self._level,
            enrolment=self._enrolment_state(),
            board=self._board_state(),
        )

    def _enrolment_state(self) -> dict[str, Any] | None:
        e = self._enrolment
        if e is None:
            return None
        return {
            "staff_id": e.staff_id,
            "status": e.status,
            "recorded_s": round(e.recorded_s(time.monotonic()), 1),
            "seconds": e.seconds,
            "detail": e.detail,
        }

    # -- the thread -----------------------------------------------------------------------------
    def _idle(self) -> bool:
        with self._lock:
            return time.monotonic() - self._last_request > self.config.setup.idle_minutes * 60

    def _run(self) -> None:
        setup = self.config.setup
        capture_config = self.config.capture.model_copy(update={"analysis_fps": max(1, round(setup.preview_fps))})
        detector = FaceDetector(self.config.vision.detector_range, self.config.vision.min_detection_confidence)
        mesh = SkinSampler()
        try:
            with GstCapture.from_config(self.spec, capture_config, realtime_files=True) as capture:
                while not self._stop.is_set():
                    if self.hold.wanted():
                        self.reason = SESSION_REASON
                        logger.info("setup preview ended: a session starts")
                        return
                    if self._idle():
                        self.reason = IDLE_REASON
                        return
                    while (chunk := capture.audio.get_nowait()) is not None:
                        self._sound(chunk.samples)
                    frame = capture.video.get(timeout=0.1)
                    if frame is not None:
                        self._picture(frame.rgb, detector, mesh)
                    if capture.error is not None:
                        self.reason = f"the source failed: {capture.error}"
                        return
                    if capture.eos.is_set() and capture.video.qsize() == 0:
                        self.reason = "the source ended"
                        return
        except Exception as exc:  # the page shows why the preview stopped
            logger.exception("setup preview failed")
            self.reason = f"the preview failed: {exc}"
        finally:
            detector.close()
            mesh.close()
            self.hold.release()

    def _sound(self, samples: npt.NDArray[np.float32]) -> None:
        now = time.monotonic()
        rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
        done = None
        with self._lock:
            self._recent.audio.append((now, samples))
            self._level = round(20 * float(np.log10(max(rms, 1e-6))), 1)
            e = self._enrolment
            if e is not None and e.status == "recording":
                e.audio.append(samples.copy())
                if now - e.started >= e.seconds:
                    e.status, done = "enrolling", e
        if done is not None:
            threading.Thread(target=self._enrol, args=(done,), name="setup-enrol", daemon=True).start()

    def _picture(self, rgb: npt.NDArray[np.uint8], detector: FaceDetector, mesh: SkinSampler) -> None:
        h, w = rgb.shape[:2]
        detections = detector.detect(rgb)
        region = self.region
        stats = measure_frame(rgb, detector, region, detections)
        faces = faces_of(detections, region, w, h)
        analysed = next((f for f in faces if f.analysed), None)
        points = mesh.landmarks(rgb) if analysed is not None else None
        if analysed is not None and points is not None:
            cx, cy = points.mean(axis=0) / (w, h)
            if analysed.x <= cx <= analysed.x + analysed.w and analysed.y <= cy <= analysed.y + analysed.h:
                analysed.mesh = [(round(float(x) / w, 4), round(float(y) / h, 4)) for x, y in points[::MESH_STEP]]
        width = self.config.setup.preview_width
        small = cv2.resize(rgb, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
        ok, encoded = cv2.imencode(
            ".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        )
        now = time.monotonic()
        with self._lock:
            board, views = self._board, len(self._board_views)
        wanted = board is not None and views < MAX_BOARD_VIEWS and self._frames % 2 == 0  # neighbours add little
        if wanted and board is not None and find_corners(rgb, board[:2]) is not None:
            with self._lock:
                self._board_views.append(rgb.copy())
        with self._lock:
            if ok:
                self._jpeg = encoded.tobytes()
            self._faces = faces
            self._frames += 1
            self._size = (w, h)
            self._recent.frames.append((now, stats, faces))
            self._recent.trim(now)

    def as_json(self) -> dict[str, Any]:
        s = self.snapshot()
        return {
            "running": s.running,
            "reason": s.reason,
            "frames": s.frames,
            "faces": [vars(f) for f in s.faces],
            "region": s.region.model_dump(),
            "suggested": s.suggested.model_dump() if s.suggested is not None else None,
            "checks": [c.model_dump() for c in s.checks],
            "ready": s.ready,
            "verdict": s.verdict,
            "gain_db": s.gain_db,
            "frame_size": list(s.frame_size),
            "level_dbfs": s.level_dbfs,
            "enrolment": s.enrolment,
            "board": s.board,
        }
