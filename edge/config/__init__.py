"""Room configuration: a TOML file validated once at start."""

from clinic_common.mqtt import MqttConfig
from edge.config.load import load_config
from edge.config.models import (
    AppConfig,
    AudioConfig,
    CaptureConfig,
    InferenceConfig,
    MetricsConfig,
    ModelsConfig,
    OnnxRuntimeBackendConfig,
    RoomConfig,
    StorageConfig,
    TensorRTBackendConfig,
    VisionConfig,
    WindowConfig,
)

__all__ = [
    "AppConfig",
    "AudioConfig",
    "CaptureConfig",
    "InferenceConfig",
    "MetricsConfig",
    "ModelsConfig",
    "MqttConfig",
    "OnnxRuntimeBackendConfig",
    "RoomConfig",
    "StorageConfig",
    "TensorRTBackendConfig",
    "VisionConfig",
    "WindowConfig",
    "load_config",
]
