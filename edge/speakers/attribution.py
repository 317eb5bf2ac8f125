"""Per window: which of its voiced frames are the client's, and the window's audio with everything else
silenced before any channel reads it.

The window's audio is cut into GE2E partials (0.8 s every 0.2 s, the last ending at the window's
end; shorter than the encoder's 1.6 s training partials, which blur a turn change over more than a
second: measured in ``benchmarks/speakers.py``); each partial with enough voiced frames is embedded
and compared by cosine similarity with the enrolled staff voices and with the session's client
profile (the normalised sum of the partials attributed to the client so far: memory only, forgotten
with the session; :meth:`SpeakerSession.decide` says how it is founded). :func:`decide` turns the
two similarities into ``client``, ``staff`` or ``unknown``. A voiced 10 ms frame is the client's
only when every decided partial over it says so, and staff's when any does. Staff frames are always
silenced; unknown frames are silenced unless the room analyses unknown voices (``speakers.unknown =
"analyse"``). What remains is the client's speech: the only audio the voice cues, the speaker
baseline, the speech model, the transcript and the disparity ever see. Only the shares of voiced
time are kept.

Where the face mesh follows the client's face, the mouth is a second cue (:mod:`edge.speakers.mouth`):
once the session has shown that the client's mouth moves when there is voice, a partial over which
it stayed still is not the client's (``unknown``) whatever the voice says, and never founds the
client profile. This holds with nobody enrolled too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from clinic_signals.speaker import HOP, mel_spectrogram, raise_level
from contract.audio import SAMPLE_RATE
from edge.config.models import SpeakersConfig
from edge.results import SpeechAttribution
from edge.speakers.encoder import SpeakerEncoder
from edge.speakers.mouth import MouthCue, MouthTrack
from edge.speakers.staff import StaffEmbeddings

logger = logging.getLogger(__name__)

Speaker = Literal["client", "staff", "unknown"]
PARTIAL_LENGTH = 80  # mel frames (0.8 s) per partial: turns are resolved to about a second
PARTIAL_STEP = 20  # mel frames (0.2 s) between partial starts
MIN_VOICED_SHARE = 0.4  # partials with fewer voiced frames are not embedded
FOUND_S = 4.0  # seconds of distinct speech unlike every staff voice that may found the client profile


def decide(staff: float | None, client: float | None, t: SpeakersConfig) -> Speaker:
    """One partial's speaker from its best similarity to an enrolled staff voice (None: nobody is
    enrolled) and to the session's client profile (None: no profile yet)."""
    if staff is None:
        return "client"  # nobody to tell apart (the room warns at start that nobody is enrolled)
    if client is None:  # until the client's profile exists, only staff can be told apart
        return "staff" if staff >= t.staff_min else "unknown"
    if staff >= client:
        return "staff"
    if client >= t.client_min and client >= staff + t.margin:
        return "client"
    return "unknown"


@dataclass(frozen=True)
class Attributed:
    keep: npt.NDArray[np.bool_]  # per voice-activity frame: voiced and the client's (or analysed)
    labels: npt.NDArray[np.object_]  # per voice-activity frame: client | staff | unknown (voiced ones)
    attribution: SpeechAttribution


class SpeakerSession:
    """One session's attribution: the staff voices and the client profile built during it."""

    def __init__(
        self,
        encoder: SpeakerEncoder,
        staff: StaffEmbeddings,
        config: SpeakersConfig,
    ) -> None:
        self.encoder = encoder
        self.staff = staff
        self.config = config
        self.analyse_unknown = config.unknown == "analyse"
        self._profile = np.zeros(staff.matrix.shape[1] if staff.matrix.size else 256, dtype=np.float64)
        self._profile_n = 0
        self._candidates: dict[int, npt.NDArray[np.float32]] = {}  # session sample -> partial audio
        self._profiled_until = 0
        self.mouth = MouthCue()

    def client_similarity(self, embedding: npt.NDArray[np.float32]) -> float | None:
        if self._profile_n == 0:
            return None
        profile = self._profile / max(float(np.linalg.norm(self._profile)), 1e-12)
        return float(embedding @ profile)

    def staff_similarity(self, embedding: npt.NDArray[np.float32]) -> float | None:
        return float(np.max(self.staff.matrix @ embedding)) if self.staff.ids else None

    def decide(
        self, embedding: npt.NDArray[np.float32], at: int, samples: npt.NDArray[np.float32], *, still: bool = False
    ) -> Speaker:
        """Decide one partial (``samples``, starting ``at`` samples into the session); the client's
        partials grow the client profile, each stretch of audio once (windows overlap). ``still``: the
        mouth cue says the client's mouth did not move over it (never the client's, never a candidate).

        Before the profile exists, partials unlike every staff voice (below ``staff_min``) are
        candidates, held in memory. Once they hold ``FOUND_S`` seconds of distinct speech, that speech
        is embedded as one utterance (1.6 s partials, as the encoder was trained: far steadier than
        the short partials of a window) and becomes the profile if it too is unlike every staff voice;
        otherwise the candidates were an enrolled speaker's least typical moments and are dropped."""
        staff = self.staff_similarity(embedding)
        client = self.client_similarity(embedding)
        if client is None and staff is not None and staff < self.config.staff_min:
            if not still:
                self._candidate(at, samples)
            return "unknown"
        speaker = decide(staff, client, self.config)
        if still and speaker == "client":
            speaker = "unknown"
        logger.debug("partial: staff %.3f, client %s, still %s -> %s", staff or -1.0, client, still, speaker)
        if speaker == "client" and at >= self._profiled_until:
            self._profile += embedding
            self._profile_n += 1
            self._profiled_until = at + samples.shape[0]
        return speaker

    def _candidate(self, at: int, samples: npt.NDArray[np.float32]) -> None:
        if any(abs(at - start) < samples.shape[0] for start in self._candidates):
            return  # this stretch of speech is a candidate already (from an overlapping window)
        self._candidates[at] = samples
        held = sum(c.shape[0] for c in self._candidates.values()) / SAMPLE_RATE
        if held < FOUND_S:
            return
        speech = np.concatenate([self._candidates[k] for k in sorted(self._candidates)])
        utterance = self.encoder.embed(speech)
        similarity = float(np.max(self.staff.matrix @ utterance))
        logger.debug("client profile from %.1f s of speech: similarity to staff %.3f", held, similarity)
        if similarity < self.config.staff_min:
            self._profile = utterance.astype(np.float64) * len(self._candidates)
            self._profile_n = len(self._candidates)
        self._candidates.clear()

    def attribute(
        self,
        audio: npt.NDArray[np.float32],
        voiced: npt.NDArray[np.bool_],
        hop: int,
        start_s: float = 0.0,
        mouth: MouthTrack | None = None,
    ) -> Attributed:
        """The client's frames among the ``voiced`` ones (frame ``j`` starts at sample ``j * hop``) of
        a window starting ``start_s`` seconds into the session; ``mouth``: the client's mouth openings
        in the window, where the face mesh ran."""
        if mouth is not None:
            self.mouth.observe(mouth, voiced, hop, start_s)
        if not voiced.any():
            labels = np.full(voiced.shape[0], "unknown", dtype=object)
            return Attributed(voiced.copy(), labels, _shares(voiced, labels, hop))
        if not self.staff.ids:  # nobody enrolled: the client's, unless the mouth says otherwise
            return self._by_mouth(voiced, hop, mouth)
        mel = mel_spectrogram(raise_level(audio))
        frames = mel.shape[0]
        length = min(PARTIAL_LENGTH, frames)
        starts = list(range(0, max(1, frames - length + 1), PARTIAL_STEP))
        if frames > length and starts[-1] != frames - length:
            starts.append(frames - length)
        # voice-activity frame j (samples j*hop .. j*hop + 400) is centred on mel frame ~ j + 1
        position = np.arange(voiced.shape[0]) + 1
        chosen = []
        for start in starts:
            inside = (position >= start) & (position < start + length)
            if inside.any() and voiced[inside].mean() >= MIN_VOICED_SHARE:
                chosen.append(start)
        labels = np.full(voiced.shape[0], "unknown", dtype=object)
        if chosen:
            embeddings = self.encoder.embed_partials(np.stack([mel[s : s + length] for s in chosen]))
            origin = round(start_s * SAMPLE_RATE)
            span_s = HOP / SAMPLE_RATE
            decisions = np.array(
                [
                    self.decide(
                        e,
                        origin + s * HOP,
                        audio[s * HOP : (s + length) * HOP],
                        still=self.mouth.still(mouth, s * span_s, (s + length) * span_s),
                    )
                    for e, s in zip(embeddings, chosen, strict=True)
                ],
                dtype=object,
            )
            starts_a = np.array(chosen)
            covers = (position[:, None] >= starts_a[None, :]) & (position[:, None] < starts_a[None, :] + length)
            # A frame is the client's only when every decided partial over it says so; staff when any does.
            any_staff = (covers & (decisions == "staff")[None, :]).any(axis=1)
            all_client = covers.any(axis=1) & ~(covers & (decisions != "client")[None, :]).any(axis=1)
            labels[all_client] = "client"
            labels[any_staff] = "staff"
        return self._attributed(voiced, labels, hop)

    def _by_mouth(self, voiced: npt.NDArray[np.bool_], hop: int, mouth: MouthTrack | None) -> Attributed:
        """With nobody enrolled: every voiced frame is the client's, except where every partial over
        it found the client's mouth still (once the mouth cue is calibrated)."""
        labels = np.where(voiced, "client", "unknown").astype(object)
        if self.mouth.cut is not None and mouth is not None:
            frame_s = hop / SAMPLE_RATE
            length = round(PARTIAL_LENGTH * HOP / hop)  # partials in voice-activity frames
            step = round(PARTIAL_STEP * HOP / hop)
            still = np.zeros(voiced.shape[0], dtype=bool)
            moving = np.zeros(voiced.shape[0], dtype=bool)
            starts = list(range(0, max(1, voiced.shape[0] - length + 1), step))
            if starts[-1] + length < voiced.shape[0]:
                starts.append(voiced.shape[0] - length)
            for start in starts:  # every partial with voice: the mouth needs no share of it voiced
                part = slice(start, start + length)
                if not voiced[part].any():
                    continue
                if self.mouth.still(mouth, start * frame_s, (start + length) * frame_s):
                    still[part] = True
                else:
                    moving[part] = True
            labels[voiced & still & ~moving] = "unknown"
        return self._attributed(voiced, labels, hop)

    def _attributed(self, voiced: npt.NDArray[np.bool_], labels: npt.NDArray[np.object_], hop: int) -> Attributed:
        is_client = voiced & (labels == "client")
        is_staff = voiced & (labels == "staff")
        is_unknown = voiced & ~is_client & ~is_staff
        keep = is_client | (is_unknown if self.analyse_unknown else np.zeros_like(voiced))
        return Attributed(keep, labels, _shares(voiced, labels, hop))

    def close(self) -> None:
        """Forget the client profile and the mouth's statistics."""
        self._profile[:] = 0.0
        self._profile_n = 0
        self._profiled_until = 0
        self._candidates.clear()
        self.mouth.close()


def _shares(voiced: npt.NDArray[np.bool_], labels: npt.NDArray[np.object_], hop: int) -> SpeechAttribution:
    """Each speaker's share of the voiced frames (frames ``hop`` samples apart)."""
    count = int(voiced.sum())
    voiced_s = count * hop / SAMPLE_RATE
    if count == 0:
        return SpeechAttribution(0.0, 0.0, 0.0, 0.0)
    return SpeechAttribution(
        client=round(float((voiced & (labels == "client")).sum()) / count, 4),
        staff=round(float((voiced & (labels == "staff")).sum()) / count, 4),
        unknown=round(float((voiced & (labels != "client") & (labels != "staff")).sum()) / count, 4),
        voiced_s=round(voiced_s, 3),
    )
