"""What ``clinic-edge evaluate`` keeps of each labelled clip, and what ``clinic-export fit`` reads back:
the clip's labels and the room's per-window outputs (each channel's vote and the fused result).
Numbers and labels only: no media, no words. One file per clip, ``<out>/clips/<clip id>.json``.

The same records come from clinicians' judgements on the review page (``evaluate --feedback``): a
window a therapist marked is a clip of one window whose label is the therapist's.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from contract.classes import CLASSES

RECORD_VERSION: Final = 1
Modality = Literal["audiovisual", "audio"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VoteRecord(_Record):
    """One channel's vote in one window, as the fusion saw it (:class:`edge.fusion.decide.ChannelVote`)."""

    name: str
    probs: tuple[float, ...] | None = Field(default=None, description="Over the product's eight classes.")
    quality: str
    reliability: float = 1.0
    affect: tuple[float, float] | None = None  # (valence, arousal) where the channel measures it directly
    cue_confidence: float | None = None  # the voice's cues: how sure they are (their tempering's input)
    from_cues: bool = False  # the distribution is the voice's cues' (tempered), not a speech model's


class WindowRecord(_Record):
    index: int
    start_s: float
    end_s: float
    votes: tuple[VoteRecord, ...]
    fused: tuple[float, ...] | None  # the room's fused distribution (None: no channel was good)
    label: str | None  # the room's label (None: no result, or uncertain)
    state: str | None
    disparity: float | None = None


class ClipRecord(_Record):
    record_version: Literal[1] = RECORD_VERSION
    clip_id: str
    corpus: str
    path: str  # relative to the corpus's folder
    label: str | None = Field(
        description="The clip's true class (one of the product's eight); None for a clinician's judgement of a "
        "disparity moment that names no class (it labels the moment, not the emotion)."
    )
    speaker: str
    modality: Modality
    words_applicable: bool = Field(
        description="False where the corpus's sentences are fixed and neutral by design (RAVDESS, CREMA-D): "
        "the words channel is not scored there and fit never learns from its words."
    )
    disparate: bool | None = Field(
        default=None,
        description="Whether the clip truly holds a disparity between channels: False for acted corpora, whose "
        "face and voice show one emotion by design; True or False from a clinician's judgement of a moment; None "
        "unknown. fit learns the disparity threshold from these.",
    )
    intensity: str | None = None
    statement: str | None = None
    valence: float | None = None  # labels, where the corpus has them
    arousal: float | None = None
    seconds: float = 0.0  # the room's processing time for the clip
    windows: tuple[WindowRecord, ...] = ()
    events: int = 0  # disparity moments
    error: str | None = None  # the room could not analyse the clip (counted as no result)


def check_label(label: str) -> str:
    """``label`` when it is one of the product's classes.

    Raises:
        ValueError: naming the label and the classes.
    """
    if label not in CLASSES:
        raise ValueError(f"label {label!r} is not one of the product's classes {', '.join(CLASSES)}")
    return label
