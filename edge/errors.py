"""Exception tree of the room runtime. Every deliberate failure derives from :class:`EdgeError`."""


class EdgeError(Exception):
    """Base class; the CLI prints its message and exits non-zero."""


class ConfigError(EdgeError):
    """The room configuration is missing, unreadable or invalid."""


class SourceError(EdgeError):
    """The capture source is missing, unsupported or failed."""


class ModelError(EdgeError):
    """A model file or its manifest is missing, corrupt or unusable."""


class BackendUnavailableError(ModelError):
    """An inference backend was requested that this machine cannot run."""


class StoreError(EdgeError):
    """The local database cannot be opened, migrated or written."""


class PublishError(EdgeError):
    """The MQTT broker cannot be reached or refused a message."""
