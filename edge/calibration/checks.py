"""Judge measurements: each check gives pass/warn/fail with its number, its threshold and an action.

Thresholds follow what the models need: the face model sees a 64x64 crop, so a face narrower
than 64 px is up-sampled and loses detail (96 px or more is comfortable); expression models are
trained on lit, frontal, sharp faces; voice analysis needs speech well above the room's noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from edge.calibration.measure import FrameStats, Measurements
from edge.config.profile import CheckResult

FRAME_S = 0.030
DEAD_PEAK = 1e-5  # -100 dBFS: below any live microphone's own noise
GATED_FLOOR = -100.0  # dBFS: pauses this quiet are digital silence (a noise gate, a muted or synthetic input)


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.median(present)) if present else None


def _grade(value: float, pass_if: Callable[[float], bool], warn_if: Callable[[float], bool]) -> str:
    return "pass" if pass_if(value) else "warn" if warn_if(value) else "fail"


def _check(name: str, status: str, value: float | None, unit: str, threshold: str, action: str) -> CheckResult:
    return CheckResult(
        name=name,
        status=status,  # type: ignore[arg-type]
        value=None if value is None else round(value, 3),
        unit=unit,
        threshold=threshold,
        action="" if status == "pass" else action,
    )


@dataclass(frozen=True)
class VideoCheck:
    """One row of the video checks: what it measures, on which frames, and how it is judged.

    ``scope`` says what ``measure`` reads: ``face`` the frames with a face in the client region
    (skipped when there is none), ``frames`` every frame; both get the whole measurement too.
    """

    name: str
    scope: Literal["face", "frames"]
    measure: Callable[[Sequence[FrameStats], Measurements], float]
    pass_if: Callable[[float, Measurements], bool]
    warn_if: Callable[[float, Measurements], bool]
    unit: str
    threshold: Callable[[Measurements], str]
    action: Callable[[float, Sequence[FrameStats]], str]
    shown: Callable[[float], float] = lambda v: v  # the value as reported (a share as a percentage)


def _med(read: Callable[[FrameStats], float | None]) -> Callable[[Sequence[FrameStats], Measurements], float]:
    return lambda frames, _m: _median([read(f) for f in frames]) or 0.0


def _turn(frames: Sequence[FrameStats]) -> str:
    dx = _median([f.centre_dx for f in frames]) or 0.0
    dy = _median([f.centre_dy for f in frames]) or 0.0
    return ("right" if dx > 0 else "left") if abs(dx) >= abs(dy) else ("down" if dy > 0 else "up")


def _side(frames: Sequence[FrameStats]) -> str:
    """Where the face sits from the region's centre (the side the region should grow to)."""
    return _turn(frames)


def _fixed(text: str) -> Callable[[Measurements], str]:
    return lambda _m: text


def _always(text: str) -> Callable[[float, Sequence[FrameStats]], str]:
    return lambda _v, _f: text


VIDEO_CHECKS: tuple[VideoCheck, ...] = (
    VideoCheck(
        "face_size",
        "face",
        _med(lambda f: f.face_width_px),
        lambda v, _m: v >= 96,
        lambda v, _m: v >= 64,
        "px",
        _fixed("face at least 96 px wide (the model sees 64 px)"),
        lambda v, _f: f"move the camera closer or zoom in: the face must appear {96 / v if v else 0.0:.1f}x larger",
    ),
    VideoCheck(
        "face_inside",
        "face",
        _med(lambda f: f.edge_margin),
        lambda v, _m: v >= 0.25,
        lambda v, _m: v >= 0.0,
        "face widths",
        _fixed("the whole face inside the client region, a quarter face width from its edges"),
        lambda v, frames: (
            f"the face is cut by the region's edge: widen the region to the {_side(frames)} or turn the camera "
            f"a little {_side(frames)}"
            if v < 0
            else f"the face is close to the region's edge: widen the region a little to the {_side(frames)}"
        ),
    ),
    VideoCheck(
        "head_pose",
        "face",
        lambda frames, _m: abs(_median([f.yaw_ratio for f in frames]) or 0.0),
        lambda v, _m: v <= 0.25,
        lambda v, _m: v <= 0.45,
        "eye widths",
        _fixed("nose within a quarter eye-width of the eyes' midpoint (a frontal view)"),
        _always("mount the camera nearer the client's line of sight (beside the therapist's head)"),
    ),
    VideoCheck(
        "exposure",
        "face",
        _med(lambda f: f.face_luma),
        lambda v, _m: 70 <= v <= 190,
        lambda v, _m: 50 <= v <= 215,
        "grey level",
        _fixed("face brightness 70-190 of 255"),
        lambda v, _f: (
            "add light on the client's face or raise the camera's exposure"
            if v < 70
            else "lower the camera's exposure or soften the light on the face"
        ),
    ),
    VideoCheck(
        "backlight",
        "face",
        lambda frames, _m: (
            (_median([f.background_luma for f in frames]) or 0.0) - (_median([f.face_luma for f in frames]) or 0.0)
        ),
        lambda v, _m: v <= 40,
        lambda v, _m: v <= 70,
        "grey levels",
        _fixed("background at most 40 levels brighter than the face"),
        _always("close the blinds behind the chair or light the client's face from the front"),
    ),
    VideoCheck(
        "contrast",
        "face",
        _med(lambda f: f.face_contrast),
        lambda v, _m: v >= 25,
        lambda v, _m: v >= 15,
        "grey levels",
        _fixed("face contrast (standard deviation) at least 25"),
        _always("add directional light; avoid flat or hazy light"),
    ),
    VideoCheck(
        "sharpness",
        "face",
        _med(lambda f: f.sharpness),
        lambda v, _m: v >= 100,
        lambda v, _m: v >= 40,
        "Laplacian var",
        _fixed("variance of the Laplacian on the face at least 100"),
        _always("focus the camera on the chair and clean the lens"),
    ),
    VideoCheck(
        "highlights",
        "frames",
        lambda frames, _m: float(np.median([f.highlights for f in frames])) * 100,
        lambda v, _m: v <= 2,
        lambda v, _m: v <= 8,
        "% clipped",
        _fixed("at most 2 % of the picture burnt out"),
        _always("close the blinds or lower the exposure"),
    ),
    VideoCheck(
        "shadows",
        "frames",
        lambda frames, _m: float(np.median([f.shadows for f in frames])) * 100,
        lambda v, _m: v <= 5,
        lambda v, _m: v <= 15,
        "% black",
        _fixed("at most 5 % of the picture crushed to black"),
        _always("add light to the room or raise the exposure"),
    ),
    VideoCheck(
        "noise",
        "frames",
        lambda frames, _m: float(np.median([f.noise_sigma for f in frames])),
        lambda v, _m: v <= 4,
        lambda v, _m: v <= 8,
        "grey levels",
        _fixed("picture noise at most 4 grey levels"),
        _always("add light: in the dark the camera raises its gain and the picture grains"),
    ),
    VideoCheck(
        "frame_rate",
        "frames",
        lambda frames, m: len(frames) / m.duration_s if m.duration_s else 0.0,
        lambda v, m: v >= 0.9 * m.configured_fps,
        lambda v, m: v >= 0.6 * m.configured_fps,
        "fps",
        lambda m: f"at least 90 % of the configured {m.configured_fps} fps",
        _always("use a camera mode with more frames per second, more light, or a lower analysis_fps"),
    ),
    VideoCheck(
        "dropped_frames",
        "frames",
        lambda frames, m: m.frames_dropped / max(1, len(frames) + m.frames_dropped) * 100,
        lambda v, _m: v == 0,
        lambda v, _m: v <= 5,
        "%",
        _fixed("no frames dropped"),
        _always("the box is too slow for this rate: lower analysis_fps or the frame width"),
    ),
)


def _video(m: Measurements) -> list[CheckResult]:
    frames: list[FrameStats] = m.frames
    if not frames:
        return [_check("video", "fail", None, "", "frames arrive", "check the camera's cable and the source URI")]
    found = sum(f.faces_in_region > 0 for f in frames) / len(frames)
    checks = [
        _check(
            "face_found",
            _grade(found, lambda v: v >= 0.8, lambda v: v >= 0.5),
            found * 100,
            "%",
            ">= 80 % of frames show a face in the client region",
            "point the camera at the client's chair, or correct the client region"
            if found < 0.5
            else "the face is lost in many frames: check framing and light",
        )
    ]
    with_face = [f for f in frames if f.faces_in_region]
    for row in VIDEO_CHECKS:
        seen = with_face if row.scope == "face" else frames
        if not seen:
            checks.append(_check(row.name, "skip", None, "", "needs a face", ""))
            continue
        value = row.measure(seen, m)
        status = "pass" if row.pass_if(value, m) else "warn" if row.warn_if(value, m) else "fail"
        checks.append(_check(row.name, status, row.shown(value), row.unit, row.threshold(m), row.action(value, seen)))
    return checks


def _levels(signal: npt.NDArray[np.float32], rate: int) -> npt.NDArray[np.float64]:
    n = int(FRAME_S * rate)
    frames = signal[: signal.shape[0] // n * n].reshape(-1, n).astype(np.float64)
    return np.asarray(10 * np.log10(np.maximum((frames**2).mean(axis=1), 1e-12)))


def _audio(m: Measurements) -> tuple[list[CheckResult], float]:
    if not m.has_audio or m.audio.shape[0] < m.audio_rate:
        return [
            _check(
                "audio",
                "fail",
                None,
                "",
                "the microphone delivers sound",
                "check the microphone's cable and capture.microphone",
            )
        ], 0.0
    peak = float(np.max(np.abs(m.audio)))
    if peak <= DEAD_PEAK:  # digital silence: every live microphone hears at least its own noise
        return [
            _check(
                "mic_signal",
                "fail",
                20 * np.log10(max(peak, 1e-12)),
                "dBFS",
                "some sound on the input, at least the room's own noise",
                "the input is muted, unplugged or the wrong device: check the microphone's mute switch, its "
                "cable and capture.microphone",
            )
        ], 0.0
    levels = _levels(m.audio, m.audio_rate)
    floor, voice = float(np.percentile(levels, 10)), float(np.percentile(levels, 95))
    clipped = float((np.abs(m.audio) >= 0.999).mean()) * 100
    gain = 0.0 if -30 <= voice <= -10 else float(np.clip(-20 - voice, -40, 40))
    checks = [
        _check(
            "mic_level",
            _grade(voice, lambda v: -30 <= v <= -10, lambda v: -40 <= v <= -6),
            voice,
            "dBFS",
            "speech peaks between -30 and -10 dBFS",
            f"{'raise' if gain > 0 else 'lower'} the microphone gain by about {abs(gain):.0f} dB",
        ),
        _check(
            "noise_floor",
            "warn" if floor <= GATED_FLOOR else _grade(floor, lambda v: v <= -55, lambda v: v <= -45),
            floor,
            "dBFS",
            "room noise between -100 and -55 dBFS (a live microphone always hears the room)",
            "the pauses are digital silence: switch off the microphone's noise gate or 'noise suppression', "
            "or check it is a live microphone and not a muted or looped input"
            if floor <= GATED_FLOOR
            else "find and quieten the noise source (fan, air conditioning, traffic)",
        ),
        _check(
            "clipping",
            _grade(clipped, lambda v: v <= 0.01, lambda v: v <= 0.1),
            clipped,
            "% samples",
            "at most 0.01 % of samples at full scale",
            "lower the microphone gain by 6 dB",
        ),
        _check(
            "speech_to_noise",
            _grade(voice - floor, lambda v: v >= 20, lambda v: v >= 12),
            voice - floor,
            "dB",
            "speech at least 20 dB above the room's noise (speak normally during the check)",
            "move the microphone nearer the chair or reduce the room's noise",
        ),
    ]
    return checks, gain


def av_offset(m: Measurements) -> float | None:
    """Audio minus video time of a clap (or a hand passing the lens): a brief jump in picture
    brightness that is over within 0.6 s, against the sharpest rise in sound energy within 1 s of
    it. None without such a pair (a scene cut or a voice starting is not a clap)."""
    if len(m.frame_luma) < 3 or m.audio.shape[0] < m.audio_rate:
        return None
    luma = np.asarray(m.frame_luma)
    jumps = np.abs(np.diff(luma))
    pts = np.asarray(m.frame_pts)
    floor = max(8.0, 6 * float(np.median(jumps)))
    for v in np.argsort(jumps)[::-1][:5]:  # the biggest jumps first
        if jumps[v] < floor:
            return None
        after = (pts > pts[v + 1]) & (pts <= pts[v + 1] + 0.6)
        if not np.any(np.abs(luma[after] - luma[v]) < 0.3 * jumps[v]):
            continue  # the picture did not come back: a cut or a light switched, not a clap
        video_t = float(pts[v + 1])
        hop = m.audio_rate // 100  # 10 ms
        energy = m.audio[: m.audio.shape[0] // hop * hop].astype(np.float64).reshape(-1, hop)
        db = 10 * np.log10(np.maximum((energy**2).mean(axis=1), 1e-12))
        rise = db[1:] - db[:-1]
        times = m.audio_start_s + (np.arange(rise.shape[0]) + 1) * hop / m.audio_rate
        near = np.abs(times - video_t) <= 1.0
        if not np.any(near):
            continue
        a = int(np.argmax(np.where(near, rise, -np.inf)))
        if rise[a] >= 20:
            return float(times[a] - video_t)
    return None


def _sync(m: Measurements) -> CheckResult:
    offset = av_offset(m)
    if offset is None:
        return _check(
            "av_offset",
            "skip",
            None,
            "ms",
            "needs a clap in view during the check",
            "clap once, hands in front of the camera, to measure it",
        )
    ms = offset * 1000
    return _check(
        "av_offset",
        _grade(abs(ms), lambda v: v <= 80, lambda v: v <= 160),
        ms,
        "ms",
        "sound within 80 ms of the picture (a clap heard when it is seen)",
        f"sound arrives {abs(ms):.0f} ms {'after' if ms > 0 else 'before'} the picture: use the camera's built-in "
        "microphone or one on the same USB hub, or set the capture delay",
    )


def judge(m: Measurements) -> tuple[list[CheckResult], float]:
    """All checks (each with its result in the technician's words), and the suggested microphone
    gain change in dB (0 when none)."""
    audio, gain = _audio(m)
    sync = [_sync(m)] if m.has_audio else []
    return [c.model_copy(update={"plain": plain(c)}) for c in _video(m) + audio + sync], gain


@dataclass(frozen=True)
class Verdict:
    """Whether the room may go live: ready when no check fails (warnings are worth improving, not
    blocking). The same rule sets the CLI's exit code, ``--write`` and the setup page's verdict."""

    ready: bool
    fix: tuple[CheckResult, ...]  # the failed checks, in order
    improve: tuple[CheckResult, ...]  # the warnings

    @property
    def text(self) -> str:
        if not self.ready:
            return "fix these first: " + "; ".join(f"{c.plain or c.name}: {c.action}" for c in self.fix)
        if self.improve:
            return f"ready ({len(self.improve)} could be better: {', '.join(c.plain or c.name for c in self.improve)})"
        return "ready"


def verdict(checks: Sequence[CheckResult]) -> Verdict:
    return Verdict(
        ready=not any(c.status == "fail" for c in checks),
        fix=tuple(c for c in checks if c.status == "fail"),
        improve=tuple(c for c in checks if c.status == "warn"),
    )


# The result of each check in the technician's words, by status (a callable for words that need the number).
_WORDS: dict[str, dict[str, str | Callable[[float], str]]] = {
    "video": {"fail": "no picture"},
    "face_found": {"pass": "face found", "warn": "face often lost", "fail": "no face in the client region"},
    "face_size": {
        "pass": "face big enough",
        "warn": lambda v: f"face {96 / v if v else 0:.1f}x too small",
        "fail": lambda v: f"face {96 / v if v else 0:.1f}x too small",
    },
    "face_inside": {
        "pass": "face inside the region",
        "warn": "face near the region's edge",
        "fail": "face cut by the region's edge",
    },
    "head_pose": {"pass": "frontal view", "warn": "head turned a little", "fail": "head turned away"},
    "exposure": {
        "pass": "face well lit",
        "warn": lambda v: "face a little dark" if v < 70 else "face a little bright",
        "fail": lambda v: "face too dark" if v < 70 else "face too bright",
    },
    "backlight": {
        "pass": "no back-light",
        "warn": "some back-light",
        "fail": "back-lit: the background outshines the face",
    },
    "contrast": {"pass": "good contrast", "warn": "flat light", "fail": "very flat light"},
    "sharpness": {"pass": "sharp", "warn": "a little soft", "fail": "blurred"},
    "highlights": {"pass": "nothing burnt out", "warn": "some areas burnt out", "fail": "large areas burnt out"},
    "shadows": {"pass": "no crushed blacks", "warn": "some areas too dark", "fail": "large areas too dark"},
    "noise": {"pass": "clean picture", "warn": "grainy picture", "fail": "very grainy picture"},
    "frame_rate": {"pass": "smooth", "warn": "a few frames short", "fail": "too few frames"},
    "dropped_frames": {"pass": "no frames lost", "warn": "some frames lost", "fail": "many frames lost"},
    "audio": {"fail": "no sound"},
    "mic_signal": {"fail": "no sound at all: a muted or dead input"},
    "mic_level": {
        "pass": "speech level good",
        "warn": lambda v: "speech a little quiet" if v < -30 else "speech a little loud",
        "fail": lambda v: "speech too quiet" if v < -30 else "speech too loud",
    },
    "noise_floor": {
        "pass": "quiet room",
        "warn": lambda v: "digital silence between words" if v <= GATED_FLOOR else "some room noise",
        "fail": "noisy room",
    },
    "clipping": {"pass": "no distortion", "warn": "slight distortion", "fail": "distorted: the gain is too high"},
    "speech_to_noise": {
        "pass": "speech stands out",
        "warn": "speech close to the noise",
        "fail": "speech lost in noise",
    },
    "av_offset": {
        "pass": "sound in step with the picture",
        "warn": "sound a little out of step",
        "fail": "sound out of step with the picture",
        "skip": "not measured (clap once in view)",
    },
}


def plain(check: CheckResult) -> str:
    """``check``'s result in the technician's words ("sharp", "face 1.3x too small")."""
    words = _WORDS.get(check.name, {}).get(check.status)
    if words is None:
        return "not measured" if check.status == "skip" else check.status
    if callable(words):
        return words(check.value if check.value is not None else 0.0)
    return words
