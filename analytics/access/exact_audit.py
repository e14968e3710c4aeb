"""The exact audit of a release (DESIGN §3 rule 3): is a hidden cell the only integer solution?

Bounds propagation (``release_audit.propagate``) finds every cell that interval reasoning pins, but an
integer program can pin more: two sums and a rate band together may leave one integer that no single
constraint isolates. This module states everything a reader knows as one integer program and asks,
for each hidden count (or n), whether it has a second feasible value; the cell is *recovered* when it
has not. The release decision runs it on its own release (``release_decide.decide``) and the attack suite on
what the tables show (``attack._exact``); both state the program with the same :class:`System` rows.

The program, per cell ``i`` with count ``k_i`` and students ``n_i`` (integers):

- known bounds ``lo <= x <= hi`` (released numbers are equal bounds; propagation results are sound);
- ``k_i <= n_i``; a released rate interval ``[v_lo, v_hi]`` (a number, a band, a status level) as
  ``100 k_i - v_lo n_i >= 0`` and ``100 k_i - v_hi n_i <= 0``;
- sums: schools add up to their cluster, clusters to the district, groups to ``ALL`` (counts and
  students alike), and equal n where measures count the same students;
- links across years and between cells given as linear rows (a status change between two years whose
  n are known, a gap and its change): ``lb <= sum(a_j k_j) <= ub``.

How it is decided, cheapest certificate first (HiGHS through ``highspy``, each model passed once and only
its objective, bounds or integrality changed between solves, :class:`_Model`):

1. The program splits into connected components (variables tied by a constraint, pinned variables
   folded into constants); small components are solved together in batches of a few thousand
   variables (they stay independent: a batch's solution is a solution of each of its components).
2. A first integer solution is the candidate value of every cell (the decision knows the true one
   and skips this solve).
3. Linear relaxations pushed away from the candidate (each live cell up or down, random weights):
   where a component's LP optimum is integral it is an integer solution, and a cell with another
   value than its candidate there is not unique (when only fractional components moved, the same
   push is solved over integers). In a large component the pushes run instead within pieces of it
   (the components of its sums alone), then on the neighbourhood of the cells they leave (1, 2, 4
   steps), everything outside held at the candidate and each pushed cell kept within one of it: a
   solution found so is one of the whole program, at a fraction of the cost. A few rounds free
   almost every cell.
4. Each cell left is settled on a growing neighbourhood of its column (1, 2, 4, ... steps) up to its
   whole component: *free* when an integer solution with another value exists that changes only
   the neighbourhood; *unique* when the neighbourhood's own rows (a relaxation: rows reaching outside
   are dropped) leave it one value: ``ceil(LP min) > v - 1`` and ``floor(LP max) < v + 1`` rule a
   side out for sure, otherwise a feasibility solve (``x <= v - 1``, ``x >= v + 1``) does. On the
   whole component this is exact (the same answer as minimising and maximising it over integers).

A solve that hits its time limit (or fails) leaves its cell *undecided*, never safe or recovered:
it is reported (``ExactReport.undecided_vars``), and the release decision treats it as recovered
(privacy wins over a slow solver).
"""

from __future__ import annotations

import ctypes
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field

import highspy
import numpy as np
from scipy.sparse import coo_matrix, csc_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components

TOL = 1e-6


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

    def add_sums(self, rel: np.ndarray, var: np.ndarray, coef: np.ndarray) -> None:
        """Sum relations as memberships (relation id, variable, +1 child / -1 parent): each sums to 0."""
        n_rel = int(rel.max()) + 1 if len(rel) else 0
        self.add(rel, var, coef, np.zeros(n_rel), np.zeros(n_rel))

    def add_at_most(self, k: np.ndarray, n: np.ndarray) -> None:
        """``k <= n`` for each (count, students) pair."""
        rows = np.arange(len(k))
        self.add(np.r_[rows, rows], np.r_[k, n], np.r_[np.ones(len(k)), -np.ones(len(k))],
                 np.full(len(k), -np.inf), np.zeros(len(k)))

    def add_rates(self, k: np.ndarray, n: np.ndarray, v_lo: np.ndarray, v_hi: np.ndarray) -> None:
        """A rate ``100 k / n`` known to lie in ``[v_lo, v_hi]`` (percent), as ``100 k - v_lo n >= 0`` and
        ``100 k - v_hi n <= 0``; bounds of 0 and 100 add nothing and are left out."""
        for side, v, lb, ub in (("lo", v_lo, 0.0, np.inf), ("hi", v_hi, -np.inf, 0.0)):
            at = np.flatnonzero(v > TOL) if side == "lo" else np.flatnonzero(v < 100 - TOL)
            rows = np.arange(len(at))
            self.add(np.r_[rows, rows], np.r_[k[at], n[at]], np.r_[np.full(len(at), 100.0), -v[at]],
                     np.full(len(at), lb), np.full(len(at), ub))

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
    solves: int = 0             # integer programs solved
    lp_solves: int = 0          # linear relaxations solved
    seconds: float = 0.0
    unique: dict[int, float] = field(default_factory=dict)  # target variable -> its only value
    undecided_vars: list[int] = field(default_factory=list)  # targets whose answer hit a limit or a failure

    @property
    def undecided(self) -> int:
        return len(self.undecided_vars)

    def as_dict(self) -> dict:
        return {"targets": self.targets, "audited": self.audited, "components": self.components,
                "largest_component": self.largest_component, "solves": self.solves, "lp_solves": self.lp_solves,
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


_banner_lock = threading.Lock()
_banner_shown = False


def _new_highs() -> highspy.Highs:
    """A HiGHS solver object. The first one a process makes prints a licence banner on the C library's
    standard output, where the command line writes its results (an export to stdout would start with it),
    so that one is made with file descriptor 1 pointed at /dev/null."""
    global _banner_shown
    with _banner_lock:
        if _banner_shown:
            return highspy.Highs()
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                highs = highspy.Highs()
                ctypes.CDLL(None).fflush(None)  # the banner may sit in the C buffer: flush it to /dev/null
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _banner_shown = True
        return highs


class _Model:
    """One HiGHS model (rows ``lb <= a x <= ub``, columns ``lo <= x <= hi``), passed to the solver once
    (``Highs.passModel`` with the CSR matrix); between solves only the objective, the column bounds and the
    integrality change, so a push or a feasibility check costs one HiGHS run, not a model build (building
    one through ``scipy.optimize.milp`` cost about as much as solving it). Presolve stays on (an LP after
    an LP starts from the last basis), output is off, and each run has ``time_limit`` seconds."""

    _OK, _INFEASIBLE = highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kInfeasible

    def __init__(self, a: csr_matrix, lb: np.ndarray, ub: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 time_limit: float):
        n = a.shape[1]
        self.highs = _new_highs()
        self.highs.setOptionValue("output_flag", False)
        self.highs.setOptionValue("presolve", "on")
        self.time_limit, self.n = time_limit, n
        self.cols = np.arange(n, dtype=np.int32)
        self.cost, self.lo, self.hi = np.zeros(n), np.asarray(lo, dtype="float64"), np.asarray(hi, dtype="float64")
        self.integer = True
        a = a.tocsr()
        self.highs.passModel(n, a.shape[0], a.nnz, int(highspy.MatrixFormat.kRowwise),
                             int(highspy.ObjSense.kMinimize), 0.0, self.cost, self.lo, self.hi,
                             np.asarray(lb, dtype="float64"), np.asarray(ub, dtype="float64"),
                             a.indptr.astype(np.int32), a.indices.astype(np.int32), a.data.astype("float64"),
                             np.ones(n, dtype=np.int32))

    def solve(self, c: np.ndarray, integer: bool, lo: np.ndarray | None = None,
              hi: np.ndarray | None = None) -> tuple[str, np.ndarray | None]:
        """("ok", solution) (rounded when ``integer``), ("infeasible", None) or ("undecided", None) when the
        run hit its time limit or failed."""
        if not np.array_equal(c, self.cost):
            self.cost = np.asarray(c, dtype="float64").copy()
            self.highs.changeColsCost(self.n, self.cols, self.cost)
        lo = self.lo if lo is None else lo
        hi = self.hi if hi is None else hi
        if not (np.array_equal(lo, self.lo) and np.array_equal(hi, self.hi)):
            self.lo, self.hi = np.asarray(lo, dtype="float64").copy(), np.asarray(hi, dtype="float64").copy()
            self.highs.changeColsBounds(self.n, self.cols, self.lo, self.hi)
        if integer != self.integer:
            self.integer = integer
            self.highs.changeColsIntegrality(self.n, self.cols, np.full(self.n, int(integer), dtype=np.uint8))
        # The solver's clock runs across runs of one model: the limit is this run's share from now on.
        self.highs.setOptionValue("time_limit", self.highs.getRunTime() + self.time_limit)
        self.highs.run()
        status = self.highs.getModelStatus()
        if status == self._OK:
            x = np.array(self.highs.getSolution().col_value)
            return "ok", (np.round(x) if integer else x)
        if status == self._INFEASIBLE:
            return "infeasible", None
        return "undecided", None


def exact_unique(system: System, targets: np.ndarray, time_limit: float = 10.0, max_component: int = 20000,
                 solution: np.ndarray | None = None, batch: int = 2000, deadline: float = math.inf) -> ExactReport:
    """Which ``targets`` (variable ids) take a single value in every integer solution of ``system``.

    ``solution``: an integer solution known to satisfy ``system`` (the release decision knows the true
    values), used as every target's candidate instead of a first solve. Components larger than
    ``max_component`` variables are not solved and their targets are undecided, as are the targets not
    decided when the calling thread's CPU clock (``time.thread_time``: the solver's own threads and other
    threads of the process do not count) passes ``deadline``."""
    start = time.perf_counter()
    report = ExactReport(targets=int(len(targets)))
    targets = targets[system.lo[targets] < system.hi[targets]]  # pinned ones are the propagation's finding
    a, lb, ub, free = _fold(system)
    if not len(targets) or not len(free):
        report.seconds = time.perf_counter() - start
        return report
    # Components: variables and rows as one bipartite graph.
    n_free, n_rows = len(free), a.shape[0]
    coo = a.tocoo()
    graph = coo_matrix((np.ones(len(coo.row), dtype=np.int8), (coo.col, n_free + coo.row)),
                       shape=(n_free + n_rows,) * 2)
    _, labels = connected_components(graph, directed=False)
    split = _Split(a, lb, ub, system.lo[free], system.hi[free], labels[:n_free], labels[n_free:],
                   np.searchsorted(free, targets), targets, solution[free] if solution is not None else None)
    size = np.bincount(split.col_label, minlength=labels.max() + 1)
    pending: list[int] = []
    for comp in np.unique(split.col_label[split.target_col]).tolist():
        report.components += 1
        report.largest_component = max(report.largest_component, int(size[comp]))
        if size[comp] > max_component:
            report.undecided_vars.extend(split.targets[split.batch([comp])[2]].tolist())
            continue
        pending.append(comp)
    # Batches of whole components, each up to `batch` variables (a large component alone).
    for group in _pack(pending, [int(size[comp]) for comp in pending], batch):
        _run_batch(group, split, time_limit, report, deadline)
    report.seconds = time.perf_counter() - start
    return report


class _Split:
    """The folded program split by component: each component's columns, rows and targets are found by
    slicing orders computed once (a scan of the whole program per batch would cost O(n) each, O(n^2) in
    all at 2,000 schools)."""

    def __init__(self, a: csr_matrix, lb, ub, lo, hi, col_label, row_label, target_col, targets, known):
        self.a, self.lb, self.ub, self.lo, self.hi, self.known = a, lb, ub, lo, hi, known
        self.col_label, self.target_col, self.targets = col_label, target_col, targets
        n_labels = int(max(col_label.max(initial=-1), row_label.max(initial=-1))) + 1
        self.orders = []
        for label in (col_label, row_label, col_label[target_col]):
            order = np.argsort(label, kind="stable")
            self.orders.append((order, np.searchsorted(label[order], np.arange(n_labels + 1))))

    def batch(self, group: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(columns, rows, positions in ``targets``) of the components in ``group``, each sorted."""
        cols, rows, at = (np.sort(np.concatenate([order[start[g]:start[g + 1]] for g in group]))
                          for order, start in self.orders)
        return cols, rows, at


def _pack(items: list, sizes: list[int], limit: int) -> list[list]:
    """``items`` in order, grouped so that each group's sizes add up to at most ``limit`` (an item larger
    than ``limit`` makes a group of its own)."""
    groups, current, filled = [], [], 0
    for item, item_size in zip(items, sizes, strict=True):
        if current and filled + item_size > limit:
            groups.append(current)
            current, filled = [], 0
        current.append(item)
        filled += item_size
    if current:
        groups.append(current)
    return groups


def _run_batch(group: list[int], split: _Split, time_limit: float, report: ExactReport, deadline: float) -> None:
    cols, rows, at = split.batch(group)
    inside = split.targets[at]
    if time.thread_time() > deadline:
        report.undecided_vars.extend(inside.tolist())
        return
    report.audited += len(inside)
    problem = _Batch(_submatrix(split.a, rows, cols)[0], split.lb[rows], split.ub[rows], split.lo[cols], split.hi[cols],
                     split.col_label[cols], time_limit, report, deadline)
    where = np.searchsorted(cols, split.target_col[at])
    if not problem.decide(inside, where, split.known[cols] if split.known is not None else None) and len(group) > 1:
        report.audited -= len(inside)  # no integer solution for the batch: each component on its own
        for comp in group:
            _run_batch([comp], split, time_limit, report, deadline)


def _entries(m: csr_matrix | csc_matrix, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``m.indices`` of the entries of the major slices ``idx`` (rows of a CSR matrix, columns of
    a CSC one), slice after slice, and each slice's length: scipy's fancy indexing builds a new matrix (with
    its checks) for what is here a gather."""
    start = m.indptr[idx]
    length = m.indptr[idx + 1] - start
    return np.repeat(start - np.r_[0, np.cumsum(length)[:-1]], length) + np.arange(length.sum()), length


def _submatrix(a: csr_matrix, rows: np.ndarray, cols: np.ndarray,
               held: np.ndarray | None = None) -> tuple[csr_matrix, np.ndarray]:
    """(``a[rows][:, cols]`` for sorted ``cols``, per row: its entries outside ``cols``), the second as a count,
    or with ``held`` (a value per column) as the sum of those entries times their columns' values. Found by a
    search over the rows' entries only (scipy's column indexing allocates an array as wide as ``a``)."""
    pos, length = _entries(a, rows)
    index = a.indices[pos]
    at = np.searchsorted(cols, index)
    keep = cols[np.minimum(at, len(cols) - 1)] == index if len(cols) else np.zeros(len(at), dtype=bool)
    indptr = np.r_[0, np.cumsum(keep)][np.r_[0, np.cumsum(length)]]
    row = np.repeat(np.arange(len(rows)), length)[~keep]
    weight = np.ones(len(row)) if held is None else a.data[pos][~keep] * held[index[~keep]]
    return (csr_matrix((a.data[pos][keep], at[keep], indptr), shape=(len(rows), len(cols))),
            np.bincount(row, weight, len(rows)))


class _Batch:
    """Independent components solved together; each target is a column of one of them."""

    def __init__(self, a, lb, ub, lo, hi, comp, time_limit: float, report: ExactReport, deadline: float = math.inf):
        self.a, self.lb, self.ub, self.lo, self.hi, self.comp = a.tocsr(), lb, ub, lo, hi, comp
        self.a_csc = self.a.tocsc()
        self.labels = np.unique(comp)
        self.time_limit, self.report, self.deadline = time_limit, report, deadline
        self.rounds, self.piece, self.few = 40, 2000, 10
        self.rng = np.random.default_rng(0)
        self.model: _Model | None = None

    def solve(self, c: np.ndarray, integer: bool, live: np.ndarray | None = None):
        """Solve over the batch (one model, built once). Over integers, the columns of components not
        ``live`` (a mask of columns) are held at the known solution, which leaves only the live ones to
        search; a relaxation leaves them free (they cost nothing there, and the last basis stays valid)."""
        if self.model is None:
            self.model = _Model(self.a, self.lb, self.ub, self.lo, self.hi, self.time_limit)
        lo, hi = self.lo, self.hi
        if integer and live is not None and not live.all():
            lo, hi = np.where(live, lo, self.known), np.where(live, hi, self.known)
        return self.run(self.model, c, integer, lo, hi)

    def within_one(self, cols: np.ndarray, pushed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of ``cols`` (sorted columns holding every ``pushed`` target) with each pushed target kept
        within one of its candidate: a push then gains most by moving many targets one step each instead of
        a few far (a hidden n is bounded only by 1e9), and its vertices sit on integers more often. Tighter
        bounds only shrink the program, so a solution found is still one of it (the pushes within pieces at
        2,000 schools x 6 years: the same targets freed in half the CPU). The known solution may lie outside
        a propagated bound (propagation bounds incidents, which are events, by their n): a push so capped
        can be infeasible, and is then run without the cap."""
        lo, hi = self.lo[cols].copy(), self.hi[cols].copy()
        at, value = np.searchsorted(cols, self.where[pushed]), self.candidate[pushed]
        lo[at], hi[at] = np.maximum(lo[at], value - 1), np.minimum(hi[at], value + 1)
        return lo, hi

    def integral(self, x: np.ndarray) -> np.ndarray:
        """Per column: does its component's part of ``x`` hold integers only (an integer solution there)?"""
        bad = ~np.isfinite(x) | (np.abs(x - np.round(x)) > TOL)
        bad_comp = np.zeros(len(self.labels), dtype=bool)
        bad_comp[np.searchsorted(self.labels, self.comp[bad])] = True
        return ~bad_comp[np.searchsorted(self.labels, self.comp)]

    def decide(self, targets: np.ndarray, where: np.ndarray, known: np.ndarray | None) -> bool:
        """Record unique (and undecided) targets in the report; False when no integer solution was found."""
        if known is None:
            status, known = self.solve(np.zeros(len(self.lo)), integer=True)
            if status != "ok":
                if len(self.labels) == 1:
                    self.report.undecided_vars.extend(int(t) for t in targets)  # nothing can be said
                return False
        self.known, self.targets, self.where, self.candidate = known, targets, where, known[where]
        self.alive = np.ones(len(targets), dtype=bool)
        large = len(self.lo) > self.piece
        if large:  # one large component: pushes within pieces of it and around what they leave
            self.push_pieces()
        # Relaxations pushed away from the candidate (:meth:`direction`) over the whole batch of small
        # components, until two rounds free nothing or so few targets are left that settling each on its
        # neighbourhood costs less. Not over a large component: there one round costs seconds (2,000
        # schools: a 125,000-column LP that warm-starts badly and hit its time limit), and the pushes around
        # the targets left already did its work.
        idle = 0
        for _ in range(0 if large else self.rounds):
            if self.alive.sum() <= self.few or idle >= 2:
                break
            cols = where[self.alive]
            c = np.zeros(len(self.lo))
            c[cols] = self.direction(self.alive)
            live = np.isin(self.comp, self.comp[cols])  # components done need no search
            status, x = self.solve(c, integer=False)
            if status != "ok":
                break
            freed = self.eliminate(x)  # components whose vertex is integral
            if not freed and not self.integral(x)[live].all():  # only fractional ones moved: the same push over integers
                status, x = self.solve(c, integer=True, live=live)
                freed = self.eliminate(x) if status == "ok" else 0
            idle = 0 if freed else idle + 1
        for i in np.flatnonzero(self.alive):
            if self.alive[i] and time.thread_time() > self.deadline:  # out of time: not shown safe
                self.report.undecided_vars.extend(self.targets[self.alive].tolist())
                self.alive[:] = False
            if self.alive[i]:
                self.settle(i)
        return True

    def push_pieces(self) -> None:
        """Pushes within pieces of a large component, everything outside a piece held at the known
        solution: a solution found so is one of the whole program, and one LP over a piece costs far less
        than one over the whole. The pieces are the components of the equality rows alone (the sums: one
        measure's counts, or one source's n, in one year), batched up to ``self.piece`` columns; the
        inequalities (``k <= n``, bands) only need slack across them. Most targets move within their
        piece; the rest are left to the whole component."""
        n = len(self.lo)
        eq = self.a[self.lb == self.ub].tocoo()
        graph = coo_matrix((np.ones(len(eq.row), dtype=np.int8), (eq.col, n + eq.row)),
                           shape=(n + eq.shape[0],) * 2)
        label = connected_components(graph, directed=False)[1][:n]
        order = np.argsort(label, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(label[order]) != 0])
        blocks = np.split(order, starts[1:])
        for group in _pack(blocks, [len(block) for block in blocks], self.piece):
            self.push_held(np.sort(np.concatenate(group)))
        # Targets left need moves across pieces (a count with its n): pushes on the neighbourhood of all of
        # them at once (1, 2, 4 steps), while it stays a small part of the component.
        for radius in (1, 2, 4):
            if self.alive.sum() <= self.few:
                break
            near = self.near(self.where[self.alive], radius)
            if len(near) > n // 4:
                break
            self.push_held(near)

    def push_held(self, piece: np.ndarray) -> None:
        """Pushes of the live targets among the sorted columns ``piece``, every other column held at the known
        solution, until two rounds free nothing or a vertex is fractional."""
        at = np.searchsorted(piece, self.where)
        inside = (at < len(piece)) & (piece[np.minimum(at, len(piece) - 1)] == self.where)
        if not (self.alive & inside).any():
            return  # nothing to push here (a later audit asks about a few cells only)
        model = _Model(*self.held(piece), self.lo[piece], self.hi[piece], self.time_limit)
        idle = 0
        for _ in range(self.rounds):
            live = self.alive & inside
            if not live.any() or idle >= 2 or time.thread_time() > self.deadline:
                break
            c = np.zeros(len(piece))
            c[at[live]] = self.direction(live)
            status, x = self.run(model, c, False, *self.within_one(piece, live))
            if status == "infeasible":  # the known solution breaks a bound here (see within_one): no cap
                status, x = self.run(model, c, False, self.lo[piece], self.hi[piece])
            if status != "ok" or np.any(np.abs(x - np.round(x)) > TOL):
                break
            idle = 0 if self.accept(piece, x) else idle + 1

    def direction(self, live: np.ndarray) -> np.ndarray:
        """Objective weights for the ``live`` targets: up (a target at its lower bound), down (at its upper
        bound) or either way at random, with random weights (targets compete for the same slack: each round
        other ones win)."""
        cols, value = self.where[live], self.candidate[live]
        sign = np.where(value <= self.lo[cols], -1.0,
                        np.where(value >= self.hi[cols], 1.0, self.rng.choice([-1.0, 1.0], len(cols))))
        return sign * self.rng.uniform(0.5, 1.5, len(cols))

    def eliminate(self, x: np.ndarray) -> int:
        """Targets whose value in an integer solution (``x`` where its component is integral) differs from
        their candidate are not unique."""
        freed = self.alive & self.integral(x)[self.where] & (np.abs(x[self.where] - self.candidate) > 0.5)
        self.alive[freed] = False
        return int(freed.sum())

    def settle(self, i: int) -> None:
        """One target left by the pushes, decided on a growing neighbourhood of its column (1, 2, 4, ...
        steps through shared rows) until the neighbourhood is its whole component:

        - *free* when an integer solution with another value exists with everything outside the
          neighbourhood held at the known solution (a solution of the whole program);
        - *unique* when the neighbourhood's own rows alone (a relaxation of the program: rows reaching
          outside are dropped, bounds are sound) leave it one value: LP bounds first, then integer
          feasibility on each side."""
        col = self.where[i]
        whole = int(np.count_nonzero(self.comp == self.comp[col]))
        radius = 1
        while self.alive[i]:
            near = self.near(col, radius)
            complete = len(near) == whole
            if not self.free_near(i, near):
                verdict = self.pinned_near(i, near)
                if verdict == "unique":
                    self.report.unique[int(self.targets[i])] = float(self.candidate[i])
                    self.alive[i] = False
                elif verdict == "undecided" and complete:
                    self.report.undecided_vars.append(int(self.targets[i]))
                    self.alive[i] = False
            if complete:
                break
            radius *= 2
        if self.alive[i]:  # neither shown free nor pinned (a solve failed): not shown safe
            self.report.undecided_vars.append(int(self.targets[i]))
            self.alive[i] = False

    def near(self, col: int | np.ndarray, radius: int) -> np.ndarray:
        """Columns within ``radius`` steps of ``col`` (one or many; a step: to a row holding it, then to that
        row's columns)."""
        mask = np.zeros(len(self.lo), dtype=bool)
        mask[col] = True
        frontier = np.atleast_1d(col)
        for _ in range(radius):
            rows = np.unique(self.a_csc.indices[_entries(self.a_csc, frontier)[0]])
            cols = np.unique(self.a.indices[_entries(self.a, rows)[0]])
            frontier = cols[~mask[cols]]
            if not len(frontier):
                break
            mask[frontier] = True
        return np.flatnonzero(mask)

    def free_near(self, i: int, near: np.ndarray) -> bool:
        """Is there an integer solution with another value of target ``i`` that differs from the known one
        only on ``near``? (Then the target is freed, with every other target the solution moves.)"""
        col, value = self.where[i], self.candidate[i]
        lo, hi = self.lo[near], self.hi[near]
        model: _Model | None = None
        at = int(np.searchsorted(near, col))
        for sense in (-1.0, 1.0):  # push up, then down
            if (value >= hi[at]) if sense < 0 else (value <= lo[at]):
                continue
            model = model or _Model(*self.held(near), lo, hi, self.time_limit)
            c = np.zeros(len(near))
            c[at] = sense
            for integer in (False, True):
                status, x = self.run(model, c, integer)
                if status != "ok" or abs(x[at] - value) < 0.5:
                    break  # not even the relaxation moves it this way
                if np.all(np.abs(x - np.round(x)) <= TOL):
                    self.accept(near, x)
                    return True
        return False

    def pinned_near(self, i: int, near: np.ndarray) -> str | None:
        """"unique" when the rows wholly inside ``near`` leave target ``i`` one integer value; "undecided" when
        a solve hit its limit; None otherwise."""
        col, value = self.where[i], self.candidate[i]
        rows = np.unique(self.a_csc.indices[_entries(self.a_csc, near)[0]])
        sub, outside = _submatrix(self.a, rows, near)
        inside = outside == 0
        real = inside.all()  # no row reaches outside: a solution here is one of the whole program
        rows, sub = rows[inside], sub[inside]
        model: _Model | None = None
        at = int(np.searchsorted(near, col))
        verdict = "unique"
        for below in (True, False):
            lo, hi = self.lo[near].copy(), self.hi[near].copy()
            if below:
                hi[at] = value - 1
            else:
                lo[at] = value + 1
            if lo[at] > hi[at]:
                continue
            c = np.zeros(len(near))
            c[at] = -1.0 if below else 1.0  # the relaxation's reach on that side
            model = model or _Model(sub, self.lb[rows], self.ub[rows], lo, hi, self.time_limit)
            status, x = self.run(model, c, False, lo, hi)
            if status == "infeasible":
                continue
            status, x = self.run(model, np.zeros(len(near)), True, lo, hi)
            if status == "ok":
                if real:
                    self.accept(near, x)
                return None
            if status == "undecided":
                verdict = "undecided"
        return verdict

    def run(self, model: _Model, c: np.ndarray, integer: bool, lo: np.ndarray | None = None,
            hi: np.ndarray | None = None) -> tuple[str, np.ndarray | None]:
        """One solve of ``model`` (:meth:`_Model.solve`), counted in the report."""
        if integer:
            self.report.solves += 1
        else:
            self.report.lp_solves += 1
        return model.solve(c, integer, lo, hi)

    def held(self, cols: np.ndarray) -> tuple[csr_matrix, np.ndarray, np.ndarray]:
        """The rows touching ``cols`` over ``cols`` alone, every other column held at the known solution
        (folded into the rows' bounds): (matrix, lower bounds, upper bounds)."""
        rows = np.unique(self.a_csc.indices[_entries(self.a_csc, cols)[0]])
        sub, const = _submatrix(self.a, rows, cols, held=self.known)
        return sub, self.lb[rows] - const, self.ub[rows] - const

    def accept(self, cols: np.ndarray, x: np.ndarray) -> int:
        """An integer solution ``x`` of ``cols`` with the rest at the known solution: free the targets it moves."""
        full = self.known.copy()
        full[cols] = np.round(x)
        return self.eliminate(full)
