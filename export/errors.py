"""Exception tree of the model toolchain."""


class ExportError(Exception):
    """Base class for every error the toolchain raises on purpose."""


class WeightsError(ExportError):
    """Weights are missing, unreadable, or do not fit the architecture."""


class VerificationError(ExportError):
    """An exported artefact does not reproduce the reference numerics."""


class DataError(ExportError):
    """A corpus is missing, laid out differently than expected, or cannot be split as asked."""


class ReleaseRefusedError(VerificationError):
    """A reduced-precision variant lost more accuracy than the configured bound allows."""


class FitRefusedError(ExportError):
    """``fit``: held-out figures did not improve enough; nothing was written."""
