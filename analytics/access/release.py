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
   cells of measures that count the same students share one ``n`` (:func:`shared_denominators`).
   The release is audited as a whole by bounds propagation over those sums, the bands and 0 <= k <= n,
   rounded to integers (the same attack the privacy-attack suite runs): when a hidden count or ``n``
   is pinned to a single integer, one more released cell of a sum that pins it is hidden (the one
   with the fewest students, never the parent when a child will do), and the audit runs again.
   Changes across years and gaps add nothing to that audit because they are released only when all
   their cells are released exactly. Once propagation pins nothing, the release's own integer program
   (:func:`exact_system`: the same sums, shared n, ``k <= n`` and bands, over integers; the program the
   attack suite states, :mod:`analytics.access.exact_audit`) is audited exactly: a hidden count or n that
   is its only integer solution (two sums and a band together can leave one value that no single
   constraint isolates) is opened the same way (a released member of a sum holding it, fewest students,
   children first), and both audits run again until neither finds anything. A solve that hits its time
   limit counts as pinned: privacy wins over a slow solver.

Speed: each audit after the first propagates again only the hidden variables a new suppression can
reach, and within a propagation only sums with a member that moved; the decisions are the same as a
full propagation each time. The exact audit starts from the true values (a solution, so no solve is
needed to find one) and frees most cells with a few linear relaxations; after a suppression, which only
relaxes the program, it asks again only about the cells it pinned and the newly hidden ones. A piece whose
decision takes more than :data:`PIECE_SECONDS` of the deciding thread's CPU, or runs past the whole
decision's deadline, or whose audit leaves a cell pinned or undecided, is withheld whole (every cell
hidden, n included: safe without an audit) rather than the district.

Most imports change a few pieces (one year's file, one source, some schools), so a new decision starts from
the newest stored one made under the same rules and settings: each piece is fingerprinted with everything
its decision reads (:func:`piece_fingerprints`: its cells, every column in row order, with the settings and
these rules), and a piece whose fingerprint, keys, counts and n all match a piece of that decision, which was
not withheld, takes its cells' states from it (:func:`_reused`); every other piece is decided. Deciding a
piece depends on nothing but those inputs, so the release is the one a whole decision gives, cell for cell.
"""

from __future__ import annotations

import hashlib
import io
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import sqlalchemy as sa

from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.data import schema
from analytics.data.catalog import RACE_GROUPS
from analytics.data.derived import discipline_with_all, suspension_counts

if TYPE_CHECKING:  # the exact audit (HiGHS, scipy.sparse: 0.6 s to import) is imported when a release is decided
    from analytics.access.exact_audit import System

EXACT, CODED_LOW, CODED_HIGH, HIDDEN = "exact", "low", "high", "hidden"
LOOKUP_STATES = pd.CategoricalDtype([EXACT, CODED_LOW, CODED_HIGH, HIDDEN, "none"])  # "none": not a cell
KEYS = ["unit", "school_year", "measure", "student_group"]
# `piece`: the fingerprint of the inputs of the piece the cell was decided in (a category), so a later decision
# can reuse the pieces whose inputs did not change.
CELL_COLUMNS = ["k", "n", "state", "n_hidden", "disclosed", "piece_withheld", "piece"]
LOOKUP_COLUMNS = ["state", "n_hidden"]  # what :meth:`Release.states` reads
# Discipline outcomes (DESIGN §7 names) and the discipline columns they count; all share `enrolled`.
DISCIPLINE_MEASURES = {"suspension": None, "iss": "students_iss", "oss": "students_oss",
                       "expulsion": "students_expelled", "law_referral": "law_referrals", "incidents": "incidents"}
SENSITIVE = frozenset(DISCIPLINE_MEASURES)
PARTITIONS = (tuple(RACE_GROUPS), ("FEMALE", "MALE"))
BIG = 1e9  # "no upper bound" for a hidden n; sums of thousands of these stay exact in float64
# CPU seconds (of the deciding thread) one piece's decision may take before the piece is withheld whole
# (:func:`_withheld_piece`): the largest piece at 2,000 schools x 6 years takes about a minute.
PIECE_SECONDS = 600.0


# --- cells ----------------------------------------------------------------------------------------------


def discipline_cells(discipline: pd.DataFrame) -> pd.DataFrame:
    """School cells of every discipline outcome (ALL summed from race rows where a file has none)."""
    if discipline.empty:
        return pd.DataFrame(columns=["school_id", "school_year", "measure", "student_group", "k", "n", "n_source"])
    full, _ = discipline_with_all(discipline)
    frames = []
    for measure, column in DISCIPLINE_MEASURES.items():
        count = suspension_counts(full) if column is None else full.get(column)
        if count is None or not count.notna().any():
            continue
        frames.append(full[["school_id", "school_year", "student_group"]].assign(
            measure=measure, k=count.astype("float64"), n=full["enrolled"].astype("float64"), n_source="enrolled"))
    return pd.concat(frames, ignore_index=True)


def metric_cells(metrics: pd.DataFrame) -> pd.DataFrame:
    """School cells of counted metrics (value-only rows have no cell)."""
    cells = metrics[["school_id", "school_year", "metric", "student_group", "numerator", "denominator"]].rename(
        columns={"metric": "measure", "numerator": "k", "denominator": "n"})
    cells["n_source"] = cells["measure"]
    return cells.astype({"k": "float64", "n": "float64"})


def pooled_cells(school_cells: pd.DataFrame, schools: pd.DataFrame) -> pd.DataFrame:
    """School cells plus pooled cluster and district cells (sums over schools whose counts are known)."""
    known = school_cells.dropna(subset=["k", "n"])
    known = known[known["n"] > 0].merge(schools[["school_id", "cluster"]], on="school_id", how="inner")
    by = ["school_year", "measure", "student_group", "n_source"]
    clusters = known.groupby(["cluster", *by], as_index=False)[["k", "n"]].sum()
    clusters["unit"] = "cluster:" + clusters["cluster"]
    district = known.groupby(by, as_index=False)[["k", "n"]].sum().assign(unit="district", cluster=np.nan)
    known = known.rename(columns={"school_id": "unit"})
    out = pd.concat([known, clusters, district], ignore_index=True)
    out["level"] = np.where(out["unit"] == "district", 2, np.where(out["unit"].str.startswith("cluster:"), 1, 0))
    return out[["unit", "cluster", "level", *by, "k", "n"]]


def shared_denominators(cells: pd.DataFrame, agreement: float = 0.95) -> pd.DataFrame:
    """School cells with ``n_source`` naming the students behind n, shared by every measure whose n is the
    same on at least ``agreement`` of the school, year and group rows they both have (discipline outcomes
    share `enrolled`; attendance and chronic absence usually count the same enrolment; a file may give
    reading and mathematics the same tested students). Those measures are decided on one n."""
    keyed = cells.drop_duplicates(["school_id", "school_year", "student_group", "measure"])
    wide = keyed.pivot(index=["school_id", "school_year", "student_group"], columns="measure", values="n")
    measures = [str(m) for m in wide.columns]
    parent = {m: m for m in measures}

    def root(m: str) -> str:
        while parent[m] != m:
            m = parent[m]
        return m

    values = wide.to_numpy(dtype="float64")
    for i in range(len(measures)):
        for j in range(i + 1, len(measures)):
            both = ~np.isnan(values[:, i]) & ~np.isnan(values[:, j])
            if both.any() and (values[both, i] == values[both, j]).mean() >= agreement:
                ra, rb = sorted((root(measures[i]), root(measures[j])))
                parent[rb] = ra
    members: dict[str, list[str]] = {}
    for m in measures:
        members.setdefault(root(m), []).append(m)
    # A source holding a discipline outcome is the discipline table's `enrolled`; a metric alone keeps its name.
    name = {m: "enrolled" if any(x in SENSITIVE for x in members[root(m)]) else root(m) for m in measures}
    return cells.assign(n_source=cells["measure"].map(name))


# --- the audit: bounds propagation over sums, bands and 0 <= k <= n ----------------------------------------


@dataclass
class _Problem:
    cells: pd.DataFrame        # KEYS, level, k, n, k_var, n_var
    k_true: np.ndarray         # per variable (k vars then n vars)
    rel: np.ndarray            # membership: relation id
    var: np.ndarray            # membership: variable index
    coef: np.ndarray           # +1 child, -1 parent
    size: np.ndarray           # per variable: students behind it (to choose what to hide)
    parent: np.ndarray         # per membership: is the parent of its relation


def _codes(cells: pd.DataFrame, columns: list[str]) -> dict[str, tuple[np.ndarray, int]]:
    """Integer codes of key columns, numbered in sorted order (so codes sort as the values do); -1 for NaN."""
    out = {}
    for column in columns:
        codes, uniques = pd.factorize(cells[column], sort=True)
        out[column] = (codes.astype(np.int64), max(len(uniques), 1))
    return out


def _key(codes: dict[str, tuple[np.ndarray, int]], columns: list[str], rows: np.ndarray, missing: int) -> np.ndarray:
    """One int64 per row for a tuple of coded columns (mixed radix keeps their sort order); `missing` where a
    column is NaN (callers pass different values for the two sides of a match, so NaN never matches)."""
    key = np.zeros(len(rows), dtype=np.int64)
    unknown = np.zeros(len(rows), dtype=bool)
    for column in columns:
        code, base = codes[column]
        key = key * base + code[rows]
        unknown |= code[rows] < 0
    key[unknown] = missing
    return key


def _relations(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum relations as memberships (relation id, cell row, coefficient) for counts; n uses n_var."""
    rels: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    idx = cells.reset_index(drop=True)
    codes = _codes(idx, ["unit", "cluster", "school_year", "measure", "student_group"])
    level = idx["level"].to_numpy()
    schools, clusters, district = (np.flatnonzero(level == i) for i in (0, 1, 2))
    # Hierarchy: school cells -> cluster cell (same cluster, year, measure, group); cluster cells -> district.
    cell_key = ["school_year", "measure", "student_group"]
    next_id = 0
    for children, parents, by in ((schools, clusters, ["cluster", *cell_key]), (clusters, district, cell_key)):
        pos = pd.Index(_key(codes, by, parents, -3)).get_indexer(_key(codes, by, children, -2))
        found = pos >= 0
        rels.append((pos[found] + next_id, children[found], np.ones(found.sum())))
        rels.append((np.arange(len(parents)) + next_id, parents, -np.ones(len(parents))))
        next_id += len(parents)
    # Partitions: race groups (and female + male) add up to ALL, when the counts say so exactly.
    unit_key = ["unit", "school_year", "measure"]
    group = idx["student_group"].to_numpy(dtype=object)
    alls = np.flatnonzero(group == "ALL")
    all_pos = pd.Index(_key(codes, unit_key, alls, -3))
    k, n = idx["k"].to_numpy(dtype="float64"), idx["n"].to_numpy(dtype="float64")
    for members in PARTITIONS:
        part = np.flatnonzero(np.isin(group, list(members)))
        if not len(part) or not len(alls):
            continue
        sums, which = np.unique(_key(codes, unit_key, part, -2), return_inverse=True)  # sorted, as groupby
        part_k, part_n = np.bincount(which, k[part], len(sums)), np.bincount(which, n[part], len(sums))
        at = all_pos.get_indexer(sums)
        row = alls[np.where(at >= 0, at, 0)]
        exact = (at >= 0) & (part_k == k[row]) & (part_n == n[row])
        if not exact.any():
            continue
        epos = np.cumsum(exact) - 1
        found = exact[which]
        rels.append((epos[which[found]] + next_id, part[found], np.ones(found.sum())))
        rels.append((np.arange(exact.sum()) + next_id, row[exact], -np.ones(exact.sum())))
        next_id += int(exact.sum())
    rel = np.concatenate([r[0] for r in rels]).astype(np.int64)
    row = np.concatenate([r[1] for r in rels]).astype(np.int64)
    coef = np.concatenate([r[2] for r in rels])
    return rel, row, coef


def _problem(cells: pd.DataFrame) -> _Problem:
    cells = cells.reset_index(drop=True).copy()
    n_keys = ["unit", "school_year", "student_group", "n_source", "n"]
    cells["k_var"] = np.arange(len(cells))
    # Cells of one unit, year and group with the same n of the same source share one n variable (numbered
    # in order of first appearance): an n hidden in one cell and shown in another would be given back.
    codes = {c: (pd.factorize(cells[c], use_na_sentinel=False)[0].astype(np.int64), 0) for c in n_keys}
    codes = {c: (code, int(code.max()) + 1 if len(code) else 1) for c, (code, _) in codes.items()}
    shared_n = pd.factorize(_key(codes, n_keys, np.arange(len(cells)), -1))[0]
    cells["n_var"] = len(cells) + shared_n
    n_vars = cells["n_var"].max() - len(cells) + 1 if len(cells) else 0
    true = np.concatenate([cells["k"].to_numpy(), np.zeros(n_vars)])
    true[cells["n_var"].to_numpy()] = cells["n"].to_numpy()
    size = true.copy()
    size[cells["k_var"].to_numpy()] = cells["n"].to_numpy()
    rel, row, coef = _relations(cells)
    # Each relation appears for counts (k vars) and for students (n vars).
    n_rel = rel.max() + 1 if len(rel) else 0
    all_rel = np.concatenate([rel, rel + n_rel])
    all_var = np.concatenate([cells["k_var"].to_numpy()[row], cells["n_var"].to_numpy()[row]])
    all_coef = np.concatenate([coef, coef])
    # Duplicate n memberships (a shared n var in the same relation twice) would double count: drop them.
    frame = pd.DataFrame({"rel": all_rel, "var": all_var, "coef": all_coef}).drop_duplicates()
    frame = frame[frame.groupby("rel")["var"].transform("size") > 1]
    return _Problem(cells, true, frame["rel"].to_numpy(), frame["var"].to_numpy(), frame["coef"].to_numpy(),
                    size, frame["coef"].to_numpy() < 0)


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


def _primary(cells: pd.DataFrame, settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: state (exact, low, high, hidden) and whether its n is hidden."""
    k, n = cells["k"].to_numpy(), cells["n"].to_numpy()
    small = n < settings.privacy_min_n
    sensitive = cells["measure"].isin(SENSITIVE).to_numpy() & (k >= 1) & (k <= 9)
    rate = 100 * k / np.where(n > 0, n, np.nan)
    coded = (rate <= settings.privacy_low_pct) | (rate >= settings.privacy_high_pct)
    # A band that admits one count given n ("<= 5.0%" of 15 students is 0) hides the cell, n included.
    pinned = coded & (n * settings.privacy_low_pct / 100 < 1) & (n * (100 - settings.privacy_high_pct) / 100 < 1)
    small = small | pinned
    state = np.select([small | sensitive, rate <= settings.privacy_low_pct, rate >= settings.privacy_high_pct],
                      [HIDDEN, CODED_LOW, CODED_HIGH], default=EXACT).astype(object)
    return state, small


def pieces(cells: pd.DataFrame) -> list[np.ndarray]:
    """Row positions of the independent pieces of a release, largest first: one per school year and source of
    n (:func:`shared_denominators`). Every tie between cells stays inside one (a sum is over one year and
    measure; a shared n is one unit, year, group and source; a count is tied to its own n), so no hidden
    cell of one piece bounds a cell of another, and deciding each on its own is deciding the whole (the
    decomposition of the suppression problem into its independent tables, Hundepool et al. 2012, §5.4):
    the audit's work and memory are those of the largest piece, not of the district."""
    key = pd.MultiIndex.from_arrays([cells["school_year"], cells["n_source"]])
    label = pd.factorize(key, use_na_sentinel=False)[0]
    order = np.argsort(label, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(label[order])) + 1)
    return sorted(groups, key=len, reverse=True)


def decide(cells: pd.DataFrame, settings: Settings = DEFAULT_SETTINGS, max_rounds: int = 100,
           complementary: bool = True, exact: bool = True, piece_seconds: float = PIECE_SECONDS,
           seconds: float = math.inf, earlier: pd.DataFrame | None = None) -> pd.DataFrame:
    """Cells with ``state`` (exact, low, high, hidden), ``n_hidden``, ``disclosed`` (should stay False),
    ``piece_withheld`` (the cell's piece is withheld whole, :func:`_withheld_piece`: it ran past
    ``piece_seconds`` of CPU or the whole decision past ``seconds`` of wall time, or its audit left a cell
    pinned) and ``piece`` (its piece's fingerprint, :func:`piece_fingerprints`), decided piece by piece
    (:func:`pieces`), in the order of ``cells``. Each piece gets the earlier of its own deadline and the
    decision's, so a slow decision withholds its last pieces, not the district (a parent that stops the
    decision withholds everything).

    ``earlier``: the cells of an earlier decision (:attr:`Release.cells`); a piece whose inputs are those of one
    of its pieces takes that piece's states instead of being decided again (:func:`_reused`).
    ``complementary=False`` stops after rules 1 and 2 (to show what the audit adds)."""
    if cells.empty:
        return cells.assign(state=pd.Series(dtype=object), n_hidden=pd.Series(dtype=bool),
                            disclosed=pd.Series(dtype=bool), piece_withheld=pd.Series(dtype=bool),
                            piece=pd.Categorical([]))
    cells = cells.reset_index(drop=True)
    parts = pieces(cells)
    prints = piece_fingerprints(cells, parts, settings, max_rounds, complementary, exact)
    before = _earlier_pieces(earlier, prints)
    until = time.monotonic() + seconds
    decided = []
    for rows, fingerprint in zip(parts, prints, strict=True):
        piece = cells.iloc[rows]
        again = _reused(piece, before.get(fingerprint))
        decided.append(again if again is not None else _decide_piece(
            piece, settings, max_rounds, complementary, exact, min(piece_seconds, until - time.monotonic())))
    out = pd.concat(decided, ignore_index=True)
    out["piece"] = pd.Categorical.from_codes(np.repeat(np.arange(len(parts)), [len(p) for p in parts]), prints)
    return out.iloc[np.argsort(np.concatenate(parts), kind="stable")].reset_index(drop=True)


# Two keys for the rows' hashes: a piece's fingerprint holds 128 bits per row (its text columns hashed twice).
_ROW_HASH_KEYS = ("release-pieces-1", "release-pieces-2")


def piece_fingerprints(cells: pd.DataFrame, parts: list[np.ndarray], settings: Settings, max_rounds: int,
                       complementary: bool, exact: bool) -> list[str]:
    """Per piece (row positions in ``cells``), a SHA-256 of everything :func:`_decide_piece` decides it from: its
    cells with every column (names, types and values, in row order: the order breaks ties between cells to
    hide), the settings, :data:`DECISION_RULES` and the decision's options. Equal fingerprints mean equal
    inputs, so equal decisions (unless the piece runs out of time, which :func:`_reused` never reuses)."""
    terms = (f"{DECISION_RULES}|{settings!r}|{max_rounds}|{complementary}|{exact}|"
             f"{list(cells.columns)}|{[str(t) for t in cells.dtypes]}").encode()
    rows = [pd.util.hash_pandas_object(cells, index=False, hash_key=key).to_numpy() for key in _ROW_HASH_KEYS]
    prints = []
    for part in parts:
        digest = hashlib.sha256(terms)
        digest.update(len(part).to_bytes(8, "little"))
        for hashed in rows:
            digest.update(hashed[part].tobytes())
        prints.append(digest.hexdigest())
    return prints


def _earlier_pieces(earlier: pd.DataFrame | None, prints: list[str]) -> dict[str, pd.DataFrame]:
    """The cells of ``earlier`` per fingerprint among ``prints`` (a decision stored before pieces were
    fingerprinted has none)."""
    if earlier is None or "piece" not in earlier.columns or earlier.empty:
        return {}
    piece = earlier["piece"].astype("category")
    codes = piece.cat.codes.to_numpy()
    wanted = set(prints)
    return {name: earlier.iloc[np.flatnonzero(codes == code)]
            for code, name in enumerate(piece.cat.categories) if name in wanted}


def _reused(piece: pd.DataFrame, earlier: pd.DataFrame | None) -> pd.DataFrame | None:
    """The piece as :func:`_decide_piece` decides it, taken from ``earlier`` (its fingerprint's cells in an earlier
    decision), or None to decide it: when that piece was withheld (for time: never kept), or any cell's key,
    count or n differs, or a key is missing or repeated (any doubt about the piece's identity)."""
    if earlier is None or len(earlier) != len(piece) or earlier["piece_withheld"].any():
        return None
    keys = pd.MultiIndex.from_arrays([piece["unit"].to_numpy(dtype=object),
                                      piece["school_year"].to_numpy(dtype="float64"),
                                      piece["measure"].to_numpy(dtype=object),
                                      piece["student_group"].to_numpy(dtype=object)])
    if not (keys.is_unique and earlier.index.is_unique):
        return None
    at = earlier.index.get_indexer(keys)
    if (at < 0).any():
        return None
    kept = earlier.iloc[at]
    for column in ("k", "n"):
        if not np.array_equal(kept[column].to_numpy(dtype="float64"), piece[column].to_numpy(dtype="float64"),
                              equal_nan=True):
            return None
    return piece.assign(state=kept["state"].to_numpy(dtype=object), n_hidden=kept["n_hidden"].to_numpy(dtype=bool),
                        disclosed=kept["disclosed"].to_numpy(dtype=bool), piece_withheld=False)


def _decide_piece(cells: pd.DataFrame, settings: Settings, max_rounds: int, complementary: bool,
                  exact: bool, piece_seconds: float = PIECE_SECONDS) -> pd.DataFrame:
    """:func:`decide` on one piece of the release: audits and suppressions until neither audit finds anything,
    or the piece withheld whole (:func:`_withheld_piece`) when that takes more than ``piece_seconds`` of this
    thread's CPU (``time.thread_time``: other threads, such as the solver's or a server's pages, do not
    count) or the audit leaves a cell pinned or undecided (a cell the time ran out on counts as pinned)."""
    deadline = time.thread_time() + piece_seconds
    problem = _problem(cells)
    c = problem.cells
    k_var, n_var = c["k_var"].to_numpy(), c["n_var"].to_numpy()
    state, small = _primary(c, settings)
    hidden = np.zeros(len(problem.k_true), dtype=bool)
    hidden[n_var[small]] = True
    result: Audit | None = None
    seen_hidden, seen_state = hidden.copy(), state.copy()
    pinned = np.empty(0, dtype=np.int64)  # hidden variables the exact audit found pinned
    exact_hidden: np.ndarray | None = None  # what was hidden at the last exact audit
    exact_open = pinned                     # and what it found pinned
    tried: dict[int, set[int]] = {}         # per pinned variable, the variables already opened for it
    members: _Memberships | None = None
    for _ in range(max_rounds):
        state = np.where(hidden[n_var], HIDDEN, state)  # no n, no rate: the whole cell goes
        hidden[k_var] = state != EXACT
        dirty = np.flatnonzero(hidden != seen_hidden)
        dirty = np.concatenate([dirty, k_var[state != seen_state]])
        result = audit(problem, hidden, state, settings, result, dirty)
        seen_hidden, seen_state = hidden.copy(), state.copy()
        if not complementary:
            break
        if len(result.disclosed) or not exact:
            extra = _complements(problem, hidden, result)
            pinned = np.empty(0, dtype=np.int64)  # (reported again by the exact audit once propagation is done)
        else:
            # Bounds propagation finds nothing: the integer program may still pin a cell. Each suppression
            # only relaxes the program (a released value becomes a range, a band goes), so a cell shown free
            # stays free: after the first audit only the cells pinned last time and the newly hidden ones are
            # asked about again.
            targets = np.flatnonzero(hidden) if exact_hidden is None else np.union1d(
                exact_open, np.flatnonzero(hidden & ~exact_hidden))
            pinned = exact_open = exact_pinned(problem, hidden, state, settings, result, targets, deadline=deadline)
            exact_hidden = hidden.copy()
            members = members or _Memberships(problem)
            extra = _exact_complements(problem, members, hidden, pinned, tried)
        if not len(extra):
            break
        if time.thread_time() > deadline:  # more to hide and no time left to audit it
            return _withheld_piece(c.drop(columns=["k_var", "n_var"]))
        hidden[extra] = True
        is_k = extra < len(c)
        state[extra[is_k]] = HIDDEN
    out = c.drop(columns=["k_var", "n_var"]).assign(state=state, n_hidden=hidden[n_var])
    disclosed = np.zeros(len(problem.k_true), dtype=bool)
    disclosed[result.disclosed] = True
    disclosed[pinned[hidden[pinned]]] = True
    if complementary and disclosed.any():  # nothing left to open, out of rounds or of time: never released
        return _withheld_piece(out)
    out["disclosed"] = disclosed[k_var] | (out["n_hidden"] & disclosed[n_var])
    return out.assign(piece_withheld=False)


def _withheld_piece(cells: pd.DataFrame) -> pd.DataFrame:
    """Every cell of a piece hidden, n included: the coarse suppression for a piece whose audit ran out of time.

    Safe without an audit: pieces share no constraint (:func:`pieces`), and within this one no number is
    left, only sums among unknowns and ``k <= n``. Any solution scaled by two is another one, and a zero
    cell can take one more (with its n, one cell of the other partition to keep both partitions summing to
    the same ALL, e.g. a FEMALE or MALE cell for a race group's, and the cells above them: their ALL, their
    cluster and district rows) without breaking a sum, so no cell has a single value."""
    return cells.assign(state=HIDDEN, n_hidden=True, disclosed=False, piece_withheld=True)


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


class _Memberships:
    """The memberships of each variable and of each sum (rows of ``problem.rel`` / ``problem.var``), so that
    a few variables' sums and a few sums' members are found without scanning every membership."""

    def __init__(self, problem: _Problem):
        n_rel = int(problem.rel.max()) + 1 if len(problem.rel) else 0
        self.by_var = np.argsort(problem.var, kind="stable")
        self.var_start = np.searchsorted(problem.var[self.by_var], np.arange(len(problem.k_true) + 1))
        self.by_rel = np.argsort(problem.rel, kind="stable")
        self.rel_start = np.searchsorted(problem.rel[self.by_rel], np.arange(n_rel + 1))

    def of_vars(self, ids) -> np.ndarray:
        return self._rows(self.by_var, self.var_start, ids)

    def of_rels(self, ids) -> np.ndarray:
        return self._rows(self.by_rel, self.rel_start, ids)

    @staticmethod
    def _rows(order: np.ndarray, start: np.ndarray, ids) -> np.ndarray:
        ids = np.asarray(list(ids), dtype=np.int64)
        if not len(ids):
            return np.empty(0, dtype=np.int64)
        return np.sort(np.concatenate([order[start[i]:start[i + 1]] for i in ids.tolist()]))


def _exact_complements(problem: _Problem, members: _Memberships, hidden: np.ndarray, pinned: np.ndarray,
                       tried: dict[int, set[int]], escalate: int = 3) -> np.ndarray:
    """Variables to hide next for cells the integer program pins, chosen as the propagation chooses: for each
    pinned variable one released member of a sum holding it (the sum holding most pinned variables first,
    then children before parents, then the fewest students), so one suppression serves every pinned
    variable of that sum. A sum already opened for a variable that is still pinned is not chosen again for
    it (``tried``: per pinned variable, the variables opened for it, kept across rounds): the next sum is
    (see :func:`_open_near`), together with as many more as were opened for it before (at most
    ``escalate`` more), so a cell the nearest sum does not free costs few audit rounds (at 200 schools x 6
    years: 5 exact rounds instead of 10, for 13 more cells hidden and 160 more n)."""
    if not len(pinned):
        return np.empty(0, dtype=np.int64)
    k_var, n_var = problem.cells["k_var"].to_numpy(), problem.cells["n_var"].to_numpy()
    partner = np.arange(len(hidden))
    partner[n_var] = k_var
    partner[k_var] = n_var
    is_pinned = np.zeros(len(hidden), dtype=bool)
    is_pinned[pinned] = True
    n_rel = int(problem.rel.max()) + 1 if len(problem.rel) else 0
    per_rel = np.bincount(problem.rel, is_pinned[problem.var], n_rel)
    chosen: set[int] = set()
    handled: set[int] = set()
    for var in pinned.tolist():
        if var in handled:
            continue
        done = tried.setdefault(var, set())
        # Still pinned after earlier openings: the nearest sum was not enough, so the next ones open in the
        # same round (doubling what was opened for it) instead of one audit round each.
        for step in range(1 + min(len(done), escalate)):
            choice = _open_near(problem, members, hidden, partner, per_rel, var, done)
            if choice is None and done and not step:
                done.clear()  # every sum near it was opened once: open them again, nearest first
                choice = _open_near(problem, members, hidden, partner, per_rel, var, done)
            if choice is None:
                break  # nothing released near it: left disclosed (reported)
            member, rel = choice
            chosen.add(member)
            done.add(member)
            handled.add(var)
            if rel >= 0:
                in_rel = problem.var[members.of_rels([rel])]
                handled.update(in_rel[is_pinned[in_rel]].tolist())
    return np.array(sorted(chosen), dtype=np.int64)


def _open_near(problem: _Problem, members: _Memberships, hidden: np.ndarray, partner: np.ndarray,
               per_rel: np.ndarray, var: int, done: set[int], steps: int = 3) -> tuple[int, int] | None:
    """(released variable to hide, its sum or -1 for the cell's own n or count) for a pinned ``var``, from
    sums holding none of the variables in ``done``: its own sums and those of its cell's hidden n (or
    count), then its cell's released n (or count), then sums reached through hidden members."""
    near = np.array([var, partner[var]] if hidden[partner[var]] else [var])  # a hidden n pins its count too
    # A sum holding a variable already opened for `var` is tried (measures sharing an n repeat one sum of
    # n per measure: opening one member opens them all).
    opened = np.unique(problem.rel[members.of_vars(done)])
    for step in range(steps):
        around = np.unique(problem.rel[members.of_vars(near)])
        rows = members.of_rels(np.setdiff1d(around, opened))
        rows = rows[~hidden[problem.var[rows]]]
        if len(rows):
            best = rows[np.lexsort((rows, problem.size[problem.var[rows]], problem.parent[rows],
                                    -per_rel[problem.rel[rows]]))[0]]
            return int(problem.var[best]), int(problem.rel[best])
        if step == 0 and not hidden[partner[var]] and int(partner[var]) not in done:
            return int(partner[var]), -1
        reached = problem.var[members.of_rels(around)]
        reached = reached[hidden[reached]]
        near = np.union1d(near, np.union1d(reached, partner[reached]))
    return None


def _smallest_per_sum(rel: np.ndarray, var: np.ndarray, parent: np.ndarray, size: np.ndarray):
    """Per sum, its member with the fewest students (children before parents; ties keep membership order),
    as (sum, member) arrays ordered the same way."""
    order = np.lexsort((size, parent))  # stable: ties stay in membership order
    _, first = np.unique(rel[order], return_index=True)
    chosen = order[np.sort(first)]
    return rel[chosen], var[chosen]


def _complements(problem: _Problem, hidden: np.ndarray, result: Audit) -> np.ndarray:
    """Variables to hide next: in each fully pinned relation holding a disclosed variable, the released
    member with the fewest students (children before parents); a count pinned by its band alone gets
    its n hidden."""
    pinned = result.lo == result.hi
    is_disclosed = np.zeros(len(pinned), dtype=bool)
    is_disclosed[result.disclosed] = True
    n_rel = int(problem.rel.max()) + 1 if len(problem.rel) else 0
    # Only sums holding a disclosed variable matter; their memberships keep their order (ties break by it).
    holds = np.zeros(n_rel, dtype=bool)
    holds[problem.rel[is_disclosed[problem.var]]] = True
    keep = holds[problem.rel]
    rel, var, parent = problem.rel[keep], problem.var[keep], problem.parent[keep]
    unpinned = np.zeros(n_rel, dtype=bool)
    unpinned[rel[~pinned[var]]] = True
    all_pinned = ~unpinned[rel]
    chosen: set[int] = set()
    open_rows = all_pinned & ~hidden[var]
    if open_rows.any():
        best_rel, best_var = _smallest_per_sum(rel[open_rows], var[open_rows], parent[open_rows],
                                               problem.size[var[open_rows]])
        inside = is_disclosed[var] & all_pinned
        disclosed_in: dict[int, list[int]] = {}
        for r, v in zip(rel[inside].tolist(), var[inside].tolist(), strict=True):
            disclosed_in.setdefault(r, []).append(v)
        handled: set[int] = set()
        # Smallest fixes first; opening one sum frees the disclosed members it holds, so a sum whose
        # disclosed members were freed this round waits for the next audit (no needless suppression).
        for rel_id, var_id in zip(best_rel.tolist(), best_var.tolist(), strict=True):
            members = disclosed_in.get(rel_id, [])
            if handled.intersection(members):
                continue
            chosen.add(var_id)
            handled.update(members)
    # A variable pinned from two sides (or by its band): its n goes when it is a coded count, and the
    # smallest released member of each of its relations goes too.
    in_rel = np.zeros(len(pinned), dtype=bool)
    in_rel[var[all_pinned]] = True
    rest = result.disclosed[~in_rel[result.disclosed]]
    if len(rest):
        n_var = problem.cells["n_var"].to_numpy()
        counts = rest[rest < len(n_var)]  # k variables are numbered 0 .. cells - 1
        chosen.update(int(n) for n in n_var[counts] if not hidden[n])
        is_rest = np.zeros(len(pinned), dtype=bool)
        is_rest[rest] = True
        touched = np.zeros(n_rel, dtype=bool)
        touched[rel[is_rest[var]]] = True
        others = touched[rel] & ~hidden[var]
        if others.any():
            chosen.update(_smallest_per_sum(rel[others], var[others], parent[others],
                                            problem.size[var[others]])[1].tolist())
    return np.array(sorted(chosen), dtype=np.int64)


# --- the decision for a whole district ------------------------------------------------------------------


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


def release_cells(schools: pd.DataFrame, metrics: pd.DataFrame,
                  discipline: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """(every cell of the district before any decision, whether `suspension_rate` is derived from discipline)."""
    derived = not (metrics["metric"] == "suspension_rate").any() if len(metrics) else True
    families = []
    if len(discipline):
        families.append(discipline_cells(discipline))
    if len(metrics):
        counted = metrics.dropna(subset=["numerator", "denominator"])
        if derived:
            counted = counted[counted["metric"] != "suspension_rate"]
        families.extend(metric_cells(rows) for _, rows in counted.groupby("metric"))
    families = [f for f in families if len(f)]
    school_cells = shared_denominators(pd.concat(families, ignore_index=True)) if families else pd.DataFrame()
    return (pooled_cells(school_cells, schools) if families else pd.DataFrame()), derived


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


_CACHE: dict[tuple, Release] = {}
# Bumped whenever the decision's rules change, so decisions kept by an older version are not reused.
DECISION_RULES = "2026-12-exact-2"
# Inputs (metric and discipline rows) from which a server decides in a child process; smaller ones are
# decided in place (a child costs a second or two of start-up, a small decision less).
APART_FROM_ROWS = 20_000
DECISION_SECONDS = 3600.0  # a child still deciding after this is stopped and everything is withheld
# The share of the child's time its pieces may use (:func:`decide`'s ``seconds``); the rest is for reading
# the inputs, the last piece's overrun and writing the release back.
DECISION_SHARE = 0.8


def release_for(engine, settings: Settings = DEFAULT_SETTINGS, complementary: bool = True,
                apart: bool | None = None, timeout: float = DECISION_SECONDS,
                lookups: bool = False) -> Release | CellGrid:
    """The district's release decision from the database, decided once per state of its data.

    In this process it is kept per import version (only an import bumps it: a workspace edit changes no
    count, so it keeps the decision). Across processes and restarts it is kept in the ``release_decisions``
    table under a fingerprint of everything it is decided from (schools, metrics, discipline, settings and
    these rules): deciding costs about half a minute of CPU at 200 schools, reading it back well under a
    second. A new decision reuses every piece whose inputs are unchanged from the newest stored decision made
    under the same terms (:func:`decide`), so after an import only the pieces it changed are decided. A
    decision is made in a child process
    (:func:`decide_apart`; ``apart=None``: when the inputs hold :data:`APART_FROM_ROWS` rows or more), so the
    server never holds the decision's working memory; when the child fails or runs past ``timeout``
    seconds every cell is withheld, and a decision with a piece withheld (for time, or a cell its audit left
    pinned) is kept for this process only: neither is stored, so a restart decides again.

    ``lookups=True``: only :meth:`Release.for_lookups` of it (a :class:`CellGrid`), which is all a server keeps
    for its shared views, and not kept in this process (the caller keeps it); a stored decision is then read
    back as those columns alone (:func:`_lookups_from_blob`). One kept already gives its lookups."""
    from analytics.data import storage

    key = (str(engine.url), storage.import_version(engine), id(settings), complementary)
    if key in _CACHE:
        return _CACHE[key].for_lookups() if lookups else _CACHE[key]
    release = _decided(engine, settings, complementary, apart, timeout, lookups)
    if not lookups:
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = release
    return release


def _decided(engine, settings: Settings, complementary: bool, apart: bool | None, timeout: float,
             lookups: bool = False) -> Release | CellGrid:
    """:func:`release_for`'s decision (or its lookups): the stored one of the same inputs, or one decided (and
    stored) now."""
    from analytics.data import loads

    schools, metrics = loads.load_schools(engine), loads.load_metrics(engine)
    discipline = loads.load_discipline(engine)
    fingerprint = decision_fingerprint(schools, metrics, discipline, settings, complementary)
    release = _stored(engine, fingerprint, lookups)
    if release is None:
        earlier = _latest_stored(engine, decision_terms(settings, complementary))
        if apart is None:
            apart = len(metrics) + len(discipline) >= APART_FROM_ROWS
        if apart:
            release = decide_apart(schools, metrics, discipline, settings, complementary, timeout, earlier)
        else:
            release = build_release(schools, metrics, discipline, settings, complementary,
                                    earlier=_earlier_release(earlier))
        if not release.withheld and not release.cells["piece_withheld"].any():
            _store(engine, fingerprint, release)
        if lookups:
            release = release.for_lookups()
    return release


def decide_apart(schools: pd.DataFrame, metrics: pd.DataFrame, discipline: pd.DataFrame,
                 settings: Settings = DEFAULT_SETTINGS, complementary: bool = True,
                 timeout: float = DECISION_SECONDS, earlier: bytes | None = None) -> Release:
    """:func:`build_release` in a child process (``python -m analytics.access.release_child``): its memory goes
    back to the system when it ends, whatever the decision's peak. The inputs go to it as a pickle (with
    ``earlier``, a stored decision to reuse pieces of, as stored: this process never reads it) and the
    release comes back in the stored form (:func:`_to_blob`). A child that fails, or is still deciding after
    ``timeout`` seconds (then stopped), leaves the decision undecided: :func:`withheld_release`."""
    import os
    import pickle
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import analytics

    root = str(Path(analytics.__file__).resolve().parent.parent)  # the child runs this very code
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory(prefix="release-") as folder:
        given, decided = Path(folder) / "inputs.pickle", Path(folder) / "release.parquet"
        with given.open("wb") as out:  # streamed: no second copy of the inputs in this process
            pickle.dump((schools, metrics, discipline, settings, complementary, DECISION_SHARE * timeout, earlier),
                        out, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            done = subprocess.run([sys.executable, "-m", "analytics.access.release_child", str(given), str(decided)],
                                  env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            why = f"the decision ran past {timeout:.0f} s"
        except OSError as error:
            why = f"the decision could not start: {error}"
        else:
            if done.returncode == 0 and decided.exists():
                return _from_blob(decided.read_bytes())
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            why = f"the decision failed (exit {done.returncode}) {tail[0]}".strip()
    return withheld_release(schools, metrics, discipline, why)


def decision_fingerprint(schools: pd.DataFrame, metrics: pd.DataFrame, discipline: pd.DataFrame,
                         settings: Settings, complementary: bool) -> str:
    """SHA-256 of every input of the decision: its rows, the settings and the rules."""
    digest = hashlib.sha256(f"{DECISION_RULES}|{settings!r}|{complementary}".encode())
    for frame in (schools, metrics, discipline):  # rows as loaded (by key); another order only misses
        digest.update(repr(list(frame.columns)).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _stored(engine, fingerprint: str, lookups: bool = False) -> Release | CellGrid | None:
    """The decision kept under ``fingerprint`` (``lookups``: its lookups alone), or None (none kept, or the table
    cannot be read)."""
    table = schema.release_decisions
    try:
        with engine.connect() as conn:
            blob = conn.execute(sa.select(table.c.cells).where(table.c.fingerprint == fingerprint)).scalar()
    except sa.exc.SQLAlchemyError:
        return None
    if blob is None:
        return None
    return _lookups_from_blob(blob) if lookups else _from_blob(blob)


def _latest_stored(engine, terms: str) -> bytes | None:
    """The newest stored decision made under ``terms`` (:func:`decision_terms`), as stored, or None (none kept,
    or the table cannot be read). The newest are fetched first, one at a time, and only their terms column is
    parsed to choose (the newest usually matches)."""
    table = schema.release_decisions
    try:
        with engine.connect() as conn:
            kept = conn.execute(sa.select(table.c.fingerprint).order_by(table.c.decided_at.desc())).scalars().all()
            for fingerprint in kept:
                blob = conn.execute(sa.select(table.c.cells).where(table.c.fingerprint == fingerprint)).scalar()
                if blob is not None and _terms_of(blob) == terms:
                    return blob
    except sa.exc.SQLAlchemyError:
        return None
    return None


def _terms_of(blob: bytes) -> str:
    """The terms a stored decision was made under ("" for one stored without them, or unreadable)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema_ = pq.read_schema(io.BytesIO(blob))
        if "decided_under" not in schema_.names:
            return ""
        column = pq.read_table(io.BytesIO(blob), columns=["decided_under"]).column(0)
    except (pa.ArrowException, OSError, ValueError):
        return ""
    return str(column[0]) if len(column) else ""


def _earlier_release(blob: bytes | None) -> Release | None:
    """A stored decision to reuse pieces of, or None when there is none or it cannot be read (all is decided)."""
    import pyarrow as pa

    if blob is None:
        return None
    try:
        return _from_blob(blob)
    except (pa.ArrowException, OSError, ValueError, KeyError):
        return None


def _to_blob(release: Release) -> bytes:
    """A release as Parquet bytes (its cells, with whether `suspension_rate` is derived and the terms it was
    decided under in constant columns; a reader that knows neither these nor ``piece`` ignores them)."""
    buffer = io.BytesIO()
    cells = release.cells.reset_index().assign(suspension_derived=release.suspension_derived,
                                               decided_under=release.decided_under)
    cells.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _from_blob(blob: bytes) -> Release:
    """A stored release; one stored before pieces were fingerprinted reads with no piece (nothing of it reused)."""
    cells = pd.read_parquet(io.BytesIO(blob))
    derived = bool(cells.pop("suspension_derived").iloc[0]) if len(cells) else True
    terms = cells.pop("decided_under") if "decided_under" in cells.columns else pd.Series(dtype=object)
    if "piece" not in cells.columns:
        cells["piece"] = pd.Categorical([None] * len(cells))
    decided_under = str(terms.iloc[0]) if len(terms) else ""
    return Release(cells.set_index(KEYS).sort_index(), derived, decided_under=decided_under)


def _lookups_from_blob(blob: bytes) -> Release | CellGrid:
    """``_from_blob(blob).for_lookups()`` without the rest of the decision: only the keys, states and hidden n are
    read, texts as dictionaries, and the grid is made from their codes. Reading every column as text and
    indexing it peaked 370 MiB above the rest at 2,000 schools, which the C heap gives back only in part
    (DESIGN §8 memory bar)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(blob), columns=[*KEYS, *LOOKUP_COLUMNS, "suspension_derived"],
                          read_dictionary=["unit", "measure", "student_group", "state"])
    if not table.num_rows:
        return _from_blob(blob).for_lookups()
    derived = bool(table["suspension_derived"][0].as_py())
    keys = [_categories(table[key]) for key in KEYS]
    states = _categories(table["state"]).astype(LOOKUP_STATES).codes
    grid = CellGrid.made(tuple(key.categories for key in keys), tuple(key.codes for key in keys), states,
                         table["n_hidden"].to_numpy(), derived, "")
    return grid if grid is not None else _from_blob(blob).for_lookups()


def _categories(column) -> pd.Categorical:
    """An Arrow column as categories (its dictionary's values, or each distinct value)."""
    import pyarrow as pa

    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()
    return column.to_pandas().array


def _store(engine, fingerprint: str, release: Release, keep: int = 8) -> None:
    """Keep ``release`` under ``fingerprint`` (the ``keep`` newest decisions stay). A database that cannot be
    written (a read-only role) only loses the saving: the decision in hand is still used."""
    table = schema.release_decisions
    try:
        with engine.begin() as conn:
            if conn.execute(sa.select(table.c.fingerprint).where(table.c.fingerprint == fingerprint)).first():
                return
            conn.execute(sa.insert(table).values(fingerprint=fingerprint, decided_at=datetime.now(UTC),
                                                 cells=_to_blob(release)))
            old = sa.select(table.c.fingerprint).order_by(table.c.decided_at.desc()).offset(keep)
            conn.execute(sa.delete(table).where(table.c.fingerprint.in_(old.scalar_subquery())))
    except sa.exc.SQLAlchemyError:
        return
