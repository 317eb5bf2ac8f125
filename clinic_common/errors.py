"""The base of every deliberate failure, with the exit code a service's CLI returns for it."""


class ClinicError(Exception):
    """Base class; the CLI prints its message and exits with :attr:`exit_code`.

    2 means a person must act (configuration, model files); 3 means the environment failed
    (camera, broker, disk) and a restart may succeed, so systemd restarts on 3 but not on 2.
    """

    exit_code = 2


class ConfigError(ClinicError):
    """A configuration file is missing, unreadable or invalid."""


class PublishError(ClinicError):
    """The MQTT broker cannot be reached or refused a message."""

    exit_code = 3


class StoreError(ClinicError):
    """A database cannot be opened, migrated, read or written."""

    exit_code = 3
