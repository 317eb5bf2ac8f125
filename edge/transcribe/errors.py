"""The speech-to-text error (a model error: exit code 2, a person must act)."""

from edge.errors import ModelError


class TranscriberError(ModelError):
    """A speech-to-text model is missing, corrupt, or its back-end is not installed."""
