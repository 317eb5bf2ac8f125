"""Which cells a release may show, so that no sum or difference of shown numbers covers fewer than k
sessions.

The hub keeps, per session, sums over its windows (``hub.store.sessions``). A release shows cells:
the sessions of one scope (the clinic, a site or a room) in one period, and their sums. Anyone who
saw several cells, in one release or across releases, can add and subtract them. The question is
whether some combination isolates fewer than k sessions.

The rule used here answers it for every combination at once. The *atoms* are the finest pieces a
cell can be made of: the sessions of one room in one period of the finest grain, that one release
sealed (a session's summaries that arrive after its period was released form a later piece of it,
sealed by a later release). Two atoms are in the same *block* when every cell ever shown in their
scope month holds both or neither. Every shown cell is then a union of blocks, and so is every
combination of shown cells: its coefficients are equal on all atoms of a block. If each block that
some shown cell holds covers at least k distinct sessions, no combination of shown numbers (the
month minus its weeks, this release minus the last, a site minus its other rooms) can single out
fewer than k sessions.

:func:`suppress` starts from every cell with at least k sessions and hides cells until the rule
holds: the smallest block below k is merged with the neighbour block that the fewest (then the
smallest) not yet released cells tell apart from it, by hiding those cells. Cells of earlier
releases stay fixed: they are public already.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from clinic_common.errors import ClinicError
from hub.periods import Grain, coarser

logger = logging.getLogger(__name__)

LEVELS: dict[str, int] = {"clinic": 0, "site": 1, "room": 2}  # level -> how many of (site, room) it names


class SuppressionError(ClinicError):
    """Earlier releases cannot be kept safe together with any part of this one (k was raised since)."""

    exit_code = 3


@dataclass(frozen=True)
class Atom:
    """The sessions of one room in one finest-grain period that one release sealed."""

    site: str
    room: str
    period: str  # of the finest grain
    sealed_in: int  # the release that sealed it
    sessions: frozenset[str]
    sums: dict[str, float] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Cell:
    """One number of a release: a scope (the clinic, a site, a room) in one period."""

    level: str
    grain: Grain
    dims: tuple[str, ...]  # () for the clinic, (site,) or (site, room)
    period: str
    release: int  # holds what releases up to this one sealed
    sessions: int = 0
    sums: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, ...]:
        return (*self.dims, self.period)

    def holds(self, atom: Atom, finest: Grain) -> bool:
        return (
            atom.sealed_in <= self.release
            and (atom.site, atom.room)[: len(self.dims)] == self.dims
            and coarser(atom.period, finest, self.grain) == self.period
        )


def candidates(atoms: Iterable[Atom], grain: Grain, period: str, release: int, finest: Grain) -> list[Cell]:
    """Every cell of ``period`` at every level, with its sessions and sums, before suppression."""
    cells: dict[tuple[str, tuple[str, ...]], tuple[Cell, set[str]]] = {}
    for atom in atoms:
        if atom.sealed_in > release or coarser(atom.period, finest, grain) != period:
            continue
        for level, n in LEVELS.items():
            dims = (atom.site, atom.room)[:n]
            cell, seen = cells.setdefault((level, dims), (Cell(level, grain, dims, period, release), set()))
            seen.update(atom.sessions)
            for name, value in atom.sums.items():
                cell.sums[name] = cell.sums.get(name, 0.0) + value
    out = []
    for cell, seen in cells.values():
        cell.sessions = len(seen)
        out.append(cell)
    return sorted(out, key=lambda c: (LEVELS[c.level], c.dims))


def _blocks(member_of: list[frozenset[int]], shown: set[int]) -> dict[frozenset[int], list[int]]:
    blocks: dict[frozenset[int], list[int]] = {}
    for i, cells in enumerate(member_of):
        signature = cells & shown
        if signature:
            blocks.setdefault(frozenset(signature), []).append(i)
    return blocks


def _size(atoms: Sequence[Atom], members: list[int]) -> int:
    return len(frozenset().union(*(atoms[i].sessions for i in members)))


def suppress(
    atoms: Sequence[Atom], fixed: Sequence[Cell], offered: Sequence[Cell], k: int, finest: Grain
) -> list[Cell]:
    """The cells of ``offered`` that may be shown beside ``fixed`` (the scope's earlier releases).

    Raises:
        SuppressionError: the fixed cells alone break the rule (possible only after k was raised).
    """
    cells = [*fixed, *offered]
    n_fixed = len(fixed)
    member_of = [frozenset(j for j, c in enumerate(cells) if c.holds(a, finest)) for a in atoms]
    shown = set(range(n_fixed)) | {n_fixed + j for j, c in enumerate(offered) if c.sessions >= k}
    while True:
        blocks = _blocks(member_of, shown)
        small = [
            (size, sorted(members), signature)
            for signature, members in blocks.items()
            if 0 < (size := _size(atoms, members)) < k
        ]
        if not small:
            break
        _, members, signature = min(small, key=lambda s: (s[0], s[1]))
        # Merge the block with its nearest neighbour: hide the fewest (then smallest) new cells that
        # tell them apart; hiding all new cells that hold it merges it into what nothing shows.
        choices = [signature ^ other for other in blocks if other != signature]
        choices.append(frozenset(j for j in signature if j >= n_fixed))
        allowed = [c for c in choices if c and all(j >= n_fixed for j in c)]
        if not allowed:
            raise SuppressionError(
                f"earlier releases leave {_size(atoms, members)} sessions (< k={k}) apart; "
                "nothing more of this month can be released"
            )
        hide = min(allowed, key=lambda c: (len(c), sum(cells[j].sessions for j in c), sorted(c)))
        shown -= hide
    return [cells[j] for j in sorted(shown) if j >= n_fixed]


def audit(atoms: Sequence[Atom], shown: Sequence[Cell], k: int, finest: Grain) -> list[str]:
    """Blocks of the shown cells covering fewer than k sessions (empty when the rule holds)."""
    member_of = [frozenset(j for j, c in enumerate(shown) if c.holds(a, finest)) for a in atoms]
    problems = []
    for signature, members in _blocks(member_of, set(range(len(shown)))).items():
        size = _size(atoms, members)
        if size < k:
            names = ", ".join(f"{shown[j].level}/{shown[j].grain} {shown[j].key}" for j in sorted(signature))
            problems.append(f"{size} sessions (< k={k}) told apart by: {names}")
    return problems
