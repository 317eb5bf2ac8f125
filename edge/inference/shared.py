"""Engines shared by the rooms of one process.

A device that serves several rooms from one process (``clinic-edge serve --config A --config B``)
loads each model once: every room asks this registry for its engines, and gets the same session
for the same model file on the same backend chain. Both backends accept calls from several
threads (an ONNX Runtime session runs concurrent ``run`` calls; the TensorRT backend serialises
its execution context with a lock), so sharing needs no lock here. Each handle counts as one user;
the engine is closed when the last user closes its handle.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt

from contract.manifest import ModelManifest
from edge.inference.base import InferenceEngine
from edge.inference.engine import BackendConfig, create_engine

logger = logging.getLogger(__name__)

_Key = tuple[str, str, str]
T = TypeVar("T")


@dataclass
class _Entry:
    engine: InferenceEngine
    users: int


class SharedEngine(InferenceEngine):
    """One user's handle on a shared engine: runs it, and releases it on ``close``."""

    name: ClassVar[str] = "shared"

    def __init__(self, registry: SharedEngines, key: _Key, engine: InferenceEngine) -> None:
        super().__init__(engine.model_path, engine.manifest)
        self._registry = registry
        self._key = key
        self._engine = engine
        self._closed = False
        self.requested = engine.requested
        self.fallback_reason = engine.fallback_reason
        self.max_batch = engine.max_batch

    @property
    def label(self) -> str:
        return self._engine.label

    def infer(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return self._engine.infer(batch)

    def run(self, feeds: dict[str, npt.NDArray[np.generic]]) -> list[npt.NDArray[np.generic]]:
        return self._engine.run(feeds)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._registry.release(self._key)


class SharedEngines:
    """Engines by model file and backend chain, loaded on first request and closed after the last.

    With ``keep`` they stay loaded when their last user closes, until :meth:`close`: a process that
    runs session after session (``clinic-edge evaluate``'s workers) loads each model once. Other
    models a room loads (the speech-to-text engine) are shared the same way (:meth:`resource`).
    """

    def __init__(self, *, keep: bool = False) -> None:
        self._lock = threading.Lock()
        self._entries: dict[_Key, _Entry] = {}
        self._resources: dict[tuple[str, ...], list[Any]] = {}  # key -> [object, users, close]
        self.keep = keep
        self.loads = 0  # engines actually created (the rest of the requests were shared)

    def fallbacks(self) -> list[InferenceEngine]:
        """The loaded engines that run on a later backend than their chain's first (degraded)."""
        with self._lock:
            return [e.engine for e in self._entries.values() if e.engine.degraded]

    def engine(self, model_path: Path, manifest: ModelManifest, chain: Sequence[BackendConfig]) -> InferenceEngine:
        """A handle on the engine for ``model_path`` on ``chain``, created by the first request.

        Raises what :func:`edge.inference.engine.create_engine` raises, for the first request.
        """
        key = (
            str(model_path.resolve()),
            manifest.sha256,
            "|".join(c.model_dump_json() for c in chain),
        )
        with self._lock:  # loading under the lock: two rooms asking at once load the model once
            entry = self._entries.get(key)
            if entry is None:
                entry = _Entry(create_engine(model_path, manifest, chain), 0)
                self._entries[key] = entry
                self.loads += 1
            else:
                logger.info("model %s: sharing the engine already loaded in this process", manifest.name)
            entry.users += 1
            return SharedEngine(self, key, entry.engine)

    def release(self, key: _Key) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return
            entry.users -= 1
            if entry.users > 0 or self.keep:
                return
            del self._entries[key]
        entry.engine.close()

    def resource(self, key: tuple[str, ...], load: Callable[[], T], close: Callable[[T], None]) -> T:
        """The object ``load`` makes for ``key``, made once and shared; give it back with :meth:`give_back`."""
        with self._lock:
            found = self._resources.get(key)
            if found is None:
                found = [load(), 0, close]
                self._resources[key] = found
            found[1] += 1
            obj: T = found[0]
            return obj

    def give_back(self, key: tuple[str, ...]) -> None:
        with self._lock:
            found = self._resources.get(key)
            if found is None:
                return
            found[1] -= 1
            if found[1] > 0 or self.keep:
                return
            del self._resources[key]
        found[2](found[0])

    def close(self) -> None:
        """Close everything kept (``keep``), whoever still uses it."""
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
            resources, self._resources = list(self._resources.values()), {}
        for entry in entries:
            entry.engine.close()
        for obj, _users, close in resources:
            close(obj)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
