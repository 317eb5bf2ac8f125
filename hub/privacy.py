"""Which cells a release may show, so that no sum or difference of shown numbers rests on fewer than k
sessions, or on one session's windows.

The hub keeps, per session, sums over its windows (``hub.store.sessions``). A release shows cells:
the sessions of one scope (the clinic, a site or a room) in one period, and their sums. Anyone who
saw several cells, in one release or across releases, can add and subtract them. The question is
whether some combination isolates what too few sessions, or mostly one session, contributed.

The rule used here answers it for every combination at once. The *atoms* are the finest pieces a
cell can be made of: the sessions of one room on one day that one release sealed (a session's
summaries that arrive after its period was released form a later piece of it, sealed by a later
release). Atoms are days whatever grain the hub releases, so that a change of ``finest_grain``
cannot map earlier cells onto the wrong pieces. Two atoms are in the same *block* when every cell
ever shown in their scope month holds both or neither. Every shown cell is then a union of blocks,
and so is every combination of shown cells: its coefficients are equal on all atoms of a block. A
block is *safe* when

* at least k distinct sessions *contribute* to it: a session contributes when it has windows with
  an emotion result there (a session nobody was seen or heard in adds 1 to a count of sessions but
  nothing to the shares, so it cannot make up anyone else's k), and
* no one session holds more than ``dominance`` of the block's analysed windows, nor of its windows
  (one long session beside short ones would otherwise *be* the shares).

A union of safe blocks is safe (its contributors include every block's; a session's share of a
union is at most its largest share of a block), so if every block that some shown cell holds is
safe, no combination of shown numbers (the month minus its weeks, this release minus the last, a
site minus its other rooms) can single out fewer than k contributing sessions or a dominant one.

:func:`suppress` starts from every cell that is safe on its own and hides cells until the rule
holds: the weakest block is merged with the neighbour block that the fewest (then the smallest) not
yet released cells tell apart from it, by hiding those cells. Cells of earlier releases stay
fixed: they are public already.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from clinic_common.errors import ClinicError
from hub.periods import Grain, coarser

logger = logging.getLogger(__name__)

LEVELS: dict[str, int] = {"clinic": 0, "site": 1, "room": 2}  # level -> how many of (site, room) it names
ATOM_GRAIN: Grain = "day"  # atoms are days whatever grain is released (see the module's docstring)


class SuppressionError(ClinicError):
    """Earlier releases cannot be kept safe together with any part of this one (k was raised since)."""

    exit_code = 3


@dataclass(frozen=True)
class Rule:
    """What every block of shown cells must satisfy."""

    k: int  # at least this many contributing sessions
    dominance: float  # no session above this share of the analysed windows, or of the windows


@dataclass(frozen=True)
class Contribution:
    """What one session adds to an atom: its windows, and those with an emotion result."""

    windows: float
    analysed: float

    def __add__(self, other: Contribution) -> Contribution:
        return Contribution(self.windows + other.windows, self.analysed + other.analysed)


@dataclass(frozen=True)
class Atom:
    """The sessions of one room on one day that one release sealed."""

    site: str
    room: str
    day: str
    sealed_in: int  # the release that sealed it
    sessions: Mapping[str, Contribution] = field(compare=False, hash=False)
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
    contributions: dict[str, Contribution] = field(default_factory=dict, compare=False, repr=False)

    @property
    def key(self) -> tuple[str, ...]:
        return (*self.dims, self.period)

    def holds(self, atom: Atom) -> bool:
        return (
            atom.sealed_in <= self.release
            and (atom.site, atom.room)[: len(self.dims)] == self.dims
            and coarser(atom.day, ATOM_GRAIN, self.grain) == self.period
        )


def candidates(atoms: Iterable[Atom], grain: Grain, period: str, release: int) -> list[Cell]:
    """Every cell of ``period`` at every level, with its sessions and sums, before suppression."""
    cells: dict[tuple[str, tuple[str, ...]], Cell] = {}
    for atom in atoms:
        if atom.sealed_in > release or coarser(atom.day, ATOM_GRAIN, grain) != period:
            continue
        for level, n in LEVELS.items():
            dims = (atom.site, atom.room)[:n]
            cell = cells.setdefault((level, dims), Cell(level, grain, dims, period, release))
            _merge(cell.contributions, atom.sessions)
            for name, value in atom.sums.items():
                cell.sums[name] = cell.sums.get(name, 0.0) + value
    out = []
    for cell in cells.values():
        cell.sessions = len(cell.contributions)
        out.append(cell)
    return sorted(out, key=lambda c: (LEVELS[c.level], c.dims))


def _merge(into: dict[str, Contribution], add: Mapping[str, Contribution]) -> None:
    for session, c in add.items():
        into[session] = into[session] + c if session in into else c


def weakness(contributions: Mapping[str, Contribution], rule: Rule) -> str | None:
    """Why these sessions' numbers may not be shown (None: they may)."""
    contributing = sum(1 for c in contributions.values() if c.analysed > 0)
    if contributing < rule.k:
        return f"{contributing} contributing sessions (< k={rule.k})"
    analysed = sum(c.analysed for c in contributions.values())
    windows = sum(c.windows for c in contributions.values())
    top_analysed = max(c.analysed for c in contributions.values()) / analysed
    top_windows = max(c.windows for c in contributions.values()) / windows if windows > 0 else 0.0
    top = max(top_analysed, top_windows)
    if top > rule.dominance:
        return f"one session holds {top:.0%} of the windows (> {rule.dominance:.0%})"
    return None


def _blocks(member_of: list[frozenset[int]], shown: set[int]) -> dict[frozenset[int], list[int]]:
    blocks: dict[frozenset[int], list[int]] = {}
    for i, cells in enumerate(member_of):
        signature = cells & shown
        if signature:
            blocks.setdefault(frozenset(signature), []).append(i)
    return blocks


def _contributions(atoms: Sequence[Atom], members: list[int]) -> dict[str, Contribution]:
    out: dict[str, Contribution] = {}
    for i in members:
        _merge(out, atoms[i].sessions)
    return out


def _strength(atoms: Sequence[Atom], members: list[int]) -> tuple[int, float]:
    """Orders weak blocks, weakest first: fewer contributing sessions, then a larger top share."""
    c = _contributions(atoms, members)
    analysed = sum(x.analysed for x in c.values())
    top = max((x.analysed for x in c.values()), default=0.0) / analysed if analysed > 0 else 1.0
    return (sum(1 for x in c.values() if x.analysed > 0), -top)


def suppress(atoms: Sequence[Atom], fixed: Sequence[Cell], offered: Sequence[Cell], rule: Rule) -> list[Cell]:
    """The cells of ``offered`` that may be shown beside ``fixed`` (the scope's earlier releases).

    Raises:
        SuppressionError: the fixed cells alone break the rule (possible only after it was tightened).
    """
    cells = [*fixed, *offered]
    n_fixed = len(fixed)
    member_of = [frozenset(j for j, c in enumerate(cells) if c.holds(a)) for a in atoms]
    shown = set(range(n_fixed)) | {
        n_fixed + j for j, c in enumerate(offered) if c.contributions and weakness(c.contributions, rule) is None
    }
    while True:
        blocks = _blocks(member_of, shown)
        weak = [
            (_strength(atoms, members), sorted(members), signature)
            for signature, members in blocks.items()
            if weakness(_contributions(atoms, members), rule) is not None
        ]
        if not weak:
            break
        _, members, signature = min(weak, key=lambda s: (s[0], s[1]))
        # Merge the block with its nearest neighbour: hide the fewest (then smallest) new cells that
        # tell them apart; hiding all new cells that hold it merges it into what nothing shows.
        choices = [signature ^ other for other in blocks if other != signature]
        choices.append(frozenset(j for j in signature if j >= n_fixed))
        allowed = [c for c in choices if c and all(j >= n_fixed for j in c)]
        if not allowed:
            why = weakness(_contributions(atoms, members), rule)
            raise SuppressionError(f"earlier releases leave {why} apart; nothing more of this month can be released")
        hide = min(allowed, key=lambda c: (len(c), sum(cells[j].sessions for j in c), sorted(c)))
        shown -= hide
    return [cells[j] for j in sorted(shown) if j >= n_fixed]


def audit(atoms: Sequence[Atom], shown: Sequence[Cell], rule: Rule) -> list[str]:
    """Blocks of the shown cells that break the rule (empty when it holds)."""
    member_of = [frozenset(j for j, c in enumerate(shown) if c.holds(a)) for a in atoms]
    problems = []
    for signature, members in _blocks(member_of, set(range(len(shown)))).items():
        why = weakness(_contributions(atoms, members), rule)
        if why is not None:
            names = ", ".join(f"{shown[j].level}/{shown[j].grain} {shown[j].key}" for j in sorted(signature))
            problems.append(f"{why}, told apart by: {names}")
    return problems
