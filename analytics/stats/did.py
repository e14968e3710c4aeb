"""Staggered difference-in-differences on a unit x year panel, with randomization inference (DESIGN §3, §10).

Generic: any outcome column of a long panel (one row per unit and year) and a start year per unit
(empty = never treated). Restorative-practices impact (`rp_impact`) and the professional-learning
level-5 evaluation both call :func:`staggered_did`.

Estimator (Callaway & Sant'Anna, 2021, "Difference-in-differences with multiple time periods",
J. Econometrics 225:200-230), with never-treated comparison units, unweighted by enrolment:

    ATT(g, t) = mean over cohort g of (Y_t - Y_{g-1}) - mean over never-treated units of (Y_t - Y_{g-1})

for each cohort g (first treated year) and year t. The overall effect is the average of the post-start
ATT(g, t) (t >= g) weighted by the number of treated units behind each; the event study averages
ATT(g, g + e) by years since start e in the same way (e = -1 is the reference, 0 by construction;
e < -1 are placebo checks of parallel trends). A plain two-way fixed-effects regression is avoided
because it is biased when effects differ by cohort or grow over time (Goodman-Bacon, 2021).

Inference, at every scale: randomization inference (Fisher, 1935; Rosenbaum, 2002, "Observational
Studies", ch. 2). The observed start years (never-treated included) are reassigned among the units;
the estimate recomputed under each reassignment gives the null distribution. When the number of
distinct reassignments is at most ``settings.permutations`` they are all enumerated (exact test);
otherwise that many are drawn at random and p = (1 + #{|T*| >= |T|}) / (1 + draws) (Phipson & Smyth,
2010). The 95% interval is the set of constant effects tau not rejected at alpha = 0.05 when the
treated post-start outcomes are shifted by -tau (test inversion); since the estimator is linear in
the outcomes, each reassignment's statistic is A - tau * B and the boundary points are roots of a
quadratic, so the set is found exactly (its lowest and highest points are reported; it is unbounded
when too few reassignments exist to reject anything). This stays valid with one treated unit or
cohorts of one, where a cluster bootstrap has no variance to resample (MacKinnon & Webb, 2020,
"Randomization inference for difference-in-differences with few treated clusters", J. Econometrics
218:435-450). The interval's p(0) is the reported p-value, so the verdict, the p-value and the
interval always agree. A reassignment under which the estimate is undefined (no treated unit with data)
is left out of the reference set: the test is then conditional on the estimate being defined, which is
still exact because definedness depends on the assignment only.

Strata (``strata_col``, e.g. the school level): ATT(g, t) compares a cohort's units with the
never-treated units of the same stratum (pooled over strata with the same treated-unit weights:
parallel trends conditional on the stratum, Callaway & Sant'Anna, 2021, §2 with a discrete covariate),
and start years are reassigned only within strata (stratified randomization inference, Imbens & Rubin,
2015, "Causal Inference for Statistics, Social, and Biomedical Sciences", ch. 5 and 9). Exactness only
needs assignment to be random *within* strata, so it survives adoption that depends on the stratum
(middle schools adopting more often than elementary schools); the pooled test does not: with middle and
high schools three times as likely to adopt, its 95% interval excluded 0 in 14.5% of 200 null seeds,
the stratified one in 7.0% (``benchmarks/rp_coverage.py``). Treated units whose stratum has no
never-treated unit are left out, with a note.

Is it exact? When the data are generated as the tests assume (assignment uniformly random, within
strata, and no effect), every p-value above is exact by construction: the observed assignment and the
reassignments are exchangeable draws (Phipson & Smyth, 2010). What was checked, against the null-rate
excesses seen in the benchmarks (8 of 100 seeds at 10 RP schools of 50; 10 of 100 for the Math-talk
programme): the p-value read off the inverted interval equals the direct count on every seed; p-values
are uniform (Kolmogorov-Smirnov); on one fixed panel, 300 fresh random assignments reject in 5.0%; over
8,000 further seeds the 10-of-50 scenario rejects in 5.5% (Wilson 95% 5.0-6.0%); the simulation and the
demo draw participants uniformly from exactly the units the test permutes (the Math-talk programme from
elementary and middle schools, compared with those only). The excesses were sampling noise at 100 seeds
(the binomial 95% range of an exact 5% test over 100 seeds reaches 9%). Benchmarks must draw fresh
reassignments per simulated district (``seed``): one fixed set of draws reused across districts is not
exchangeable with each district's assignment.
"""

from __future__ import annotations

import collections
import contextlib
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import combinations

import numpy as np
import pandas as pd

from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.outputs.labels import counted, for_count

EVENT_COLUMNS = ["outcome", "rel_year", "estimate", "ci_low", "ci_high", "n_schools"]
SMALL = 10  # fewer treated or comparison units than this is a small sample
_TOL = 1e-9


@dataclass(frozen=True)
class DiDResult:
    """One outcome's difference-in-differences with its randomization-inference interval and p-value.

    ``note`` is a plain-language reason when nothing can be estimated (estimate NaN), otherwise
    caveats (left-out units, a small sample) or "". ``event_study`` has ``EVENT_COLUMNS``, where
    ``n_schools`` is the number of treated units behind each year since start.
    """

    outcome: str
    estimate: float = np.nan
    ci_low: float = np.nan
    ci_high: float = np.nan
    p_value: float = np.nan
    n_treated: int = 0
    n_comparison: int = 0
    method: str = ""
    note: str = ""
    assignments: int = 0  # distinct reassignments of start years (exact) or random draws
    exact: bool = False
    smallest_cohort: int = 0
    event_study: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=EVENT_COLUMNS))
    strata: str = ""  # e.g. "level": compared and reassigned within levels ("" = one stratum)

    @property
    def estimable(self) -> bool:
        return bool(np.isfinite(self.estimate))

    @property
    def small(self) -> bool:
        return self.n_treated < SMALL or self.n_comparison < SMALL or self.smallest_cohort == 1

    def significant(self, alpha: float = 0.05) -> bool:
        """The verdict: True only when the randomization p-value is at most alpha."""
        return self.estimable and bool(self.p_value <= alpha)


def staggered_did(panel: pd.DataFrame, outcome: str, *, start_col: str = "start_year", unit_col: str = "school_id",
                  year_col: str = "school_year", strata_col: str | None = None,
                  settings: Settings = DEFAULT_SETTINGS, event_study: bool = True,
                  seed: int | None = None) -> DiDResult:
    """Effect of a staggered treatment on `outcome` (see the module docstring for the method).

    Parameters
    ----------
    panel : long frame, one row per unit and year, with `unit_col`, `year_col` (integer years),
        `outcome` (numeric, NaN when unknown) and `start_col` (first treated year, NaN = never).
    outcome : the column to analyse (e.g. a suspension rate in points).
    strata_col : optional column (constant per unit, e.g. the school level): treated units are compared
        only with never-treated units of their own stratum, and start years are reassigned only within
        strata (see "Strata" in the module docstring). None: one stratum.
    settings : ``permutations`` (reassignments enumerated or drawn), ``alpha`` and ``random_seed``.
    event_study : also estimate effects by years since start (costs one pass per event time).
    seed : random draws' seed (default ``settings.random_seed``).

    Returns
    -------
    DiDResult; ``estimate`` NaN with a plain ``note`` when there is nothing to estimate (no treated
    units, no comparison units, no year before or after the start).
    """
    wide, first_row = _first_by_unit_and_year(panel, unit_col, year_col, outcome)
    known = wide.notna().any(axis=1).to_numpy()  # units with any value (dropna(how="all"))
    years = np.array([int(y) for y in wide.columns])
    values, first_row = wide.to_numpy(dtype=float)[known], first_row[known]
    # each unit's start (and stratum) as its first row gives it
    labels = pd.to_numeric(panel[start_col].iloc[first_row], errors="coerce").fillna(0).astype(int).to_numpy()
    strata = np.zeros(len(labels), dtype=int)
    if strata_col is not None:
        stratum = panel[strata_col].iloc[first_row]
        strata = pd.factorize(stratum.astype("string").fillna("(none)"))[0]
    setup = _setup(outcome, values, years, labels)
    if isinstance(setup, DiDResult):
        return setup
    keep, note = setup
    values, labels, strata = values[keep], labels[keep], strata[keep]
    if strata_col is not None:
        setup = _within_strata(outcome, labels, strata, strata_col.replace("_", " "))
        if isinstance(setup, DiDResult):
            return setup
        keep, strata_note = setup
        values, labels, strata = values[keep], labels[keep], strata[keep]
        note = "; ".join(n for n in (note, strata_note) if n)
    return _infer(outcome, values, years, labels, strata, note, settings,
                  settings.random_seed if seed is None else seed, event_study,
                  strata_col.replace("_", " ") if strata_col else "")


def _first_by_unit_and_year(panel: pd.DataFrame, unit_col: str, year_col: str,
                            outcome: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Units x years of each cell's first known `outcome` (NaN when none), every unit and year of the panel in
    sorted order, and each unit's first row: ``pivot_table(aggfunc="first", dropna=False)`` and
    ``drop_duplicates`` without pandas' grouping machinery, which took half of an estimate's time for one
    cluster's few RP schools among thousands."""
    units, unit_at = _sorted_codes(panel[unit_col])
    years, year_at = _sorted_codes(panel[year_col])
    values = panel[outcome].to_numpy(dtype=float)
    known = ~np.isnan(values)
    cells, first = np.unique(unit_at[known] * len(years) + year_at[known], return_index=True)
    grid = np.full(len(units) * len(years), np.nan)
    grid[cells] = values[known][first]
    first_row = np.unique(unit_at, return_index=True)[1]
    return pd.DataFrame(grid.reshape(len(units), len(years)), index=units, columns=years), first_row


def _sorted_codes(column: pd.Series) -> tuple[pd.Index, np.ndarray]:
    codes, uniques = pd.factorize(column, sort=True)
    return pd.Index(uniques), codes


# --- edge cases ------------------------------------------------------------------------------------


def _setup(outcome: str, values: np.ndarray, years: np.ndarray,
           labels: np.ndarray) -> DiDResult | tuple[np.ndarray, str]:
    """Units that can take part, or a result that says plainly why nothing can be estimated."""
    treated, never = labels > 0, labels == 0
    n_treated, n_never = int(treated.sum()), int(never.sum())
    first, last = (int(years[0]), int(years[-1])) if len(years) else (0, 0)
    no_base = treated & (labels <= first)
    not_started = treated & (labels > last)
    usable = treated & ~no_base & ~not_started
    if n_treated == 0:
        return DiDResult(outcome, method="not estimable", note="no treated schools in scope")
    if n_never == 0:
        return DiDResult(outcome, n_treated=n_treated, method="not estimable",
                         note="every school in scope is treated, so there is no comparison group")
    if not usable.any():
        if no_base[treated].all():
            why = (f"every treated school started in the first year of data ({first}), so there is no "
                   "before-year to compare with")
        elif not_started[treated].all():
            why = f"no treated school has a year of data after its start yet (data end in {last})"
        else:
            why = "no treated school has both a year before its start and a year after it in the data"
        return DiDResult(outcome, n_treated=n_treated, n_comparison=n_never, method="not estimable", note=why)
    notes = []
    if no_base.any():
        early = int(no_base.sum())
        notes.append(f"{counted(early, 'treated school')} that started in the first year of data ({first}) "
                     f"{for_count(early, 'has', 'have')} no before-year and {for_count(early, 'is', 'are')} left out")
    if not_started.any():
        late = int(not_started.sum())
        notes.append(f"{counted(late, 'school')} starting after {last} {for_count(late, 'is', 'are')} left out")
    return usable | never, "; ".join(notes)


def _within_strata(outcome: str, labels: np.ndarray, strata: np.ndarray,
                   name: str) -> DiDResult | tuple[np.ndarray, str]:
    """Units of the strata that hold both treated and never-treated units, or why there are none.

    A treated unit with no never-treated unit of its stratum has nothing like it to be compared with;
    never-treated units of a stratum without treated units take no part in any reassignment.
    """
    treated, never = labels > 0, labels == 0
    both = np.isin(strata, np.intersect1d(strata[treated], strata[never]))
    n_treated, n_never = int(treated.sum()), int(never.sum())
    if not (both & treated).any():
        return DiDResult(outcome, n_treated=n_treated, n_comparison=n_never, method="not estimable",
                         note=f"no treated school has a never-treated school of the same {name} to compare with")
    alone = int((treated & ~both).sum())
    note = (f"{counted(alone, 'treated school')} with no never-treated school of the same {name} "
            f"{for_count(alone, 'is', 'are')} left out" if alone else "")
    return both, note


# --- reassignments ---------------------------------------------------------------------------------


def _n_assignments(labels: np.ndarray) -> int:
    _, counts = np.unique(labels, return_counts=True)
    return math.factorial(len(labels)) // math.prod(math.factorial(int(c)) for c in counts)


def _arrangements(labels: np.ndarray) -> np.ndarray:
    """Every distinct arrangement of the multiset of labels, one per row: the values placed class by class
    (smallest first), each class's positions in lexicographic order among the positions still free."""
    values, counts = np.unique(labels, return_counts=True)
    return values[_class_arrangements(len(labels), tuple(int(c) for c in counts))].astype(labels.dtype)


def _class_arrangements(m: int, counts: tuple[int, ...]) -> np.ndarray:
    """:func:`_arrangements` of `m` positions as class indices: each way to place the first class, and under
    each (inner, in the same order for all) every arrangement of the rest on the positions left free."""
    if len(counts) == 1:
        return np.zeros((1, m), dtype=np.intp)
    first = _subsets(m, counts[0])
    rest = _class_arrangements(m - counts[0], counts[1:]) + 1
    free = np.nonzero(~first)[1].reshape(len(first), m - counts[0])  # ascending in each row
    shape = (len(first), len(rest), m - counts[0])
    out = np.zeros((len(first), len(rest), m), dtype=np.intp)
    np.put_along_axis(out, np.broadcast_to(free[:, None, :], shape), np.broadcast_to(rest[None], shape), axis=2)
    return out.reshape(-1, m)


def _subsets(m: int, size: int) -> np.ndarray:
    """The `size`-subsets of range(m) as rows of indicators, in lexicographic order. Listed through the
    smaller of a subset and its complement: subsets of one size sort in the reverse order of their
    complements (the smallest element where two differ belongs to the earlier subset)."""
    small = min(size, m - size)
    picks = list(combinations(range(m), small))
    rows = np.zeros((len(picks), m), dtype=bool)
    np.put_along_axis(rows, np.array(picks, dtype=np.intp).reshape(len(picks), small), True, axis=1)
    return rows if small == size else ~rows[::-1]


def _strata_units(strata: np.ndarray) -> list[np.ndarray]:
    return [np.flatnonzero(strata == s) for s in np.unique(strata)]


def _enumerable(labels: np.ndarray, groups: list[np.ndarray], limit: int) -> bool:
    return math.prod(_n_assignments(labels[g]) for g in groups) <= limit


def _every_assignment(labels: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """Every distinct reassignment within strata, one per row: the product of the strata's arrangements
    (the first stratum's varying slowest). Array operations throughout: choosing, say, 999 positions of
    1,000 one tuple at a time cost a second per design."""
    parts = [_arrangements(labels[g]) for g in groups]
    total = math.prod(len(part) for part in parts)
    out = np.empty((total, len(labels)), dtype=labels.dtype)
    after = total
    for g, part in zip(groups, parts, strict=True):
        after //= len(part)
        out[:, g] = np.repeat(np.tile(part, (total // (after * len(part)), 1)), after, axis=0)
    return out


def _assignments(labels: np.ndarray, strata: np.ndarray, limit: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """(reassignments x units label matrix, exact): labels rearranged within each stratum; every
    distinct arrangement when there are at most `limit`, else `limit` independent random ones."""
    groups = _strata_units(strata)
    if _enumerable(labels, groups, limit):
        return _every_assignment(labels, groups), True
    out = np.tile(labels, (limit, 1))
    for g in groups:
        out[:, g] = rng.permuted(out[:, g], axis=1)
    return out, False


@dataclass(frozen=True)
class _Treated:
    """Reassignments held by their treated cells only: row r puts start year ``vals[r, j]`` on unit
    ``cols[r, j]`` and 0 on every other of the ``units`` units. Within a row, each stratum's units are in
    ascending order (the order the estimator sums them in; strata may be interleaved or side by side).

    Reassigning within strata keeps each row's number of treated units, so the cells form equal-length
    rows: a few treated units among thousands cost rows x treated, not rows x units, to hold and to sum.
    """

    cols: np.ndarray
    vals: np.ndarray
    units: int

    @classmethod
    def of(cls, assign: np.ndarray) -> _Treated:
        rows, cols = np.nonzero(assign)
        width = int((assign[0] > 0).sum()) if len(assign) else 0
        shape = (len(assign), width)  # 32-bit positions and start years: half the memory of the drawn labels
        return cls(cols.astype(np.int32).reshape(shape), assign[rows, cols].astype(np.int32).reshape(shape),
                   assign.shape[1])

    @classmethod
    def cells(cls, cols: np.ndarray, vals: np.ndarray, units: int) -> _Treated:
        """Cells given row by row in any order, held as :meth:`of` holds them (columns ascending)."""
        ascending = np.argsort(cols, axis=1, kind="stable")
        return cls(np.take_along_axis(cols, ascending, axis=1).astype(np.int32),
                   np.take_along_axis(vals, ascending, axis=1).astype(np.int32), units)

    def dense(self) -> np.ndarray:
        out = np.zeros((len(self.cols), self.units), dtype=self.vals.dtype)
        np.put_along_axis(out, self.cols, self.vals, axis=1)
        return out


def _drawn(labels: np.ndarray, groups: list[np.ndarray], limit: int, rng: np.random.Generator) -> _Treated:
    """The random reassignments of :func:`_assignments` (the same draws from the same generator), held by their
    treated cells without the dense matrix being scattered back: each stratum's units side by side, so each
    one's rows are shuffled in place (``Generator.permuted`` draws the same swaps for the same units in the same
    order whatever their item size: 16-bit start years here), and the treated cells mapped back to their units.
    At 7,000 schools x 1,999 draws, gathering and scattering each stratum's columns of the dense matrix took
    several times the shuffles themselves. Each row's cells stay stratum by stratum, each stratum's units
    ascending (as its block lists them): sorting them across strata took half as long as the shuffles."""
    order = np.concatenate(groups).astype(np.int32)
    fits = len(labels) and np.iinfo(np.int16).min <= labels.min() and labels.max() <= np.iinfo(np.int16).max
    work = np.tile(labels.astype(np.int16 if fits else labels.dtype)[order], (limit, 1))
    _shuffle_blocks(work, [len(units) for units in groups], rng)
    treated = np.flatnonzero(work != 0)  # row-major: each row's treated positions, block by block
    shape = (limit, int(np.count_nonzero(labels)))
    return _Treated(order[treated % max(len(labels), 1)].reshape(shape),
                    work.ravel()[treated].astype(np.int32).reshape(shape), len(labels))


def _shuffle_blocks(work: np.ndarray, sizes: list[int], rng: np.random.Generator) -> None:
    """Shuffle each row of each block of columns (`sizes` side by side) in place, block after block."""
    start = 0
    for size in sizes:
        block = work[:, start:start + size]
        rng.permuted(block, axis=1, out=block)
        start += size


class _SharedDraws:
    """The shuffles of a fresh ``default_rng(seed)``, kept by stratum sizes while :func:`shared_draws` is open
    (the last `most` sizes used).

    A shuffle's swaps depend on the number of units shuffled, never on their labels, so every design with the
    same stratum sizes, limit and seed is reassigned by the same draws: the clusters of a district, each
    compared with the district's never-treated schools of its levels, fall into a few such sizes.
    """

    def __init__(self, most: int):
        self.most, self.kept, self.lock = most, collections.OrderedDict(), threading.Lock()

    def shuffled(self, sizes: tuple[int, ...], limit: int, seed: int) -> np.ndarray:
        """``shuffled[r, k]``: which unit (numbered within its stratum) row r's shuffle puts at position k of
        its stratum's block, the strata's blocks side by side in `sizes` order (:func:`_drawn`'s shuffles, made
        on the units' numbers instead of their labels)."""
        key = (sizes, limit, seed)
        with self.lock:
            if key in self.kept:
                self.kept.move_to_end(key)
                return self.kept[key]
        dtype = np.int16 if max(sizes) <= np.iinfo(np.int16).max else np.int32
        work = np.tile(np.concatenate([np.arange(n, dtype=dtype) for n in sizes]), (limit, 1))
        _shuffle_blocks(work, list(sizes), np.random.default_rng(seed))
        with self.lock:
            self.kept[key] = work
            while len(self.kept) > self.most:
                self.kept.popitem(last=False)
        return work


_SHARED: _SharedDraws | None = None
_OPEN = [0]  # shared_draws blocks open (any thread): the draws are dropped when the last one ends
_OPENING = threading.Lock()
# A cluster's estimates reassign among strata of up to four sizes (suspensions and risk ratios, climate and
# chronic absence: each its schools with data); one size's draws hold about 6 MB at 2,000 schools, 30 MB at 10,000.
SHARED_DRAWS_KEPT = 4


@contextlib.contextmanager
def shared_draws(most: int = SHARED_DRAWS_KEPT) -> Iterator[None]:
    """Within: designs whose strata have the sizes of one reassigned before read its draws instead of making
    them again (the same draws: see :class:`_SharedDraws`). For many estimates in a row, e.g. each cluster's
    against the district's never-treated schools; the draws are dropped at the end."""
    global _SHARED
    with _OPENING:
        _OPEN[0] += 1
        _SHARED = _SHARED or _SharedDraws(most)
    try:
        yield
    finally:
        with _OPENING:
            _OPEN[0] -= 1
            if not _OPEN[0]:
                _SHARED = None


def _drawn_shared(labels: np.ndarray, groups: list[np.ndarray], limit: int, seed: int,
                  shared: _SharedDraws) -> _Treated:
    """:func:`_drawn` read off shared shuffles: position k of a stratum takes the label of the unit shuffled
    there, so the treated cells are the positions holding a treated unit."""
    work = shared.shuffled(tuple(len(g) for g in groups), limit, seed)
    cols, vals, start = [], [], 0
    for g in groups:
        block, own = work[:, start:start + len(g)], labels[g]
        rows, at = np.nonzero((own != 0)[block])
        shape = (limit, int(np.count_nonzero(own)))
        cols.append(g[at].reshape(shape))
        vals.append(own[block[rows, at]].reshape(shape))
        start += len(g)
    return _Treated.cells(np.concatenate(cols, axis=1), np.concatenate(vals, axis=1), len(labels))


@lru_cache(maxsize=2)
def _design(labels: bytes, strata: bytes, dtype: str, limit: int, seed: int) -> tuple[_Treated, bool]:
    """:func:`_assignments` drawn from a fresh ``default_rng(seed)``, once per design (the random ones by
    :func:`_drawn`, or from the draws :func:`shared_draws` keeps).

    The outcomes of one panel (suspension rate, OSS days, risk ratios; climate, chronic absence) mostly
    share their units and start years, so their reassignments are the same draws: they are made once. Only
    the last two designs are kept: a district's 400 RP schools x 1,999 draws hold 6 MB.
    """
    labels_, strata_ = np.frombuffer(labels, dtype=dtype), np.frombuffer(strata, dtype=np.int64)
    groups = _strata_units(strata_)
    if _enumerable(labels_, groups, limit):
        return _Treated.of(_every_assignment(labels_, groups)), True
    shared = _SHARED
    if shared is not None:
        return _drawn_shared(labels_, groups, limit, seed, shared), False
    return _drawn(labels_, groups, limit, np.random.default_rng(seed)), False


def _treated_assignments(labels: np.ndarray, strata: np.ndarray, limit: int, seed: int) -> tuple[_Treated, bool]:
    return _design(labels.tobytes(), strata.astype(np.int64).tobytes(), labels.dtype.str, limit, seed)


# --- estimator -------------------------------------------------------------------------------------


def _estimates(outcomes: np.ndarray, years: np.ndarray, strata: np.ndarray, assign: _Treated,
               event_times: list[int]) -> tuple[np.ndarray, dict[int, np.ndarray], dict[int, int]]:
    """Overall and event-time estimates for every assignment row.

    outcomes: units x years x k (the outcome, the post-start indicator, then one indicator per event time in
    ``event_times`` order, sharing one missing-value mask); assign: assignments x units of start years
    (0 = never), rearranged within strata only, so each stratum keeps its cohorts. ATT(g, t) cells are formed
    within each stratum and pooled over strata with the same treated-unit weights. Returns overall
    (assignments x the first two of the k: the outcome and the post-start indicator), event estimates keyed by
    e (assignments x 2: the outcome and e's own indicator) and, for the first assignment row, the number of
    treated units behind each e. Test inversion reads only these columns of each estimate, so only these are
    summed: the sums of the others were a third of a district's estimate and never read.
    """
    rows, k = assign.cols.shape[0], outcomes.shape[2]
    overall_cols = list(range(min(k, 2)))
    event_cols = {e: [0, 2 + i] for i, e in enumerate(event_times)}
    acc = _Sums(np.zeros((rows, len(overall_cols))), np.zeros((rows, 1)), {e: np.zeros((rows, 2)) for e in event_times},
                {e: np.zeros((rows, 1)) for e in event_times}, {}, overall_cols, event_cols)
    width = assign.cols.shape[1]
    for s in np.unique(strata):
        members = strata == s
        local = np.cumsum(members) - 1  # unit index -> index among the stratum's units
        inside = np.flatnonzero(members[assign.cols])  # the stratum's cells, row-major (found once)
        cells = (inside // max(width, 1), local[assign.cols.ravel()[inside]], assign.vals.ravel()[inside])
        _accumulate(outcomes[members], years, cells, rows, acc)
    with np.errstate(invalid="ignore", divide="ignore"):
        overall = acc.overall_num / acc.overall_den
        events = {e: acc.ev_num[e] / acc.ev_den[e] for e in event_times}
    return overall, events, acc.counts


@dataclass
class _Sums:
    """Running weighted sums of ATT(g, t) cells: overall and by event time."""

    overall_num: np.ndarray
    overall_den: np.ndarray
    ev_num: dict[int, np.ndarray]
    ev_den: dict[int, np.ndarray]
    counts: dict[int, int]
    overall_cols: list[int]  # the outcome columns each sum holds
    event_cols: dict[int, list[int]]


def _accumulate(outcomes: np.ndarray, years: np.ndarray, cells: tuple[np.ndarray, np.ndarray, np.ndarray],
                rows: int, acc: _Sums) -> None:
    """Add one stratum's ATT(g, t) cells (its treated vs its never-treated units) to `acc`.

    cells: (row, unit, start year) of every treated cell of the stratum's reassignments, row-major.
    """
    from scipy import sparse  # on first use (analytics.stats.rates says why)

    year_index = {int(y): i for i, y in enumerate(years)}
    row, unit, start = cells
    unit = unit.astype(np.int32)  # the sparse matrices' own index type: not converted again for each one
    shape, ones = (rows, outcomes.shape[0]), np.ones(len(row))

    def membership(picked_rows: np.ndarray, picked_units: np.ndarray) -> sparse.csr_matrix:
        # The cells are row-major with their units ascending within a row: the compressed rows are written
        # directly (the matrix (data, (row, unit)) makes, without sorting every cell again).
        indptr = np.concatenate([[0], np.cumsum(np.bincount(picked_rows, minlength=rows))]).astype(np.int32)
        return sparse.csr_matrix((ones[:len(picked_rows)], picked_units, indptr), shape=shape)

    # Each ATT(g, t) cell's change from the base year (with its known-value indicator first), only the columns
    # the cell adds to: test inversion reads the outcome and each estimate's own indicator alone.
    parts, columns, totals = [], [], []
    for g in np.unique(start[row == 0]):
        base = year_index[int(g) - 1]
        for t_index, t in enumerate(years):
            e = int(t - g)
            if t_index == base or (e < 0 and e not in acc.ev_num):
                continue
            diff = outcomes[:, t_index, :] - outcomes[:, base, :]
            ok = np.isfinite(diff[:, 0])
            both = np.column_stack([ok, np.where(ok[:, None], diff, 0.0)])
            used = sorted(set(acc.overall_cols if e >= 0 else []) | set(acc.event_cols.get(e, [])))
            picked = [0, *(1 + c for c in used)]
            parts.append((g, e, used, sum(len(c) for c in totals)))
            columns.append(both[:, picked])
            totals.append(both.sum(axis=0)[picked])
    if not parts:
        return
    # Sparse membership: each row holds only the treated units, so sums cost rows x treated, not rows x units;
    # never-treated sums are the column totals minus the treated sums. Every cell's columns are summed in one
    # product per membership (a sparse product sums each column on its own, in the same order whatever columns
    # stand beside it: the same sums as one product per cell, without walking the cells again for each).
    changes = np.hstack(columns)
    treated_any = membership(row, unit) @ changes
    treated_by_cohort = {}
    for g in np.unique([g for g, *_ in parts]):
        pick = start == g
        first = min(at for h, _, _, at in parts if h == g)
        last = max(at + 1 + len(used) for h, _, used, at in parts if h == g)
        treated_by_cohort[g] = (first, membership(row[pick], unit[pick]) @ changes[:, first:last])
    for (g, e, used, at), total in zip(parts, totals, strict=True):
        first, sums = treated_by_cohort[g]
        treated_sums = sums[:, at - first:at - first + len(total)]
        never_sums = total[None, :] - treated_any[:, at:at + len(total)]
        n_t, n_c = treated_sums[:, 0], never_sums[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            att = treated_sums[:, 1:] / n_t[:, None] - never_sums[:, 1:] / n_c[:, None]
        weight = np.where(np.isfinite(att[:, :1]) & (n_c[:, None] > 0), n_t[:, None], 0.0)
        att = np.where(weight > 0, att, 0.0)
        if e >= 0:
            acc.overall_num += weight * att[:, [used.index(c) for c in acc.overall_cols]]
            acc.overall_den += weight
        if e in acc.ev_num:
            acc.ev_num[e] += weight * att[:, [used.index(c) for c in acc.event_cols[e]]]
            acc.ev_den[e] += weight
            acc.counts[e] = acc.counts.get(e, 0) + int(weight[0, 0])


def _indicator(labels: np.ndarray, years: np.ndarray, mask: np.ndarray, rel: int | None) -> np.ndarray:
    """1 where the observed assignment puts a unit at `rel` years since start (any post year if None)."""
    since = years[None, :] - labels[:, None]
    on = (labels[:, None] > 0) & ((since >= 0) if rel is None else (since == rel))
    return np.where(mask, on.astype(float), np.nan)


# --- test inversion --------------------------------------------------------------------------------


def _accepted_sets(estimate: float, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed intervals (lows, highs) where |a_i - tau b_i| >= |estimate - tau|, at most two per i.

    The condition is (b^2 - 1) tau^2 + 2 (estimate - a b) tau + (a^2 - estimate^2) >= 0.
    """
    qa, qb, qc = b * b - 1.0, 2.0 * (estimate - a * b), a * a - estimate * estimate
    tol = 1e-9 * (1.0 + a * a + estimate * estimate)
    inf = np.full(len(a), np.inf)
    lows, highs = [], []

    def add(mask: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
        lows.append(low[mask])
        highs.append(high[mask])

    linear = np.abs(qa) < 1e-12
    flat = linear & (np.abs(qb) < 1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        root = -qc / qb
        add(flat & (qc >= -tol), -inf, inf)
        add(linear & ~flat & (qb > 0), root, inf)
        add(linear & ~flat & (qb < 0), -inf, root)
        disc = qb * qb - 4 * qa * qc
        sq = np.sqrt(np.maximum(disc, 0.0))
        r1 = np.minimum((-qb - sq) / (2 * qa), (-qb + sq) / (2 * qa))
        r2 = np.maximum((-qb - sq) / (2 * qa), (-qb + sq) / (2 * qa))
    up, down = ~linear & (qa > 0), ~linear & (qa < 0)
    add(up & (disc <= tol), -inf, inf)
    add(up & (disc > tol), -inf, r1)
    add(up & (disc > tol), r2, inf)
    add(down & (disc >= -tol), r1, r2)
    low, high = np.concatenate(lows), np.concatenate(highs)
    slack = 1e-9 * (1.0 + np.abs(low[np.isfinite(low)]).max(initial=0) + abs(estimate))
    return low - slack, high + slack


def invert_test(estimate: float, a: np.ndarray, b: np.ndarray, alpha: float, exact: bool) -> tuple[float, float, float]:
    """p-value of "effect = 0" and the 1 - alpha interval of constant effects tau not rejected.

    Under "effect = tau" the observed statistic is ``estimate - tau`` and a reassignment's is
    ``a - tau * b``. p(tau) = (c + #{|a - tau b| >= |estimate - tau|}) / (c + len(a)), with c = 0
    when `a` enumerates every assignment (the observed one included) and c = 1 for random draws.
    The count is a step function of tau that changes only at the roots of a quadratic per
    reassignment, so it is evaluated exactly at those roots and between them; the interval runs
    from the lowest to the highest accepted tau (infinite when every tau far out is accepted).
    """
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    c = 0 if exact else 1
    if len(a) == 0:
        return np.nan, -np.inf, np.inf
    low, high = _accepted_sets(estimate, a, b)
    lows, highs = np.sort(low), np.sort(high)

    def p_at(tau: np.ndarray) -> np.ndarray:
        count = np.searchsorted(lows, tau, side="right") - np.searchsorted(highs, tau, side="left")
        return (c + count) / (c + len(a))

    ends = np.unique(np.concatenate([[estimate], low[np.isfinite(low)], high[np.isfinite(high)]]))
    points = np.concatenate([ends, (ends[:-1] + ends[1:]) / 2])
    accepted = points[p_at(points) > alpha]
    far = (c + np.array([np.isneginf(low).sum(), np.isposinf(high).sum()])) / (c + len(a)) > alpha
    low_end = -np.inf if far[0] else float(accepted.min())
    high_end = np.inf if far[1] else float(accepted.max())
    return float(p_at(np.array([0.0]))[0]), low_end, high_end


# --- putting it together ---------------------------------------------------------------------------


def _infer(outcome: str, values: np.ndarray, years: np.ndarray, labels: np.ndarray, strata: np.ndarray, note: str,
           settings: Settings, seed: int, with_events: bool, strata_name: str) -> DiDResult:
    cohorts = np.unique(labels[labels > 0])
    mask = np.isfinite(values)
    event_times = sorted({int(t - g) for g in cohorts for t in years if t != g - 1}) if with_events else []
    panels = [np.where(mask, values, np.nan), _indicator(labels, years, mask, None)]
    panels += [_indicator(labels, years, mask, e) for e in event_times]
    stacked = np.stack(panels, axis=2)
    assign, exact = _treated_assignments(labels, strata, settings.permutations, seed)
    first = _Treated.of(labels[None, :])
    observed = _Treated(np.concatenate([first.cols, assign.cols]), np.concatenate([first.vals, assign.vals]),
                        len(labels))
    overall, events, counts = _estimates(stacked, years, strata, observed, event_times)
    n_treated, n_never = int((labels > 0).sum()), int((labels == 0).sum())
    sizes = np.unique(labels[labels > 0], return_counts=True)[1]
    same = f" of the same {strata_name}" if strata_name else ""
    method = (f"Callaway-Sant'Anna DiD vs never-treated schools{same}; randomization inference: start years "
              + (f"reassigned within each {strata_name} " if strata_name else "reassigned ")
              + (f"in all {len(assign.cols):,} possible ways (exact)" if exact else f"at random {len(assign.cols):,} times")
              + "; 95% CI by test inversion")
    estimate = float(overall[0, 0])
    if not np.isfinite(estimate):
        return DiDResult(outcome, n_treated=n_treated, n_comparison=n_never, method="not estimable",
                         note="no treated school has outcome values both before and after its start")
    alpha = settings.alpha
    p_value, low, high = invert_test(estimate, overall[1:, 0], overall[1:, 1], alpha, exact)
    rows = []
    for e in event_times:
        est_e = float(events[e][0, 0])
        if not np.isfinite(est_e):
            continue
        _, lo_e, hi_e = invert_test(est_e, events[e][1:, 0], events[e][1:, 1], alpha, exact)
        rows.append({"outcome": outcome, "rel_year": e, "estimate": est_e, "ci_low": lo_e, "ci_high": hi_e,
                     "n_schools": counts.get(e, 0)})
    if with_events:
        base_n = int(sum(np.isfinite(values[labels == g, list(years).index(g - 1)]).sum() for g in cohorts))
        rows.append({"outcome": outcome, "rel_year": -1, "estimate": 0.0, "ci_low": 0.0, "ci_high": 0.0,
                     "n_schools": base_n})
    events_frame = (pd.DataFrame(rows, columns=EVENT_COLUMNS).sort_values("rel_year").reset_index(drop=True)
                    if rows else pd.DataFrame(columns=EVENT_COLUMNS))
    return DiDResult(outcome, estimate, low, high, p_value, n_treated, n_never, method, note,
                     assignments=len(assign.cols), exact=exact, smallest_cohort=int(sizes.min()),
                     event_study=events_frame, strata=strata_name)


# --- plain-language verdict ------------------------------------------------------------------------


def interval_range(low: float, high: float) -> str:
    """'-1.31 to -0.71', or 'unbounded'."""
    return f"{low:+.2f} to {high:+.2f}" if np.isfinite(low) and np.isfinite(high) else "unbounded"


def interval_text(low: float, high: float) -> str:
    """'95% CI -1.31 to -0.71', or a plain statement that the interval is unbounded."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "95% CI unbounded: too few schools to rule any effect out"
    return f"95% CI {interval_range(low, high)}"


def _count(n: int, plural: str) -> str:
    return counted(n, plural.replace("schools", "school"), plural)


def describe(result: DiDResult, *, subject: str, outcome_label: str, unit: str = "points",
             comparison: str = "comparison schools", treated: str = "treated", alpha: float = 0.05) -> str:
    """One paragraph: the estimate in words that follow its sign, a verdict that follows its p-value,
    and what makes it fragile (small samples, few possible reassignments, left-out units)."""
    if not result.estimable:
        return f"The effect on {outcome_label} cannot be estimated: {result.note}."
    est = result.estimate
    moved = "fell" if est < 0 else "rose" if est > 0 else "did not move"
    text = (f"{outcome_label[:1].upper() + outcome_label[1:]} at the {_count(result.n_treated, subject)} {moved}"
            + (f" by {abs(est):.2f} {unit}" if est else "")
            + f" relative to the trend at the {_count(result.n_comparison, comparison)}"
            + (f" of the same {result.strata}" if result.strata else "") + " "
            f"({interval_text(result.ci_low, result.ci_high)}; randomization p = {result.p_value:.3f}). ")
    if result.significant(alpha):
        text += (f"With p at or below {alpha:g}, a {'fall' if est < 0 else 'rise'} this large is unlikely to be "
                 "chance alone. ")
    else:
        text += f"With p above {alpha:g} this could be chance: no change can be claimed. "
    if result.small:
        why = [f"{result.n_treated} {treated} and {result.n_comparison} comparison schools"]
        if result.smallest_cohort == 1:
            why.append("a start-year cohort of one school")
        text += f"Small sample ({'; '.join(why)}): the estimate is fragile. "
    if result.exact and result.assignments * alpha < 1:
        text += (f"Only {result.assignments} ways to assign the start years exist, so the smallest possible "
                 f"p-value is {1 / result.assignments:.2f}: no effect could be shown at this scale. ")
    if result.note:
        text += result.note[:1].upper() + result.note[1:] + ". "
    return text.strip()
