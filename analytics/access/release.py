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
   district; race groups, and female plus male, add up to ``ALL``), for counts and for ``n`` alike.
   The release is audited as a whole by bounds propagation over those sums, the bands and 0 <= k <= n,
   rounded to integers (the same attack the privacy-attack suite runs): when a hidden count or ``n``
   is pinned to a single integer, one more released cell of a sum that pins it is hidden (the one
   with the fewest students, never the parent when a child will do), and the audit runs again.
   Changes across years and gaps add nothing to that audit because they are released only when all
   their cells are released exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.data.catalog import RACE_GROUPS
from analytics.data.derived import discipline_with_all, suspension_counts

EXACT, CODED_LOW, CODED_HIGH, HIDDEN = "exact", "low", "high", "hidden"
KEYS = ["unit", "school_year", "measure", "student_group"]
# Discipline outcomes (DESIGN §7 names) and the discipline columns they count; all share `enrolled`.
DISCIPLINE_MEASURES = {"suspension": None, "iss": "students_iss", "oss": "students_oss",
                       "expulsion": "students_expelled", "law_referral": "law_referrals", "incidents": "incidents"}
SENSITIVE = frozenset(DISCIPLINE_MEASURES)
PARTITIONS = (tuple(RACE_GROUPS), ("FEMALE", "MALE"))
BIG = 1e9  # "no upper bound" for a hidden n; sums of thousands of these stay exact in float64


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


def _relations(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum relations as memberships (relation id, cell row, coefficient) for counts; n uses n_var."""
    rels: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    next_id = 0
    idx = cells.reset_index(drop=True)
    # Hierarchy: school cells -> cluster cell; cluster cells -> district cell.
    key = ["school_year", "measure", "student_group"]
    parents = idx[idx["level"] == 1].set_index(["unit", *key]).index
    child = idx[idx["level"] == 0]
    child_parent = pd.MultiIndex.from_arrays([("cluster:" + child["cluster"].astype(str)).to_numpy(),
                                              *(child[c].to_numpy() for c in key)])
    pos = pd.Series(np.arange(len(parents)), index=parents)
    parent_row = pd.Series(idx.index[idx["level"] == 1], index=parents)
    found = child_parent.isin(parents)
    rid = pos.reindex(child_parent[found]).to_numpy() + next_id
    rels.append((rid, child.index[found].to_numpy(), np.ones(found.sum())))
    rels.append((np.arange(len(parents)) + next_id, parent_row.to_numpy(), -np.ones(len(parents))))
    next_id += len(parents)
    district = idx[idx["level"] == 2].set_index(key)
    clusters = idx[idx["level"] == 1]
    dpos = pd.Series(np.arange(len(district)), index=district.index)
    ckey = pd.MultiIndex.from_frame(clusters[key])
    found = ckey.isin(district.index)
    rels.append((dpos.reindex(ckey[found]).to_numpy() + next_id, clusters.index[found].to_numpy(),
                 np.ones(found.sum())))
    rels.append((np.arange(len(district)) + next_id, idx.index[idx["level"] == 2].to_numpy(),
                 -np.ones(len(district))))
    next_id += len(district)
    # Partitions: race groups (and female + male) add up to ALL, when the counts say so exactly.
    unit_key = ["unit", "school_year", "measure"]
    alls = idx[idx["student_group"] == "ALL"].set_index(unit_key)[["k", "n"]]
    alls["row"] = idx.index[idx["student_group"] == "ALL"]
    for members in PARTITIONS:
        part = idx[idx["student_group"].isin(members)]
        sums = part.groupby(unit_key)[["k", "n"]].sum()
        both = sums.join(alls.add_suffix("_all").rename(columns={"row_all": "row"}), how="inner")
        exact = both[(both["k"] == both["k_all"]) & (both["n"] == both["n_all"])]
        if exact.empty:
            continue
        epos = pd.Series(np.arange(len(exact)), index=exact.index)
        pkey = pd.MultiIndex.from_frame(part[unit_key])
        found = pkey.isin(exact.index)
        rels.append((epos.reindex(pkey[found]).to_numpy() + next_id, part.index[found].to_numpy(),
                     np.ones(found.sum())))
        rels.append((np.arange(len(exact)) + next_id, exact["row"].to_numpy(), -np.ones(len(exact))))
        next_id += len(exact)
    rel = np.concatenate([r[0] for r in rels]).astype(np.int64)
    row = np.concatenate([r[1] for r in rels]).astype(np.int64)
    coef = np.concatenate([r[2] for r in rels])
    return rel, row, coef


def _problem(cells: pd.DataFrame) -> _Problem:
    cells = cells.reset_index(drop=True).copy()
    n_keys = cells[["unit", "school_year", "student_group", "n_source", "n"]]
    cells["k_var"] = np.arange(len(cells))
    # Cells with the same n of the same source share one n variable (discipline outcomes share enrolled).
    cells["n_var"] = len(cells) + n_keys.groupby(list(n_keys.columns), sort=False, dropna=False).ngroup().to_numpy()
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
    """
    lo, hi = lo.astype("float64").copy(), hi.astype("float64").copy()
    k_of, n_of = pairs
    lk, ln, low = low_band
    hk, hn, high = high_band
    n_rel = int(rel.max()) + 1 if len(rel) else 0
    order = np.argsort(var, kind="stable")
    sorted_var = var[order]
    starts = np.flatnonzero(np.r_[True, sorted_var[1:] != sorted_var[:-1]]) if len(var) else np.empty(0, int)
    targets = sorted_var[starts] if len(var) else np.empty(0, int)
    for _ in range(max_rounds):
        old_lo, old_hi = lo.copy(), hi.copy()
        if n_rel:
            a_lo = np.where(coef > 0, lo[var], -hi[var])
            a_hi = np.where(coef > 0, hi[var], -lo[var])
            s_lo = np.bincount(rel, a_lo, n_rel)
            s_hi = np.bincount(rel, a_hi, n_rel)
            r_lo, r_hi = s_lo[rel] - a_lo, s_hi[rel] - a_hi
            new_lo = np.where(coef > 0, -r_hi, r_lo)
            new_hi = np.where(coef > 0, -r_lo, r_hi)
            lo[targets] = np.maximum(lo[targets], np.maximum.reduceat(new_lo[order], starts))
            hi[targets] = np.minimum(hi[targets], np.minimum.reduceat(new_hi[order], starts))
        np.minimum.at(hi, k_of, hi[n_of])
        np.maximum.at(lo, n_of, lo[k_of])
        if len(lk):
            np.minimum.at(hi, lk, np.floor(low * hi[ln] + 1e-9))
            np.maximum.at(lo, ln, np.ceil(lo[lk] / low - 1e-9) if low > 0 else lo[ln])
        if len(hk):
            np.maximum.at(lo, hk, np.ceil(high * lo[hn] - 1e-9))
            np.minimum.at(hi, hn, np.floor(hi[hk] / high + 1e-9))
        lo = np.maximum(np.ceil(lo - 1e-9), 0.0)  # every variable is a count
        hi = np.minimum(np.floor(hi + 1e-9), BIG)
        crossed = lo > hi  # contradictory sums (an assumed sum that does not hold): keep the old bounds
        lo[crossed], hi[crossed] = old_lo[crossed], old_hi[crossed]
        changed = (lo != old_lo) | (hi != old_hi)
        # Only unbounded variables still moving (two hidden n trading bounds of ~1e9): nothing can pin.
        if not changed.any() or (hi - lo)[changed].min() > 1e6:
            break
    return lo, hi


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


def audit(problem: _Problem, hidden: np.ndarray, state: np.ndarray, settings: Settings) -> Audit:
    """The attack on the decision: which hidden variables are pinned to a single integer?"""
    lo = np.where(hidden, 0.0, problem.k_true)
    hi = np.where(hidden, BIG, problem.k_true)
    cells = problem.cells
    low, high = _bands(cells, state, settings)
    lo, hi = propagate(lo, hi, problem.rel, problem.var, problem.coef,
                       (cells["k_var"].to_numpy(), cells["n_var"].to_numpy()), low, high)
    disclosed = np.flatnonzero(hidden & (lo == hi))
    return Audit(lo, hi, disclosed)


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


def decide(cells: pd.DataFrame, settings: Settings = DEFAULT_SETTINGS, max_rounds: int = 100,
           complementary: bool = True) -> pd.DataFrame:
    """Cells with ``state`` (exact, low, high, hidden), ``n_hidden`` and ``disclosed`` (should stay False).

    ``complementary=False`` stops after rules 1 and 2 (to show what the audit adds)."""
    if cells.empty:
        return cells.assign(state=pd.Series(dtype=object), n_hidden=pd.Series(dtype=bool),
                            disclosed=pd.Series(dtype=bool))
    problem = _problem(cells)
    c = problem.cells
    k_var, n_var = c["k_var"].to_numpy(), c["n_var"].to_numpy()
    state, small = _primary(c, settings)
    hidden = np.zeros(len(problem.k_true), dtype=bool)
    hidden[n_var[small]] = True
    for _ in range(max_rounds):
        state = np.where(hidden[n_var], HIDDEN, state)  # no n, no rate: the whole cell goes
        hidden[k_var] = state != EXACT
        result = audit(problem, hidden, state, settings)
        if not len(result.disclosed) or not complementary:
            break
        extra = _complements(problem, hidden, result)
        if not len(extra):
            break
        hidden[extra] = True
        is_k = extra < len(c)
        state[extra[is_k]] = HIDDEN
    out = c.drop(columns=["k_var", "n_var"]).assign(state=state, n_hidden=hidden[n_var])
    disclosed = np.zeros(len(problem.k_true), dtype=bool)
    disclosed[result.disclosed] = True
    out["disclosed"] = disclosed[k_var] | (out["n_hidden"] & disclosed[n_var])
    return out


def _complements(problem: _Problem, hidden: np.ndarray, result: Audit) -> np.ndarray:
    """Variables to hide next: in each fully pinned relation holding a disclosed variable, the released
    member with the fewest students (children before parents); a count pinned by its band alone gets
    its n hidden."""
    pinned = result.lo == result.hi
    m = pd.DataFrame({"rel": problem.rel, "var": problem.var, "parent": problem.parent})
    m["pinned"] = pinned[m["var"]]
    m["disclosed"] = np.isin(m["var"], result.disclosed)
    rel_all_pinned = m.groupby("rel")["pinned"].transform("all")
    rel_disclosed = m.groupby("rel")["disclosed"].transform("any")
    open_rows = m[rel_all_pinned & rel_disclosed & ~hidden[m["var"]]].copy()
    chosen: set[int] = set()
    if len(open_rows):
        open_rows["size"] = problem.size[open_rows["var"]]
        best = open_rows.sort_values(["parent", "size"]).drop_duplicates("rel").sort_values(["parent", "size"])
        disclosed_in = m[m["disclosed"] & rel_all_pinned].groupby("rel")["var"].apply(list)
        handled: set[int] = set()
        # Smallest fixes first; opening one sum frees the disclosed members it holds, so a sum whose
        # disclosed members were freed this round waits for the next audit (no needless suppression).
        for rel_id, var_id in zip(best["rel"], best["var"], strict=True):
            members = disclosed_in.get(rel_id, [])
            if handled.intersection(members):
                continue
            chosen.add(int(var_id))
            handled.update(members)
    # A variable pinned from two sides (or by its band): its n goes when it is a coded count, and the
    # smallest released member of each of its relations goes too.
    in_rel = set(m.loc[rel_all_pinned & rel_disclosed, "var"])
    cells = problem.cells
    n_of_k = pd.Series(cells["n_var"].to_numpy(), index=cells["k_var"].to_numpy())
    rest = [int(v) for v in result.disclosed if int(v) not in in_rel]
    if rest:
        for v in rest:
            if v in n_of_k.index and not hidden[n_of_k[v]]:
                chosen.add(int(n_of_k[v]))
        rels = m.loc[m["var"].isin(rest), "rel"].unique()
        others = m[m["rel"].isin(rels) & ~hidden[m["var"]]].copy()
        if len(others):
            others["size"] = problem.size[others["var"]]
            chosen.update(others.sort_values(["parent", "size"]).drop_duplicates("rel")["var"].tolist())
    return np.array(sorted(chosen), dtype=np.int64)


# --- the decision for a whole district ------------------------------------------------------------------


@dataclass
class Release:
    """Cell states for everything the district can show, indexed by (unit, school_year, measure, group)."""

    cells: pd.DataFrame
    suspension_derived: bool = True

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


def build_release(schools: pd.DataFrame, metrics: pd.DataFrame, discipline: pd.DataFrame,
                  settings: Settings = DEFAULT_SETTINGS, complementary: bool = True) -> Release:
    """Decide every cell of the district: discipline outcomes together (they share `enrolled`), each
    counted metric on its own."""
    derived = not (metrics["metric"] == "suspension_rate").any() if len(metrics) else True
    families = []
    if len(discipline):
        families.append(discipline_cells(discipline))
    if len(metrics):
        counted = metrics.dropna(subset=["numerator", "denominator"])
        if derived:
            counted = counted[counted["metric"] != "suspension_rate"]
        families.extend(metric_cells(rows) for _, rows in counted.groupby("metric"))
    decided = [decide(pooled_cells(f, schools), settings, complementary=complementary) for f in families if len(f)]
    if not decided:
        empty = pd.DataFrame(columns=[*KEYS, "k", "n", "state", "n_hidden", "disclosed"])
        return Release(empty.set_index(KEYS), derived)
    cells = pd.concat(decided, ignore_index=True)
    cells["school_year"] = cells["school_year"].astype("float64")
    return Release(cells.set_index(KEYS)[["k", "n", "state", "n_hidden", "disclosed"]].sort_index(), derived)


_CACHE: dict[tuple, Release] = {}


def release_for(engine, settings: Settings = DEFAULT_SETTINGS, complementary: bool = True) -> Release:
    """The district's release decision from the database, decided once per data version (an import bumps
    the version, so the next call decides again)."""
    from analytics.data import storage

    key = (str(engine.url), storage.data_version(engine), id(settings), complementary)
    if key not in _CACHE:
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = build_release(storage.load_schools(engine), storage.load_metrics(engine),
                                    storage.load_discipline(engine), settings, complementary)
    return _CACHE[key]
