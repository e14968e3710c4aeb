"""The audits of a release: which hidden counts or n a reader of it can pin to a single integer.

Bounds propagation over the sums, the bands and 0 <= k <= n, rounded to integers (:func:`audit`: the same attack
the privacy-attack suite runs), and, for what propagation leaves, the release's own integer program
(:func:`exact_system`: the same sums, shared n, ``k <= n`` and bands, over integers; the program the attack suite
states, :mod:`analytics.access.exact_audit`), where a hidden count or n that is its only integer solution is
pinned (:func:`exact_pinned`; two sums and a band together can leave one value that no single constraint
isolates). A solve that hits its time limit counts as pinned: privacy wins over a slow solver.

Speed: each audit after the first propagates again only the hidden variables a new suppression can reach, and
within a propagation only sums with a member that moved; the decisions are the same as a full propagation each
time. The exact audit starts from the true values (a solution, so no solve is needed to find one) and frees most
cells with a few linear relaxations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analytics.access.release_cells import CODED_HIGH, CODED_LOW, _Problem
from analytics.config import Settings

if TYPE_CHECKING:  # the exact audit (HiGHS, scipy.sparse: 0.6 s to import) is imported when a release is decided
    from analytics.access.exact_audit import System

BIG = 1e9  # "no upper bound" for a hidden n; sums of thousands of these stay exact in float64


# --- bounds propagation over sums, bands and 0 <= k <= n --------------------------------------------------


def propagate(lo: np.ndarray, hi: np.ndarray, rel: np.ndarray, var: np.ndarray, coef: np.ndarray,
              pairs: tuple[np.ndarray, np.ndarray], low_band: tuple[np.ndarray, np.ndarray, float],
              high_band: tuple[np.ndarray, np.ndarray, float], max_rounds: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Tighten integer bounds [lo, hi] of every variable until nothing changes.

    Constraints: each relation sum(coef * x) = 0; k <= n for each (k, n) pair; k <= low * n for
    low-coded cells and k >= high * n for high-coded ones. Interval (bounds-consistency) propagation,
    the usual audit for cell suppression in statistical disclosure control (Hundepool et al.,
    *Statistical Disclosure Control*, 2012, §5.4): a variable whose bounds meet is disclosed.

    A work queue (the AC-3 scheme, Mackworth 1977): a constraint none of whose variables moved since it was
    last applied would give the bounds it gave then (already applied; bounds only tighten), so each round
    applies only the sums holding a variable the last round moved, and only the (k, n) pairs and bands of
    the variables moved since (by the last round, this round's sums or an earlier step of this round),
    and rounds only those. The rounds, and so the fixpoint, are those of applying every constraint each
    round.
    """
    lo, hi = lo.astype("float64").copy(), hi.astype("float64").copy()
    k_of, n_of = pairs
    lk, ln, low = low_band
    hk, hn, high = high_band
    n_vars = len(lo)
    n_rel = int(rel.max()) + 1 if len(rel) else 0
    # Memberships sorted by variable, so each variable's bound from its sums is one reduceat.
    order = np.argsort(var, kind="stable")
    var_s, rel_s, child_s = var[order], rel[order], coef[order] > 0
    active = np.ones(len(var_s), dtype=bool)  # memberships of the sums to apply this round
    moved = np.ones(n_vars, dtype=bool)       # variables moved since their pairs and bands were applied
    for _ in range(max_rounds):
        old_lo, old_hi = lo.copy(), hi.copy()
        if n_rel and active.any():
            _tighten_by_sums(lo, hi, var_s[active], rel_s[active], child_s[active], n_rel)
            moved[var_s[active]] = True
        # Pairs and bands holding a variable that may have moved, each step adding the variables it wrote.
        # Each cell has its own count variable (k_of, lk and hk hold no repeats): plain assignment there,
        # the slower unbuffered ``at`` only where a shared n is written.
        at = np.flatnonzero(moved[k_of] | moved[n_of])
        hi[k_of[at]] = np.minimum(hi[k_of[at]], hi[n_of[at]])
        np.maximum.at(lo, n_of[at], lo[k_of[at]])
        moved[n_of[at]] = True
        if len(lk):
            at = np.flatnonzero(moved[lk] | moved[ln])
            hi[lk[at]] = np.minimum(hi[lk[at]], np.floor(low * hi[ln[at]] + 1e-9))
            np.maximum.at(lo, ln[at], np.ceil(lo[lk[at]] / low - 1e-9) if low > 0 else lo[ln[at]])
            moved[lk[at]], moved[ln[at]] = True, True
        if len(hk):
            at = np.flatnonzero(moved[hk] | moved[hn])
            lo[hk[at]] = np.maximum(lo[hk[at]], np.ceil(high * lo[hn[at]] - 1e-9))
            np.minimum.at(hi, hn[at], np.floor(hi[hk[at]] / high + 1e-9))
            moved[hk[at]], moved[hn[at]] = True, True
        near = np.flatnonzero(moved)  # every variable written this round
        lo[near] = np.maximum(np.ceil(lo[near] - 1e-9), 0.0)  # every variable is a count
        hi[near] = np.minimum(np.floor(hi[near] + 1e-9), BIG)
        crossed = near[lo[near] > hi[near]]  # contradictory sums (an assumed sum that does not hold): keep the old bounds
        lo[crossed], hi[crossed] = old_lo[crossed], old_hi[crossed]
        changed = near[(lo[near] != old_lo[near]) | (hi[near] != old_hi[near])]
        # Only unbounded variables still moving (two hidden n trading bounds of ~1e9): nothing can pin.
        if not len(changed) or (hi[changed] - lo[changed]).min() > 1e6:
            break
        # A sum none of whose members moved would give the bounds it gave last round (already applied,
        # and bounds only tighten): only sums, pairs and bands with a moved member are applied again. A
        # variable whose bounds crossed counts as moved (the bounds it was given were not kept, so its
        # constraints give them again): a contradiction costs its own constraints each round, not a sweep.
        moved[:] = False
        moved[changed], moved[crossed] = True, True
        touched = np.zeros(n_rel, dtype=bool)
        touched[rel_s[moved[var_s]]] = True
        active = touched[rel_s]
    return lo, hi


def _tighten_by_sums(lo: np.ndarray, hi: np.ndarray, var: np.ndarray, rel: np.ndarray, child: np.ndarray,
                     n_rel: int, chunk: int = 1 << 20) -> None:
    """One round over sums (children add up to the parent; memberships sorted by variable, whole sums
    only): each member's bounds from the bounds of the others, intersected into lo, hi in place.

    Memberships are taken ``chunk`` at a time (cut where the variable changes), first for each sum's
    interval, then for each member's bounds: besides the members' contributions, the temporaries stay a
    chunk long (at 2,000 schools x 6 years there are tens of millions of memberships, and eight arrays
    that long were most of the propagation's memory)."""
    starts = np.flatnonzero(np.r_[True, var[1:] != var[:-1]])
    first = np.minimum(np.searchsorted(starts, np.arange(0, len(var), chunk)), len(starts) - 1)
    cuts = np.unique(np.r_[starts[first], len(var)])
    pieces = list(zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True))

    def contribution(i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Members i..j's signed contributions to their sums, as intervals."""
        lo_v, hi_v, c = lo[var[i:j]], hi[var[i:j]], child[i:j]
        return np.where(c, lo_v, -hi_v), np.where(c, hi_v, -lo_v)

    sum_lo, sum_hi = np.zeros(n_rel), np.zeros(n_rel)
    parts = []
    for i, j in pieces:
        a_lo, a_hi = contribution(i, j)
        sum_lo += np.bincount(rel[i:j], a_lo, n_rel)
        sum_hi += np.bincount(rel[i:j], a_hi, n_rel)
        parts.append((a_lo, a_hi))
    new_lo_all, new_hi_all = [], []
    for (i, j), (a_lo, a_hi) in zip(pieces, parts, strict=True):  # bounds from the sums at the round's start
        r_lo = sum_lo[rel[i:j]] - a_lo  # the other members' contributions
        r_hi = sum_hi[rel[i:j]] - a_hi
        c = child[i:j]
        at = starts[np.searchsorted(starts, i):np.searchsorted(starts, j)] - i
        new_lo_all.append(np.maximum.reduceat(np.where(c, -r_hi, r_lo), at))
        new_hi_all.append(np.minimum.reduceat(np.where(c, -r_lo, r_hi), at))
    targets = var[starts]
    lo[targets] = np.maximum(lo[targets], np.concatenate(new_lo_all))
    hi[targets] = np.minimum(hi[targets], np.concatenate(new_hi_all))


@dataclass
class Audit:
    lo: np.ndarray
    hi: np.ndarray
    disclosed: np.ndarray  # variable indices of hidden counts or n pinned to one integer


def _bands(cells: pd.DataFrame, state: np.ndarray, settings: Settings):
    low = state == CODED_LOW
    high = state == CODED_HIGH
    return ((cells["k_var"].to_numpy()[low], cells["n_var"].to_numpy()[low], settings.privacy_low_pct / 100),
            (cells["k_var"].to_numpy()[high], cells["n_var"].to_numpy()[high], settings.privacy_high_pct / 100))


def audit(problem: _Problem, hidden: np.ndarray, state: np.ndarray, settings: Settings,
          previous: Audit | None = None, dirty: np.ndarray | None = None) -> Audit:
    """The attack on the decision: which hidden variables are pinned to a single integer?

    With a ``previous`` audit and the variables whose suppression changed since (``dirty``), only the
    part of the release that can feel the change is propagated again (see :func:`_touched`); every
    other variable keeps its bounds."""
    cells = problem.cells
    k_var, n_var = cells["k_var"].to_numpy(), cells["n_var"].to_numpy()
    lo = np.where(hidden, 0.0, problem.k_true)
    hi = np.where(hidden, BIG, problem.k_true)
    if previous is None or dirty is None:
        low, high = _bands(cells, state, settings)
        lo, hi = propagate(lo, hi, problem.rel, problem.var, problem.coef, (k_var, n_var), low, high)
    elif len(dirty):
        lo, hi = previous.lo.copy(), previous.hi.copy()
        inside, members, pairs = _touched(problem, hidden, dirty)
        local = np.cumsum(inside) - 1
        rel = np.unique(problem.rel[members], return_inverse=True)[1]
        sub_cells = pd.DataFrame({"k_var": local[k_var[pairs]], "n_var": local[n_var[pairs]]})
        low, high = _bands(sub_cells, state[pairs], settings)
        sub_lo, sub_hi = propagate(np.where(hidden, 0.0, problem.k_true)[inside],
                                   np.where(hidden, BIG, problem.k_true)[inside], rel,
                                   local[problem.var[members]], problem.coef[members],
                                   (sub_cells["k_var"].to_numpy(), sub_cells["n_var"].to_numpy()), low, high)
        lo[inside], hi[inside] = sub_lo, sub_hi
    else:
        lo, hi = previous.lo, previous.hi
    disclosed = np.flatnonzero(hidden & (lo == hi))
    return Audit(lo, hi, disclosed)


def _touched(problem: _Problem, hidden: np.ndarray, dirty: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a change at the ``dirty`` variables can reach: (variables, memberships, cells) to propagate again.

    A released variable is a constant (its bounds are its value), so bounds travel only between hidden
    variables: through a sum holding both, or from a hidden count to its hidden n. The hidden variables
    connected to a dirty one that way, the sums they are in (with their released members as constants)
    and their (k, n) pairs are all that can move; everything else keeps the bounds it had."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n_vars = len(hidden)
    n_rel = int(problem.rel.max()) + 1 if len(problem.rel) else 0
    k_var, n_var = problem.cells["k_var"].to_numpy(), problem.cells["n_var"].to_numpy()
    in_sum = hidden[problem.var]
    both = hidden[k_var] & hidden[n_var]
    rows = np.concatenate([problem.var[in_sum], k_var[both]])
    cols = np.concatenate([n_vars + problem.rel[in_sum], n_var[both]])
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n_vars + n_rel,) * 2)
    _, labels = connected_components(graph, directed=False)
    touched = np.zeros(labels.max() + 1, dtype=bool)
    touched[labels[dirty]] = True
    reached = touched[labels]
    var_reached = hidden & reached[:n_vars]
    members = reached[n_vars + problem.rel]  # every member of a sum that holds a reached variable
    pairs = var_reached[k_var] | var_reached[n_var]
    inside = var_reached.copy()
    inside[problem.var[members]] = True
    inside[k_var[pairs]] = True
    inside[n_var[pairs]] = True
    return inside, members, pairs


# --- the exact audit: the release's own integer program ---------------------------------------------------


def exact_system(problem: _Problem, state: np.ndarray, settings: Settings, lo: np.ndarray,
                 hi: np.ndarray) -> System:
    """What a reader of the release knows, as an integer program (:mod:`analytics.access.exact_audit`, the
    same rows the attack suite states): the sums for counts and n (with shared n), ``k <= n`` (not for
    incidents, which are events), each band as ``100 k <= low * n`` or ``100 k >= high * n``, released
    variables pinned to their values and hidden ones within their propagated bounds ``[lo, hi]``."""
    from analytics.access.exact_audit import System

    c = problem.cells
    k_var, n_var = c["k_var"].to_numpy(), c["n_var"].to_numpy()
    system = System(lo.astype("float64"), hi.astype("float64"))
    system.add_sums(problem.rel, problem.var, problem.coef)
    counts = c["measure"].to_numpy() != "incidents"
    system.add_at_most(k_var[counts], n_var[counts])
    system.add_rates(k_var, n_var, np.where(state == CODED_HIGH, settings.privacy_high_pct, 0.0),
                     np.where(state == CODED_LOW, settings.privacy_low_pct, 100.0))
    return system


def exact_unique(*args, **kwargs):
    """:func:`analytics.access.exact_audit.exact_unique`, its module imported on the first decision."""
    from analytics.access.exact_audit import exact_unique as unique

    return unique(*args, **kwargs)


def exact_pinned(problem: _Problem, hidden: np.ndarray, state: np.ndarray, settings: Settings, result: Audit,
                 targets: np.ndarray, time_limit: float = 10.0, deadline: float = math.inf) -> np.ndarray:
    """The ``targets`` (hidden counts and n) that are the only integer value of the release's program, or
    whose answer hit the solver's ``time_limit`` or came after the CPU clock passed ``deadline`` (not
    shown safe, so treated as pinned: privacy wins).

    The decision knows the true values, a solution of the program, so no solve is needed to find one
    (:func:`analytics.access.exact_audit.exact_unique`); only the components holding a target are solved."""
    system = exact_system(problem, state, settings, result.lo, result.hi)
    report = exact_unique(system, targets, time_limit, max_component=len(hidden) + 1, solution=problem.k_true,
                          deadline=deadline)
    return np.array(sorted({*report.unique, *report.undecided_vars}), dtype=np.int64)
