"""Load what the room's channels need once, at start, failing early with a clear message.

The speech-emotion model and the text model come from the model pack (checked against its hashes
and release decision); the speech-to-text model is the configured ggml file or CTranslate2 folder,
checked before any native library sees it. Each session then gets fresh per-session state
(:meth:`ChannelModels.session`): the speaker's voice baseline, the utterance buffer, the pulse record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from clinic_signals.model_files import ModelFileError, packaged_whisper_dir
from edge.analysis.summarize import SessionChannels
from edge.audio.vad import prepare as prepare_vad
from edge.channels.base import LoadedModels, PackModels
from edge.channels.registry import ChannelRegistry, default_registry
from edge.channels.sessions import build as build_session
from edge.channels.speech import SpeechEmotionModel
from edge.config.models import AppConfig
from edge.errors import ModelError
from edge.fusion.head import HeadFusion
from edge.inference.base import InferenceEngine
from edge.inference.face import FaceExpressionModel
from edge.inference.manifest import load_manifest
from edge.inference.pack import RELEASES_FILE, open_pack, select_model, trust_pack
from edge.inference.shared import SharedEngines
from edge.speakers.encoder import SpeakerEncoder
from edge.text.emotion import TextEmotion, load_text_model
from edge.transcribe.base import Transcriber
from edge.transcribe.create import create_transcriber

logger = logging.getLogger(__name__)


@dataclass
class ChannelModels:
    config: AppConfig
    speech: SpeechEmotionModel | None = None
    transcriber: Transcriber | None = None
    text: TextEmotion | None = None
    head: HeadFusion | None = None
    speaker: SpeakerEncoder | None = None
    registry: ChannelRegistry = field(default_factory=default_registry)
    shared: tuple[SharedEngines, tuple[str, ...]] | None = None  # where the transcriber came from, when shared
    own: dict[str, Any] = field(default_factory=dict)  # what other registered channels loaded for themselves

    @classmethod
    def load(
        cls, config: AppConfig, engines: SharedEngines | None = None, registry: ChannelRegistry | None = None
    ) -> ChannelModels:
        """Load the models; ``engines`` shares them with other rooms of the process.

        Raises:
            ModelError: a model the enabled channels need is missing, corrupt or not released."""
        engines = engines if engines is not None else SharedEngines()
        models = cls(config, registry=registry if registry is not None else default_registry())
        channels, pack = config.channels, config.models.pack
        trust_pack(config.models, config.storage.state_dir / RELEASES_FILE)
        try:
            prepare_vad(config.audio)  # the windows' learned voice activity, loaded (and any fault said) at start
            if channels.voice.enabled and channels.voice.speech_model == "auto" and pack is not None:
                roles = {m.role for m in open_pack(pack).models.values()}
                if "speech" in roles:
                    path = select_model(pack, "speech", config.models.precision)
                    models.speech = SpeechEmotionModel(_engine(config, path, engines))
                    logger.info("voice channel: speech model %s", models.speech.name)
                else:
                    logger.info("voice channel: acoustic cues (the model pack has no speech model)")
            if config.fusion.method == "auto" and pack is not None:
                models.head = fusion_head(config, pack, models.registry, engines)
            models.speaker = _speaker_encoder(config, engines)
            if _words_wanted(config):
                models._load_words(engines)
            for channel in models.registry:  # channels beside the product's load their own models
                loaded = channel.load_models(config, PackModels(config, engines))
                if loaded is not None:
                    models.own[channel.name] = loaded
        except BaseException:
            models.close()
            raise
        return models

    def _load_words(self, engines: SharedEngines) -> None:
        """The words channel's text model and speech-to-text engine (shared when ``engines`` keeps them)."""
        config, models = self.config, self
        pack = config.models.pack
        words = config.channels.words
        if pack is None:  # excluded by _words_wanted and AppConfig's validator
            raise ModelError("the words channel needs a model pack with a text model")
        models.text = load_text_model(pack, config.inference.backends, engines, config.models.text_precision)
        if words.model is not None:
            source = words.model
        else:
            try:
                source = packaged_whisper_dir()
            except ModelFileError as exc:
                raise ModelError(str(exc)) from None
        make = partial(
            create_transcriber,
            words.engine,
            source,
            threads=words.threads,
            device=words.device,
            context=words.audio_context,
        )
        if engines.keep:  # sessions one after another in this process: load it once
            key = ("transcriber", str(words.engine), str(source), str(words.threads), words.device, words.audio_context)
            models.transcriber = engines.resource(key, make, lambda t: t.close())
            models.shared = (engines, key)
        else:  # each room its own: transcription is the words channel's own pace
            models.transcriber = make()
        text_model = models.text.engine.manifest.name
        logger.info("words channel: %s (%s), text model %s", words.engine, source, text_model)

    @property
    def loaded(self) -> LoadedModels:
        return LoadedModels(speech=self.speech, transcriber=self.transcriber, text=self.text, own=dict(self.own))

    def session(
        self,
        face_model: FaceExpressionModel | None = None,
        requested: Callable[[float], bool] = lambda _t: False,
        *,
        live: bool = False,
    ) -> SessionChannels:
        """Fresh per-session state for every channel the room runs (:func:`edge.channels.sessions.build`)."""
        return build_session(
            self.config,
            self.registry,
            self.loaded,
            head=self.head,
            speaker=self.speaker,
            face_model=face_model,
            requested=requested,
            live=live,
        )

    def close(self) -> None:
        for name, loaded in self.own.items():
            self.registry[name].close_models(loaded)
        self.own.clear()
        for engine in (
            self.speech.engine if self.speech else None,
            self.text.engine if self.text else None,
            self.head.engine if self.head else None,
            self.speaker.engine if self.speaker else None,
        ):
            if engine is not None:
                engine.close()
        if self.transcriber is not None:
            if self.shared is not None:
                self.shared[0].give_back(self.shared[1])
            else:
                self.transcriber.close()


def _words_wanted(config: AppConfig) -> bool:
    """Whether the room runs the words channel. ``auto`` runs it when the model pack has a text model
    and a speech-to-text model is there (configured, or the packaged Whisper tiny.en), and says in
    the log why not otherwise; a model the room names itself must be there."""
    words, pack = config.channels.words, config.models.pack
    if words.enabled != "auto":
        return words.enabled
    why = None
    if pack is None:
        why = "no model pack is configured"
    elif not any(m.role == "text" for m in open_pack(pack).models.values()):
        why = f"the model pack {pack} has no text model (add it: clinic-export text-emotion --pack {pack})"
    elif words.model is None:
        try:
            packaged_whisper_dir()
        except ModelFileError as exc:
            why = f"no speech-to-text model: {exc}"
    if why is not None:
        logger.warning("words channel is off: %s", why)
        return False
    return True


def _speaker_encoder(config: AppConfig, engines: SharedEngines) -> SpeakerEncoder | None:
    """The pack's speaker encoder when the room attributes speech; None (said in the log) otherwise."""
    pack = config.models.pack
    if not config.speakers.enabled or (not config.channels.voice.enabled and not config.channels.words.enabled):
        return None
    if pack is None or not any(m.role == "speaker" for m in open_pack(pack).models.values()):
        logger.warning(
            "speaker attribution is off: %s; every voice in the room is analysed as the client's",
            "no model pack is configured"
            if pack is None
            else f"the model pack {pack} has no speaker encoder (add it: clinic-export speaker --pack {pack})",
        )
        return None
    encoder = SpeakerEncoder(_engine(config, select_model(pack, "speaker", "fp32"), engines))
    logger.info("speaker attribution: %s", encoder.name)
    return encoder


def _engine(config: AppConfig, path: Path, engines: SharedEngines) -> InferenceEngine:
    return engines.engine(path, load_manifest(path), config.inference.backends)


def fusion_head(
    config: AppConfig, pack: Path, registry: ChannelRegistry, engines: SharedEngines | None = None
) -> HeadFusion | None:
    """The pack's fusion head when it fuses the channels' distributions; otherwise late fusion (logged)."""
    if not any(m.role == "fusion" for m in open_pack(pack).models.values()):
        logger.info("fusion: weighted late fusion (the model pack has no fusion head)")
        return None
    engine = _engine(config, select_model(pack, "fusion", "fp32"), engines if engines is not None else SharedEngines())
    try:
        head = HeadFusion(engine, [c.name for c in registry.voters])
    except ModelError as exc:
        engine.close()
        logger.warning("fusion: weighted late fusion, because %s", exc)
        return None
    logger.info("fusion: the pack's head %s over %s", head.name, head.modalities)
    return head
