"""The release decision: which cells to hide so that no audit pins one (DESIGN §3, privacy rules 1-3).

Rules 1 and 2 decide each cell on its own (:func:`_primary`). Rule 3 is decided piece by piece (:func:`pieces`):
when an audit (:mod:`analytics.access.release_audit`) pins a hidden count or n to a single integer, one more
released cell of a sum that pins it is hidden (the one with the fewest students, never the parent when a child
will do: :func:`_complements` for propagation, :func:`_exact_complements` for the integer program), and both
audits run again until neither finds anything. After a suppression, which only relaxes the integer program, the
exact audit asks again only about the cells it pinned and the newly hidden ones. A piece whose decision takes
more than :data:`PIECE_SECONDS` of the deciding thread's CPU, or runs past the whole decision's deadline, or whose
audit leaves a cell pinned or undecided, is withheld whole (every cell hidden, n included: safe without an audit)
rather than the district.

Most imports change a few pieces (one year's file, one source, some schools), so a new decision starts from
the newest stored one made under the same rules and settings: each piece is fingerprinted with everything
its decision reads (:func:`piece_fingerprints`: its cells, every column in row order, with the settings and
these rules), and a piece whose fingerprint, keys, counts and n all match a piece of that decision, which was
not withheld, takes its cells' states from it (:func:`_reused`); every other piece is decided. Deciding a
piece depends on nothing but those inputs, so the release is the one a whole decision gives, cell for cell.
"""

from __future__ import annotations

import hashlib
import math
import time

import numpy as np
import pandas as pd

from analytics.access.release_audit import Audit, audit, exact_pinned
from analytics.access.release_cells import CODED_HIGH, CODED_LOW, EXACT, HIDDEN, SENSITIVE, _Problem, _problem
from analytics.config import DEFAULT_SETTINGS, Settings

# Bumped whenever the decision's rules change, so decisions kept by an older version are not reused.
DECISION_RULES = "2026-12-exact-2"
# CPU seconds (of the deciding thread) one piece's decision may take before the piece is withheld whole
# (:func:`_withheld_piece`): the largest piece at 2,000 schools x 6 years takes about a minute.
PIECE_SECONDS = 600.0


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
    n (:func:`release_cells.shared_denominators`). Every tie between cells stays inside one (a sum is over one year and
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


# --- complements: what to hide next for what an audit pinned ---------------------------------------------


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
