"""The shares of windows a summary carries that the hub sums and shows, declared once.

Each :class:`Share` says how to read it from a summary (a mean over the summary's windows); from
this list the hub builds its session and cell columns (``<name>_sum``: the share times the windows),
what a summary adds to its session, the dashboard's column and the CSV's (``<name>_pct``). Adding a
share is one entry here: the columns are added to an existing database at its next start.
Shares are not released in differential-privacy mode (each would need more of the budget).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from contract.payload import Summary


@dataclass(frozen=True)
class Share:
    name: str  # the key of pages and the CSV (``<name>_pct``)
    heading: str  # the dashboard's column heading
    of: Callable[[Summary], float | None]  # the summary's mean over its windows; None when it has none

    @property
    def column(self) -> str:
        """The column summing it, weighted by windows."""
        return f"{self.name}_sum"

    @property
    def csv(self) -> str:
        return f"{self.name}_pct"


def _face(s: Summary) -> float | None:
    return s.modalities.face.coverage if s.modalities.face is not None else None


def _voiced(s: Summary) -> float | None:
    return s.modalities.voice.voiced_ratio if s.modalities.voice is not None else None


SHARES: tuple[Share, ...] = (
    Share("face_coverage", "Face seen", _face),
    Share("voiced", "Voiced", _voiced),
)
