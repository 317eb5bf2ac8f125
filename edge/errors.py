"""Exception tree of the room runtime. Every deliberate failure derives from :class:`EdgeError`."""


class EdgeError(Exception):
    """Base class; the CLI prints its message and exits with :attr:`exit_code`.

    2 means a person must act (configuration, model files); 3 means the environment failed
    (camera, broker, disk) and a restart may succeed, so systemd restarts on 3 but not on 2.
    """

    exit_code = 2


class ConfigError(EdgeError):
    """The room configuration is missing, unreadable or invalid."""


class SourceError(EdgeError):
    """The capture source is missing, unsupported or failed."""

    exit_code = 3


class ModelError(EdgeError):
    """A model file or its manifest is missing, corrupt or unusable."""


class BackendUnavailableError(ModelError):
    """An inference backend was requested that this machine cannot run."""


class StoreError(EdgeError):
    """The local database cannot be opened, migrated or written."""

    exit_code = 3


class PublishError(EdgeError):
    """The MQTT broker cannot be reached or refused a message."""

    exit_code = 3
