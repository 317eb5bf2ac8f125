"""Which models the room runs and on which inference backends."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from clinic_common.config import StrictModel

TextPrecision = Literal["auto", "fp32", "int8"]


class ModelsConfig(StrictModel):
    """The signed model pack the room runs, and which of its variants."""

    face: Path | None = Field(
        examples=["/opt/clinic-edge/models/face-fer-minixception.onnx"],
        default=None,
        description="Face-expression model (.onnx with its .json manifest beside it). Relative paths are "
        "resolved against the config file's folder. Give this or pack.",
    )
    pack: Path | None = Field(
        examples=["/opt/clinic-edge/models/pack"],
        default=None,
        description="Model pack folder (pack.json) written by clinic-export; its face model is used. Relative "
        "paths are resolved against the config file's folder.",
    )
    precision: Literal["fp32", "int8", "fp16"] = Field(
        default="fp32",
        description="Pack variant to run. int8 and fp16 must have passed `clinic-export verify`.",
    )
    text_precision: TextPrecision = Field(
        default="auto",
        description="Variant of the pack's text model (the words channel). auto: INT8 (weight-only, checked "
        "against FP32 by `clinic-export verify`; about 30 MiB less memory per room) when the first backend is "
        "ONNX Runtime on the CPU and the pack has a released one, FP32 otherwise. int8 and fp32 insist.",
    )
    face_model: str | None = Field(
        examples=["face-cnn"],
        default=None,
        description="Name of the face model in the pack, when the pack has more than one.",
    )
    trusted_keys: list[Path] = Field(
        examples=[["/etc/clinic-edge/keys/clinic-packs.pub"]],
        default_factory=list,
        description="Public keys (PEM, from `clinic-export keygen`) whose signature on a pack's pack.json the "
        "room accepts; a pack signed by none of them is refused. Relative paths are resolved against the "
        "config file's folder.",
    )
    pin_release: int | None = Field(
        examples=[1765000000],
        default=None,
        ge=1,
        description="Load only the pack with this release (its pack.json's release). Without it the room loads "
        "a release no older than the newest it loaded before (an old signed pack is refused); set it to go "
        "back to an older pack on purpose.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ModelsConfig:
        if (self.face is None) == (self.pack is None):
            raise ValueError("give exactly one of models.face (a single .onnx file) and models.pack (a model pack)")
        if self.face is not None and (self.precision != "fp32" or self.face_model is not None):
            raise ValueError("models.precision and models.face_model apply to a pack; a single file is what it is")
        if self.pack is not None and not self.trusted_keys:
            raise ValueError(
                "models.trusted_keys is empty: a pack is loaded only when signed by a key the room trusts "
                "(scripts/setup.sh signs the default pack with build/keys/pack-signing.key; list "
                "build/keys/pack-signing.key.pub)"
            )
        return self


class OnnxRuntimeBackendConfig(StrictModel):
    backend: Literal["onnxruntime"] = "onnxruntime"
    device: Literal["cpu", "cuda"] = Field(default="cpu", description="Execution provider.")
    intra_op_threads: int = Field(default=1, ge=0, le=64, description="Threads per session; 0 = all cores.")
    memory_arena: bool = Field(
        default=False,
        description="Keep each session's ONNX Runtime memory arena: it grows to the largest activations a "
        "model ever needed and keeps them for good. Off, a run's buffers go back to the C library (a "
        "room's resident size is about 60 MiB smaller).",
    )


class TensorRTBackendConfig(StrictModel):
    backend: Literal["tensorrt"] = "tensorrt"
    engine_dir: Path = Field(
        examples=["/opt/clinic-edge/engines"],
        description="Folder of TensorRT engines built for this device: <model name>.engine beside the "
        "<model name>.json manifest.",
    )


BackendConfig = Annotated[
    OnnxRuntimeBackendConfig | TensorRTBackendConfig,
    Field(discriminator="backend"),
]


class InferenceConfig(StrictModel):
    backends: tuple[BackendConfig, ...] = Field(
        default=(OnnxRuntimeBackendConfig(),),
        min_length=1,
        description="Backends to try in order; the first that loads is used and logged, e.g. "
        "TensorRT then ONNX Runtime.",
    )
