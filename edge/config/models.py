"""The room configuration: :class:`AppConfig`, its sections by concern (``media``, ``channels``,
``analysis``, ``inference``, ``services``) re-exported here. Units and limits live in each field."""

from __future__ import annotations

from pydantic import model_validator

from clinic_common.config import StrictModel
from clinic_common.mqtt import MqttConfig, is_loopback
from edge.config.analysis import (
    ChannelTemperatures,
    DisparityConfig,
    ExplainConfig,
    FusionConfig,
    FusionWeights,
)
from edge.config.channels import (
    ChannelsConfig,
    FaceChannelConfig,
    PulseChannelConfig,
    SpeakersConfig,
    VoiceChannelConfig,
    WordsChannelConfig,
)
from edge.config.inference import (
    BackendConfig,
    InferenceConfig,
    ModelsConfig,
    OnnxRuntimeBackendConfig,
    TensorRTBackendConfig,
)
from edge.config.media import (
    AudioConfig,
    CaptureConfig,
    RoomConfig,
    VisionConfig,
    WindowConfig,
)
from edge.config.profile import RoomProfile
from edge.config.services import (
    SELF_SIGNED_DIR,
    ControlConfig,
    FhirEndpointConfig,
    MetricsConfig,
    ReviewConfig,
    ReviewTlsConfig,
    SetupConfig,
    StorageConfig,
)

__all__ = [
    "SELF_SIGNED_DIR",
    "AppConfig",
    "AudioConfig",
    "BackendConfig",
    "CaptureConfig",
    "ChannelTemperatures",
    "ChannelsConfig",
    "ControlConfig",
    "DisparityConfig",
    "ExplainConfig",
    "FaceChannelConfig",
    "FhirEndpointConfig",
    "FusionConfig",
    "FusionWeights",
    "InferenceConfig",
    "MetricsConfig",
    "ModelsConfig",
    "OnnxRuntimeBackendConfig",
    "PulseChannelConfig",
    "ReviewConfig",
    "ReviewTlsConfig",
    "RoomConfig",
    "SetupConfig",
    "SpeakersConfig",
    "StorageConfig",
    "TensorRTBackendConfig",
    "VisionConfig",
    "VoiceChannelConfig",
    "WindowConfig",
    "WordsChannelConfig",
]


class AppConfig(StrictModel):
    room: RoomConfig
    capture: CaptureConfig = CaptureConfig()
    windows: WindowConfig = WindowConfig()
    vision: VisionConfig = VisionConfig()
    audio: AudioConfig = AudioConfig()
    models: ModelsConfig
    channels: ChannelsConfig = ChannelsConfig()
    speakers: SpeakersConfig = SpeakersConfig()
    fusion: FusionConfig = FusionConfig()
    disparity: DisparityConfig = DisparityConfig()
    explain: ExplainConfig = ExplainConfig()
    inference: InferenceConfig = InferenceConfig()
    storage: StorageConfig = StorageConfig()
    mqtt: MqttConfig = MqttConfig()
    metrics: MetricsConfig = MetricsConfig()
    control: ControlConfig = ControlConfig()
    review: ReviewConfig = ReviewConfig()
    setup: SetupConfig = SetupConfig()
    # Not a TOML section: the room profile beside the config file, attached by the loader.
    profile: RoomProfile | None = None

    def review_tls(self) -> ReviewTlsConfig | None:
        """The review page's certificate: its own, else the room's MQTT client certificate, else the
        appliance's self-signed one (made at the page's first start: :mod:`edge.review.certificate`)."""
        if self.review.tls is not None:
            return self.review.tls
        tls = self.mqtt.tls
        if tls is not None and tls.cert_file is not None and tls.key_file is not None:
            return ReviewTlsConfig(cert_file=tls.cert_file, key_file=tls.key_file)
        if self.review.certificate == "self-signed":
            folder = self.storage.state_dir / SELF_SIGNED_DIR
            return ReviewTlsConfig(cert_file=folder / "review.crt", key_file=folder / "review.key")
        return None

    def review_self_signed(self) -> bool:
        """Whether the page uses the appliance's own self-signed certificate."""
        tls = self.review_tls()
        return tls is not None and tls.cert_file.parent == self.storage.state_dir / SELF_SIGNED_DIR

    @model_validator(mode="after")
    def _review_off_loopback_needs_tls(self) -> AppConfig:
        if not is_loopback(self.review.host) and self.review_tls() is None:
            raise ValueError(
                f"review.host {self.review.host} is off this machine: the page needs TLS ([review.tls], or "
                "the room's certificate in [mqtt.tls])"
            )
        return self

    @model_validator(mode="after")
    def _setup_off_loopback_needs_tls(self) -> AppConfig:
        if not is_loopback(self.setup.host) and self.review_tls() is None:
            raise ValueError(
                f"setup.host {self.setup.host} is off this machine: the setup page needs TLS (the review page's: "
                "[review.tls], the room's certificate in [mqtt.tls], or review.certificate = self-signed)"
            )
        return self

    @model_validator(mode="after")
    def _words_need_a_pack(self) -> AppConfig:
        if self.channels.words.enabled is True and self.models.pack is None:
            raise ValueError(
                "channels.words needs models.pack: the text-emotion model comes from a model pack "
                "(`clinic-export text-emotion --pack <pack>`)"
            )
        return self
