"""Session control: consent, start, pause, resume and stop, from the CLI or the room's MQTT topic."""

from edge.control.commands import (
    MAX_COMMAND_BYTES,
    Command,
    CommandError,
    Consent,
    Pause,
    Resume,
    Start,
    StatusQuery,
    Stop,
    parse_command,
)

__all__ = [
    "MAX_COMMAND_BYTES",
    "Command",
    "CommandError",
    "Consent",
    "Pause",
    "Resume",
    "Start",
    "StatusQuery",
    "Stop",
    "parse_command",
]
