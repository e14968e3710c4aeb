"""One privacy decision for everything the district can release (DESIGN §3, privacy rules 1-3).

The decision is made on *cells*: one count ``k`` of ``n`` students per unit (a school, a pooled cluster
row ``cluster:NAME`` or the pooled ``district`` row) x school year x measure (a metric, or a discipline
outcome) x student group. Every released number is computed from cells, so a table may show a number
only when every cell it is computed from is released exactly (``analytics.access.privacy`` applies
that to each view).

1. Primary: a cell whose ``n`` is under 10 is hidden, ``n`` included; a sensitive count (suspension,
   expulsion, law referral, incident) between 1 and 9 is hidden.
2. Coding: a rate <= 5% or >= 95% is released only as that band; its count is hidden.
3. Complementary: cells are tied by sums (school rows add up to their cluster row, clusters to the
   district; race groups, and female plus male, add up to ``ALL``), for counts and for ``n`` alike, and
   cells of measures that count the same students share one ``n``
   (:func:`~analytics.access.release_cells.shared_denominators`).
   The release is audited as a whole by bounds propagation over those sums, the bands and 0 <= k <= n,
   rounded to integers (the same attack the privacy-attack suite runs): when a hidden count or ``n``
   is pinned to a single integer, one more released cell of a sum that pins it is hidden (the one
   with the fewest students, never the parent when a child will do), and the audit runs again.
   Changes across years and gaps add nothing to that audit because they are released only when all
   their cells are released exactly. Once propagation pins nothing, the release's own integer program
   (:func:`~analytics.access.release_audit.exact_system`: the same sums, shared n, ``k <= n`` and bands,
   over integers; the program the attack suite states, :mod:`analytics.access.exact_audit`) is audited
   exactly: a hidden count or n that is its only integer solution (two sums and a band together can leave
   one value that no single constraint isolates) is opened the same way (a released member of a sum holding
   it, fewest students, children first), and both audits run again until neither finds anything. A solve
   that hits its time limit counts as pinned: privacy wins over a slow solver.

Where each part is done: the cells and the sums that tie them (:mod:`analytics.access.release_cells`), the
audits (:mod:`analytics.access.release_audit`), the decision, piece by piece
(:mod:`analytics.access.release_decide`), and keeping a decision per state of the data
(:mod:`analytics.access.release_store`). This module holds what a decision gives, a :class:`Release` (and
:class:`CellGrid`, its lookups as a server keeps them), made from the tables by :func:`build_release`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.access.release_cells import CODED_HIGH, CODED_LOW, EXACT, HIDDEN, KEYS, release_cells
from analytics.access.release_decide import DECISION_RULES, decide
from analytics.config import DEFAULT_SETTINGS, Settings

LOOKUP_STATES = pd.CategoricalDtype([EXACT, CODED_LOW, CODED_HIGH, HIDDEN, "none"])  # "none": not a cell
# `piece`: the fingerprint of the inputs of the piece the cell was decided in (a category), so a later decision
# can reuse the pieces whose inputs did not change.
CELL_COLUMNS = ["k", "n", "state", "n_hidden", "disclosed", "piece_withheld", "piece"]
LOOKUP_COLUMNS = ["state", "n_hidden"]  # what :meth:`Release.states` reads


@dataclass
class Release:
    """Cell states for everything the district can show, indexed by (unit, school_year, measure, group)."""

    cells: pd.DataFrame
    suspension_derived: bool = True
    withheld: str = ""  # why every cell is hidden when no decision could be made ("" for a decision)
    decided_under: str = ""  # :func:`decision_terms` of the decision ("" when not known)

    def measure_of(self, metric: str) -> str:
        """The measure a metric's counts belong to (`suspension_rate` derived from discipline = `suspension`)."""
        return "suspension" if metric == "suspension_rate" and self.suspension_derived else metric

    def states(self, units, years, measures, groups) -> tuple[np.ndarray, np.ndarray]:
        """(state, n_hidden) for each key; cells outside the model (no counts) get state "none"."""
        index = pd.MultiIndex.from_arrays([np.asarray(units, dtype=object), np.asarray(years, dtype="float64"),
                                           np.asarray(measures, dtype=object), np.asarray(groups, dtype=object)])
        found = self.cells.reindex(index)
        state = found["state"].fillna("none").to_numpy(dtype=object)
        n_hidden = found["n_hidden"].fillna(False).to_numpy(dtype=bool)
        return state, n_hidden

    @property
    def disclosed(self) -> int:
        return int(self.cells["disclosed"].sum())

    def for_lookups(self) -> Release | CellGrid:
        """The release as a server keeps it for its shared views: each cell's state and whether its n is hidden,
        all that :meth:`states` reads, as a :class:`CellGrid` (the counts and the audit's columns were 85 of a
        decision's 101 MiB at 2,000 schools x 6 years, its index 14 more)."""
        index = self.cells.index
        codes = self.cells["state"].astype(LOOKUP_STATES).cat.codes.to_numpy()
        grid = CellGrid.made(tuple(index.levels), tuple(index.codes), codes, self.cells["n_hidden"].to_numpy(),
                             self.suspension_derived, self.withheld) if len(self.cells) else None
        if grid is not None:
            return grid
        cells = self.cells[LOOKUP_COLUMNS].astype({"state": LOOKUP_STATES})
        return Release(cells, self.suspension_derived, self.withheld)


NO_CELL = -1
# A grid holds a byte for every combination of the keys' values: kept when it is at most this many times the
# cells (2,000 schools x 6 years: 3.5 million combinations for 2.9 million cells).
GRID_PER_CELL = 4


@dataclass(frozen=True)
class CellGrid:
    """A release's lookups as a server keeps them for its shared views (:meth:`Release.for_lookups`): one byte for
    each combination of the keys' values (unit x school year x measure x group), the cell's state and whether its
    n is hidden, or :data:`NO_CELL`. 3.5 MiB at 2,000 schools x 6 years, where the cells indexed by their keys
    took 20 (DESIGN §8 memory bar); a lookup finds each key among its values and reads the grid."""

    levels: tuple[pd.Index, ...]  # each key's values (in KEYS order)
    grid: np.ndarray  # int8: the state's code in LOOKUP_STATES * 2 + whether n is hidden; NO_CELL
    suspension_derived: bool = True
    withheld: str = ""

    measure_of = Release.measure_of

    @classmethod
    def made(cls, levels: tuple[pd.Index, ...], codes: tuple[np.ndarray, ...], states: np.ndarray,
             n_hidden: np.ndarray, suspension_derived: bool, withheld: str) -> CellGrid | None:
        """The grid of cells whose keys are `codes` into `levels`, with their state codes and hidden n; None when
        a key or state is missing, a key is repeated (one byte would keep only the last of its cells' states) or
        the grid would be sparse (the cells are then kept indexed)."""
        shape = tuple(len(level) for level in levels)
        if n_hidden.dtype != bool or (states < 0).any() or any((code < 0).any() for code in codes) \
                or math.prod(shape) > GRID_PER_CELL * len(states):
            return None
        grid = np.full(shape, NO_CELL, dtype=np.int8)
        grid[codes] = states.astype(np.int8) * 2 + n_hidden
        if np.count_nonzero(grid != NO_CELL) != len(states):
            return None
        return cls(tuple(levels), grid, suspension_derived, withheld)

    def states(self, units, years, measures, groups) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`Release.states`: (state, n_hidden) for each key; "none" for keys that are no cell."""
        keys = (np.asarray(units, dtype=object), np.asarray(years, dtype="float64"),
                np.asarray(measures, dtype=object), np.asarray(groups, dtype=object))
        at = [level.get_indexer(key) for level, key in zip(self.levels, keys, strict=True)]
        found = np.logical_and.reduce([position >= 0 for position in at])
        codes = np.full(len(found), NO_CELL, dtype=np.int8)
        codes[found] = self.grid[tuple(position[found] for position in at)]
        cell = codes != NO_CELL
        names = np.asarray(LOOKUP_STATES.categories, dtype=object)
        state = np.where(cell, names[np.where(cell, codes // 2, 0)], "none").astype(object)
        return state, cell & (codes % 2 == 1)


def _release(cells: pd.DataFrame, derived: bool, withheld: str = "", decided_under: str = "") -> Release:
    if cells.empty:
        empty = pd.DataFrame(columns=[*KEYS, *CELL_COLUMNS])
        return Release(empty.set_index(KEYS), derived, withheld, decided_under)
    cells = cells.assign(school_year=cells["school_year"].astype("float64"))
    return Release(cells.set_index(KEYS)[CELL_COLUMNS].sort_index(), derived, withheld, decided_under)


def decision_terms(settings: Settings, complementary: bool = True, exact: bool = True) -> str:
    """What a decision is made under besides its cells (the rules, settings and options), as a short digest: a
    decision is reused piece by piece only from one made under the same terms."""
    return hashlib.sha256(f"{DECISION_RULES}|{settings!r}|{complementary}|{exact}".encode()).hexdigest()[:32]


def build_release(schools: pd.DataFrame, metrics: pd.DataFrame, discipline: pd.DataFrame,
                  settings: Settings = DEFAULT_SETTINGS, complementary: bool = True, exact: bool = True,
                  seconds: float = math.inf, earlier: Release | None = None) -> Release:
    """Decide every cell of the district (discipline outcomes and counted metrics) as one release; pieces
    still undecided after ``seconds`` are withheld, and pieces whose inputs are those of a piece of
    ``earlier`` take its decision (:func:`decide`)."""
    cells, derived = release_cells(schools, metrics, discipline)
    before = earlier.cells if earlier is not None else None
    # One decision for every measure: cells that share an n are decided together.
    decided = decide(cells, settings, complementary=complementary, exact=exact, seconds=seconds,
                     earlier=before) if len(cells) else cells
    return _release(decided, derived, decided_under=decision_terms(settings, complementary, exact))


def withheld_release(schools: pd.DataFrame, metrics: pd.DataFrame, discipline: pd.DataFrame, why: str) -> Release:
    """Every cell hidden, n included: the release when no decision could be made (privacy wins)."""
    cells, derived = release_cells(schools, metrics, discipline)
    withheld = cells.assign(state=HIDDEN, n_hidden=True, disclosed=False, piece_withheld=True,
                            piece=pd.Categorical([None] * len(cells)))
    return _release(withheld, derived, why)
