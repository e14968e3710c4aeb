"""The exact audit of a release (DESIGN §3 rule 3): is a hidden cell the only integer solution?

Bounds propagation (``release.propagate``) finds every cell that interval reasoning pins, but an
integer program can pin more: two sums and a rate band together may leave one integer that no single
constraint isolates. This module states everything a reader knows as one integer program and, for
each hidden count (or small n), asks HiGHS (``scipy.optimize.milp``) for its smallest and largest
feasible value; the cell is *recovered* when they are equal.

The program, per cell ``i`` with count ``k_i`` and students ``n_i`` (integers):

- known bounds ``lo <= x <= hi`` (released numbers are equal bounds; propagation results are sound);
- ``k_i <= n_i``; a released rate interval ``[v_lo, v_hi]`` (a number, a band, a status level) as
  ``100 k_i - v_lo n_i >= 0`` and ``100 k_i - v_hi n_i <= 0``;
- sums: schools add up to their cluster, clusters to the district, groups to ``ALL`` (counts and
  students alike), and equal n where measures count the same students;
- links across years and between cells given as linear rows (a status change between two years whose
  n are known, a gap and its change): ``lb <= sum(a_j k_j) <= ub``.

The program splits into connected components (variables tied by a constraint, pinned variables
folded into constants); each component is solved on its own. Rather than two solves per cell, a few
solutions with different objectives are found first: a cell that takes two values in them is not
unique. Each remaining cell gets two feasibility solves (``x <= v - 1`` and ``x >= v + 1``); when
both are infeasible, ``v`` is its only value. (Same answer as minimising and maximising it.) A solve
that hits its time limit counts as "undecided", never as safe or recovered, and is reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components


@dataclass
class System:
    """Linear constraints ``lb <= A x <= ub`` over integer variables with bounds ``lo <= x <= hi``."""

    lo: np.ndarray
    hi: np.ndarray
    rows: list[np.ndarray] = field(default_factory=list)   # row ids of entries
    cols: list[np.ndarray] = field(default_factory=list)   # variable ids of entries
    vals: list[np.ndarray] = field(default_factory=list)
    lb: list[np.ndarray] = field(default_factory=list)
    ub: list[np.ndarray] = field(default_factory=list)
    n_rows: int = 0

    def add(self, row: np.ndarray, col: np.ndarray, val: np.ndarray, lb: np.ndarray, ub: np.ndarray) -> None:
        """Add rows numbered 0.. len(lb) - 1 locally (``row`` gives each entry's local row)."""
        if not len(lb):
            return
        self.rows.append(np.asarray(row, dtype=np.int64) + self.n_rows)
        self.cols.append(np.asarray(col, dtype=np.int64))
        self.vals.append(np.asarray(val, dtype="float64"))
        self.lb.append(np.asarray(lb, dtype="float64"))
        self.ub.append(np.asarray(ub, dtype="float64"))
        self.n_rows += len(lb)

    def matrix(self) -> tuple[csr_matrix, np.ndarray, np.ndarray]:
        if not self.n_rows:
            return csr_matrix((0, len(self.lo))), np.empty(0), np.empty(0)
        a = coo_matrix((np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols))),
                       shape=(self.n_rows, len(self.lo))).tocsr()
        return a, np.concatenate(self.lb), np.concatenate(self.ub)


@dataclass
class ExactReport:
    targets: int = 0            # hidden variables asked about
    audited: int = 0            # targets in a component that was solved
    components: int = 0         # components holding a target
    largest_component: int = 0  # variables in the largest one
    solves: int = 0
    undecided: int = 0          # targets whose answer hit a time limit or a solver failure
    seconds: float = 0.0
    unique: dict[int, float] = field(default_factory=dict)  # target variable -> its only value

    def as_dict(self) -> dict:
        return {"targets": self.targets, "audited": self.audited, "components": self.components,
                "largest_component": self.largest_component, "solves": self.solves,
                "undecided": self.undecided, "recovered": len(self.unique), "seconds": round(self.seconds, 2)}


def _fold(system: System) -> tuple[csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """Constraints over free variables only: pinned variables become constants in lb and ub."""
    a, lb, ub = system.matrix()
    fixed = system.lo == system.hi
    const = a[:, np.flatnonzero(fixed)] @ system.lo[fixed] if fixed.any() else np.zeros(a.shape[0])
    free = np.flatnonzero(~fixed)
    a_free = a[:, free].tocsr()
    keep = np.diff(a_free.indptr) > 0
    return a_free[keep], (lb - const)[keep], (ub - const)[keep], free


def _solve(c, a, lb, ub, lo, hi, time_limit: float):
    res = milp(c, integrality=np.ones(len(c)), bounds=Bounds(lo, hi),
               constraints=LinearConstraint(a, lb, ub) if a.shape[0] else (),
               options={"time_limit": time_limit, "presolve": True})
    if res.status == 0:
        return "ok", np.round(res.x)
    if res.status == 2:
        return "infeasible", None
    return "undecided", None


def exact_unique(system: System, targets: np.ndarray, time_limit: float = 10.0,
                 max_component: int = 20000) -> ExactReport:
    """Which ``targets`` (variable ids) take a single value in every integer solution of ``system``."""
    start = time.perf_counter()
    report = ExactReport(targets=int(len(targets)))
    targets = targets[system.lo[targets] < system.hi[targets]]  # pinned ones are the propagation's finding
    a, lb, ub, free = _fold(system)
    if not len(targets) or not len(free):
        report.seconds = time.perf_counter() - start
        return report
    local = np.full(len(system.lo), -1)
    local[free] = np.arange(len(free))
    # Components: variables and rows as one bipartite graph.
    n_free, n_rows = len(free), a.shape[0]
    coo = a.tocoo()
    graph = coo_matrix((np.ones(len(coo.row), dtype=np.int8), (coo.col, n_free + coo.row)),
                       shape=(n_free + n_rows,) * 2)
    _, labels = connected_components(graph, directed=False)
    target_local = local[targets]
    for comp in np.unique(labels[target_local]):
        cols = np.flatnonzero(labels[:n_free] == comp)
        rows = np.flatnonzero(labels[n_free:] == comp)
        inside = targets[labels[target_local] == comp]
        report.components += 1
        report.largest_component = max(report.largest_component, len(cols))
        if len(cols) > max_component:
            report.undecided += len(inside)
            continue
        report.audited += len(inside)
        _component(a[rows][:, cols], lb[rows], ub[rows], system.lo[free[cols]], system.hi[free[cols]],
                   {int(t): int(np.searchsorted(cols, local[t])) for t in inside}, time_limit, report)
    report.seconds = time.perf_counter() - start
    return report


def _component(a, lb, ub, lo, hi, where: dict[int, int], time_limit: float, report: ExactReport) -> None:
    """Decide uniqueness of each target (global id -> column here) in one component."""
    rng = np.random.default_rng(0)
    candidate: dict[int, float] = {}
    alive = set(where)
    # Solutions pushed in random directions (each target up or down): most targets that can move show
    # two values within a few solves.
    for attempt in range(8):
        c = np.zeros(len(lo))
        if attempt:
            pushed = [where[t] for t in alive]
            c[pushed] = rng.choice([-1.0, 1.0], len(pushed))
        status, x = _solve(c, a, lb, ub, lo, hi, time_limit)
        report.solves += 1
        if status != "ok":
            if not candidate:
                report.undecided += len(alive)  # no integer solution found: nothing can be said
                return
            continue
        before = len(alive)
        _eliminate(x, where, candidate, alive)
        if not alive or (attempt > 2 and len(alive) == before):
            break
    for target in sorted(alive):
        if target not in alive:
            continue
        col, value = where[target], candidate[target]
        unique = True
        for side in ("below", "above"):
            b_lo, b_hi = lo.copy(), hi.copy()
            if side == "below":
                b_hi[col] = value - 1
            else:
                b_lo[col] = value + 1
            if b_lo[col] > b_hi[col]:
                continue
            status, x = _solve(np.zeros(len(lo)), a, lb, ub, b_lo, b_hi, time_limit)
            report.solves += 1
            if status == "ok":
                _eliminate(x, where, candidate, alive)
                unique = False
                break
            if status == "undecided":
                report.undecided += 1
                unique = False
                break
        if unique and target in alive:
            report.unique[target] = value
            alive.discard(target)


def _eliminate(x: np.ndarray, where: dict[int, int], candidate: dict[int, float], alive: set[int]) -> None:
    """Record a solution: a target whose value differs from an earlier solution's is not unique."""
    for target in list(alive):
        value = float(x[where[target]])
        if target not in candidate:
            candidate[target] = value
        elif candidate[target] != value:
            alive.discard(target)
