"""Held-out sentences for checking the text model's reduced-precision variants against FP32.

``clinic-export verify`` compares a variant's answers with FP32's on inputs neither was built from.
For the text model those are sentences: the product's evaluation sentences (:data:`EVALUATION`)
and a few hundred more composed here from phrases of every class, said of different people, in
different frames (a statement, a report of the past, a question, a negation, a hedge, a long
sentence with a clause before it), none of them a prototype. They carry no labels: the check is
agreement with FP32 (share of sentences whose top class moves), not accuracy, which no text
corpus that ships with the product could measure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export.errors import ExportError
from export.text_emotion import EVALUATION, PROTOTYPES, _tokenize, model_dir

# phrases of each class's feeling, none of them taken from the prototypes
FEELINGS: dict[str, tuple[str, ...]] = {
    "neutral": ("busy with the paperwork", "at the office", "on the bus", "cooking dinner", "in a meeting"),
    "calm": ("relaxed", "at peace with it", "quite serene", "unhurried and easy", "comfortable and quiet"),
    "happy": ("thrilled", "over the moon", "really cheerful", "so pleased", "full of joy"),
    "sad": ("down in the dumps", "so unhappy", "grieving", "tearful all the time", "really depressed"),
    "angry": ("so irritated", "absolutely enraged", "really mad", "fed up and cross", "bitter and resentful"),
    "fearful": ("really worried", "anxious and tense", "scared stiff", "full of dread", "panicky"),
    "disgust": ("sickened", "grossed out", "appalled by it", "revolted", "nauseated"),
    "surprised": ("amazed", "stunned", "taken aback", "startled", "shocked in a good way"),
}
SUBJECTS = (("I", "am", "was"), ("My mother", "is", "was"), ("We", "are", "were"), ("He", "is", "was"))
FRAMES = (
    "{subject} {now} {feeling}.",
    "Yesterday {lower} {past} {feeling}.",
    "Why {now} {lower} {feeling}?",
    "{subject} {now} not {feeling}.",
    "I think {lower} {now} a little {feeling}.",
    "When the letter came this morning, {lower} {past} {feeling} for hours.",
)


def heldout_sentences() -> tuple[str, ...]:
    """The evaluation sentences, then every feeling in every frame for every subject (960), in a
    fixed order; none is a prototype sentence."""
    out = [text for text, _ in EVALUATION]
    for phrases in FEELINGS.values():
        for feeling in phrases:
            for subject, now, past in SUBJECTS:
                lower = subject if subject == "I" else subject[0].lower() + subject[1:]
                out += [f.format(subject=subject, lower=lower, now=now, past=past, feeling=feeling) for f in FRAMES]
    prototypes = {s for sentences in PROTOTYPES.values() for s in sentences}
    return tuple(s for s in out if s not in prototypes)


def write_text_heldout(path: Path) -> Path:
    """Tokenize :func:`heldout_sentences` as the room does and write them to ``path`` (``.npz``:
    ``input_ids`` and ``attention_mask``, padded to the longest), the held-out set of
    ``clinic-export verify --model text-minilm-prototypes``.

    Raises:
        ExportError: the sentence encoder's tokenizer is missing, or the file cannot be written.
    """
    from transformers import AutoTokenizer  # noqa: PLC0415

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir()), local_files_only=True)
    feeds = _tokenize(tokenizer, list(heldout_sentences()))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            np.savez(f, **feeds)
    except OSError as exc:
        raise ExportError(f"cannot write the text held-out set {path}: {exc}") from None
    return path
