"""Exception tree of the room runtime. Every deliberate failure derives from :class:`EdgeError`,
which is the base every clinic-edge service shares (:mod:`clinic_common.errors`, with its exit
codes); configuration and broker errors are that shared tree's own."""

from clinic_common.errors import ClinicError as EdgeError
from clinic_common.errors import ConfigError, PublishError, StoreError

__all__ = [
    "BackendUnavailableError",
    "ConfigError",
    "EdgeError",
    "ModelError",
    "PublishError",
    "SourceError",
    "StoreError",
]


class SourceError(EdgeError):
    """The capture source is missing, unsupported or failed."""

    exit_code = 3


class EmptySourceError(SourceError):
    """A recorded file gave no complete window: shorter than one, truncated or damaged."""

    exit_code = 2


class ModelError(EdgeError):
    """A model file or its manifest is missing, corrupt or unusable."""


class BackendUnavailableError(ModelError):
    """An inference backend was requested that this machine cannot run."""
