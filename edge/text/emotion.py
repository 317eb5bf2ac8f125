"""Text emotion over the product's eight classes, with word-level importance.

Runs the pack's ``text`` model (``clinic-export text-emotion``) through the inference engine
interface; the WordPiece tokenizer (``tokenizers``) is the ``tokenizer.json`` the pack carries and
hashes. Negation and intensifiers come from a rule-based valence (:mod:`edge.text.valence`) that
tilts the model's distribution. Word importance is leave-one-word-out: how much the probability of the predicted class
drops when a word is removed (negative: the word pulled the other way). The text stays in memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from contract.classes import CLASSES
from contract.pack import Precision
from edge.config.inference import TextPrecision
from edge.errors import ModelError
from edge.inference.base import InferenceEngine
from edge.inference.engine import BackendConfig
from edge.text.valence import RuleValence, tilt

if TYPE_CHECKING:
    from edge.inference.shared import SharedEngines

logger = logging.getLogger(__name__)

MAX_WORDS_EXPLAINED = 40
# Explaining a long utterance is up to 41 texts of up to 128 tokens; in one run their activations grew
# ONNX Runtime's memory arena by ~180 MiB for good (it never shrinks). Runs of the engine's
# ``run_items`` (8) keep that to a few MiB and, on a CPU, are as fast or faster (benchmarks: "memory").


@dataclass(frozen=True)
class TextResult:
    probs: tuple[float, ...]
    label: str
    confidence: float
    words: tuple[tuple[str, float], ...]  # (word, importance for the label)
    seconds: float


class TextEmotion:
    def __init__(self, engine: InferenceEngine) -> None:
        manifest = engine.manifest
        if manifest.task != "text" or manifest.input.name != "input_ids":
            raise ModelError(f"{manifest.name} is not a text-emotion model (task {manifest.task!r})")
        try:
            from tokenizers import Tokenizer  # noqa: PLC0415
        except ImportError as exc:
            raise ModelError(f"the text channel needs the tokenizers package: {exc}") from None
        path = engine.model_path.parent / (manifest.input.tokenizer or "tokenizer.json")
        if not path.is_file():
            raise ModelError(f"tokenizer {path} is missing beside {engine.model_path}; rebuild the pack")
        self.tokenizer = Tokenizer.from_file(str(path))
        max_tokens = manifest.input.max_tokens or 128
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.enable_padding()
        self.engine = engine
        self.valence = RuleValence()

    def _probs(self, texts: list[str]) -> npt.NDArray[np.float32]:
        runs = []
        step = self.engine.run_items()
        for start in range(0, len(texts), step):
            encoded = self.tokenizer.encode_batch(texts[start : start + step])
            feeds: dict[str, npt.NDArray[np.generic]] = {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            }
            runs.append(np.asarray(self.engine.run(feeds)[0], dtype=np.float32))
        probs = np.concatenate(runs)
        return np.stack([tilt(p, self.valence(t)) for p, t in zip(probs, texts, strict=True)])

    def predict(self, text: str, *, explain: bool = True) -> TextResult | None:
        """The distribution for ``text`` (None for text without words)."""
        started = time.perf_counter()
        words = text.split()
        if not words:
            return None
        variants = [text]
        if explain:
            shown = words[:MAX_WORDS_EXPLAINED]
            variants += [" ".join(words[:i] + words[i + 1 :]) or "." for i in range(len(shown))]
        probs = self._probs(variants)
        best = int(np.argmax(probs[0]))
        importance = tuple(
            (w, round(float(probs[0, best] - probs[i + 1, best]), 4)) for i, w in enumerate(words[: len(variants) - 1])
        )
        return TextResult(
            probs=tuple(round(float(p), 5) for p in probs[0]),
            label=CLASSES[best],
            confidence=round(float(probs[0, best]), 5),
            words=importance,
            seconds=time.perf_counter() - started,
        )


def text_variant(pack: Path, chain: Sequence[BackendConfig], wanted: TextPrecision) -> Precision:
    """The text model's variant to run: ``wanted``, or for ``auto`` the weight-only INT8 variant where
    ONNX Runtime on the CPU runs it first in ``chain`` and the pack has one released, else FP32
    (TensorRT's engine is built from the FP32 graph; an older pack has no INT8 text variant).

    Raises:
        ModelError: the pack is damaged (a manifest fails its hash).
    """
    from edge.inference.pack import unusable_variant  # noqa: PLC0415

    if wanted != "auto":
        return wanted
    first = chain[0]
    if first.backend != "onnxruntime" or first.device != "cpu":
        logger.info("text model: fp32 (the first backend is %s, not ONNX Runtime on the CPU)", first.backend)
        return "fp32"
    problem = unusable_variant(pack, "text", "int8")
    if problem is not None:
        logger.info("text model: fp32 (%s)", problem)
        return "fp32"
    return "int8"


def load_text_model(
    pack: Path,
    chain: Sequence[BackendConfig],
    engines: SharedEngines | None = None,
    precision: TextPrecision = "auto",
) -> TextEmotion:
    """The pack's text model at ``precision`` (see :func:`text_variant`) on the configured backends
    (checked against the pack first); ``engines`` shares it with other rooms of the process."""
    from edge.inference.manifest import load_manifest  # noqa: PLC0415
    from edge.inference.pack import select_model  # noqa: PLC0415
    from edge.inference.shared import SharedEngines  # noqa: PLC0415

    path = select_model(pack, "text", text_variant(pack, chain, precision))
    registry = engines if engines is not None else SharedEngines()
    return TextEmotion(registry.engine(path, load_manifest(path), chain))
