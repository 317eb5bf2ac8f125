"""Packages imported with some of their dependencies loaded only when first used.

faster-whisper's ``audio`` module imports PyAV (``av``: FFmpeg's libraries, bundled in the wheel) at
its top, to decode audio files; importing ``faster_whisper`` for anything (the Whisper model, the
Silero voice detector) loads it. A room hands the model samples, never a file, and PyAV's libraries
were 14 MiB of its resident memory (av 18.1). :func:`import_module` imports a package of
:data:`DEFERRED` with those dependencies standing in ``sys.modules`` as a :class:`DeferredModule`: the
package's own ``import av`` binds it, and the real module is imported the first time one of its
attributes is read (``decode_audio`` of a file works as before, a moment slower the first time).

The standard library's ``importlib.util.LazyLoader`` does not serve here: on Python 3.10 and 3.11
an ``import`` of a module already in ``sys.modules`` reads its ``__spec__``, which makes a lazy
module load at once. A dependency already imported (a test, a tool that decodes files) is used as
it is; one that is not installed is left to the package's own import to report.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

# package -> its dependencies imported on first use
DEFERRED: dict[str, tuple[str, ...]] = {"faster_whisper": ("av",)}

_lock = threading.RLock()


class DeferredModule(ModuleType):
    """Stands in ``sys.modules`` for a module until one of its attributes is read, then imports the
    module and answers from it (and leaves the real module in ``sys.modules``)."""

    def __init__(self, name: str, spec: importlib.machinery.ModuleSpec) -> None:
        super().__init__(name)
        self.__spec__ = spec
        self._deferred_real: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if attribute == "_deferred_real":  # a copy made without __init__: nothing to load from
            raise AttributeError(attribute)
        return getattr(self.load(), attribute)

    def load(self) -> ModuleType:
        """The real module, imported now if it was not yet."""
        with _lock:
            if self._deferred_real is None:
                if sys.modules.get(self.__name__) is self:
                    del sys.modules[self.__name__]
                try:
                    self._deferred_real = importlib.import_module(self.__name__)
                except BaseException:
                    sys.modules.setdefault(self.__name__, self)  # the next use tries again
                    raise
            return self._deferred_real

    @property
    def loaded(self) -> bool:
        return self._deferred_real is not None


def defer(name: str) -> ModuleType | None:
    """Put a :class:`DeferredModule` for the top-level module ``name`` in ``sys.modules``; returns
    what stands there now (the real module where it was already imported), or None where ``name`` is
    not installed."""
    with _lock:
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.find_spec(name)
        if spec is None:
            return None
        module = DeferredModule(name, spec)
        sys.modules[name] = module
        return module


def import_module(name: str) -> ModuleType:
    """``importlib.import_module(name)``, with the dependencies :data:`DEFERRED` lists for its
    top-level package deferred (:func:`defer`)."""
    for dependency in DEFERRED.get(name.partition(".")[0], ()):
        defer(dependency)
    return importlib.import_module(name)
