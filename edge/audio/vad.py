"""Voice activity from the log-mel features: speech-band energy against an adaptive noise floor.

Each 10 ms feature frame's level is the energy of the mel bands centred in the speech band
(300-3400 Hz), so mains hum and low ventilation rumble do not count. A frame is voiced when that
level is above an absolute floor (``silence_dbfs``) *and* at least ``margin_db`` above the window's
noise floor (the 10th percentile of frame levels). Speech in a quiet room clears both; a steady
sound does not clear the relative test. This is a coarse channel-quality signal; the speech channel
brings a learned VAD for transcription.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from clinic_signals.audio import LogMel
from edge.config.models import AudioConfig

SPEECH_BAND_HZ = (300.0, 3400.0)


@dataclass(frozen=True, slots=True)
class VoiceActivity:
    voiced_ratio: float  # fraction of 10 ms feature frames judged voiced
    level_dbfs: float  # RMS level of the whole window
    noise_floor_dbfs: float
    clipped_ratio: float  # fraction of samples at or above 0.999 full scale
    voiced: npt.NDArray[np.bool_]  # per feature frame


def _dbfs(power: npt.NDArray[np.float64] | float) -> npt.NDArray[np.float64]:
    return np.asarray(10.0 * np.log10(np.maximum(power, 1e-12)))


def detect_voice(
    signal: npt.NDArray[np.float32],
    mel_db: npt.NDArray[np.float32],
    centres_hz: npt.NDArray[np.float64],
    *,
    win: int,
    hop: int,
    silence_dbfs: float,
    margin_db: float,
) -> VoiceActivity:
    """Voice activity of a window from its samples and their log-mel features ``(frames, n_mels)``
    computed with frames of ``win`` samples every ``hop`` samples."""
    count = mel_db.shape[0]
    if count == 0:
        return VoiceActivity(0.0, -120.0, -120.0, 0.0, np.zeros(0, dtype=bool))
    idx = np.arange(win)[None, :] + hop * np.arange(count)[:, None]
    frame_dbfs = _dbfs((signal[idx].astype(np.float64) ** 2).mean(axis=1))
    band = (centres_hz >= SPEECH_BAND_HZ[0]) & (centres_hz <= SPEECH_BAND_HZ[1])
    band_db = _dbfs((10.0 ** (mel_db[:, band].astype(np.float64) / 10.0)).sum(axis=1))
    floor_band = float(np.percentile(band_db, 10))
    voiced = (frame_dbfs > silence_dbfs) & (band_db > floor_band + margin_db)
    return VoiceActivity(
        voiced_ratio=float(voiced.mean()),
        level_dbfs=float(_dbfs(float((signal.astype(np.float64) ** 2).mean()))),
        noise_floor_dbfs=float(np.percentile(frame_dbfs, 10)),
        clipped_ratio=float((np.abs(signal) >= 0.999).mean()),
        voiced=voiced,
    )


def voice_activity(signal: npt.NDArray[np.float32], logmel: LogMel, config: AudioConfig) -> VoiceActivity:
    """Voice activity of ``signal`` with the room's settings, from its log-mel features (memory only)."""
    return detect_voice(
        signal,
        logmel(signal),
        logmel.centres_hz,
        win=logmel.win,
        hop=logmel.hop,
        silence_dbfs=config.silence_dbfs,
        margin_db=config.vad_margin_db,
    )
