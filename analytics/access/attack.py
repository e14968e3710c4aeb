"""The privacy-attack suite (DESIGN §3 rule 4, §8): try to recover hidden cells from what is released.

The attacker sees only released tables (public exports, public packs, shared views): every number
and mark in them, the schools file (which school is in which cluster, its level) and the rules
(cut points, bands). It never sees the release decision. It then tries, until nothing changes:

- **algebra across columns and years**: a gap plus its reference gives the group's rate; "all other
  students" and the school's `ALL` give the group's count; this year's value minus its change gives
  last year's (status and gap alike); composition, comparison risk, risk ratio and rate difference
  each give a count back from the others;
- **subtraction** through sums: school rows add up to their cluster row, clusters to the district;
  race groups and female plus male add up to `ALL` (bounds propagation over the sums, for counts
  and for numbers of students);
- **integer solutions**: for a hidden count k of a known n, the integers consistent with the released
  rate interval (bands, status levels) and the sums; a single survivor is a recovery.

A hidden cell is one whose count the tables do not show directly. It counts as *recovered* only when
the attack pins it to one integer and that integer is the true count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analytics.access.exact_audit import ExactReport, System, exact_unique
from analytics.access.release import Release
from analytics.access.release_audit import BIG, propagate
from analytics.access.release_cells import KEYS, _relations, pooled_cells, shared_denominators
from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.stats.status_change import CHANGE_LEVELS, STATUS_LEVELS

BAND = {"<= 5.0%": (0.0, 5.0), ">= 95.0%": (95.0, 100.0)}


@dataclass
class AttackReport:
    hidden: int                 # hidden counts among the cells the tables mention
    recovered: int              # hidden counts pinned to their true value
    hidden_n: int
    recovered_n: int
    released_rows: int
    examples: list[dict] = field(default_factory=list)
    exact: dict | None = None   # the integer-program audit's figures (cells audited, components, seconds)

    def as_dict(self) -> dict:
        return {"hidden": self.hidden, "recovered": self.recovered, "hidden_n": self.hidden_n,
                "recovered_n": self.recovered_n, "released_rows": self.released_rows, "examples": self.examples,
                "exact_audit": self.exact}


def _num(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce")


class _Knowledge:
    """What the attacker knows about each cell: integer bounds on k and n, an interval on the rate."""

    COLS = ("k_lo", "k_hi", "n_lo", "n_hi", "v_lo", "v_hi")

    def __init__(self, keys: pd.MultiIndex):
        self.index = keys
        size = len(keys)
        self.a = {"k_lo": np.zeros(size), "k_hi": np.full(size, BIG), "n_lo": np.zeros(size),
                  "n_hi": np.full(size, BIG), "v_lo": np.zeros(size), "v_hi": np.full(size, 100.0)}

    @property
    def t(self) -> pd.DataFrame:
        return pd.DataFrame(self.a, index=self.index)

    def tighten(self, keys: pd.MultiIndex, col: str, lo=None, hi=None) -> int:
        """Intersect bounds of `col` (k, n or v) at `keys`; returns how many cells changed."""
        pos = self.index.get_indexer(keys)
        ok = pos >= 0
        pos = pos[ok]
        before_lo, before_hi = self.a[f"{col}_lo"][pos].copy(), self.a[f"{col}_hi"][pos].copy()
        if lo is not None:
            values = np.broadcast_to(np.asarray(lo, dtype="float64"), ok.shape)[ok]
            np.fmax.at(self.a[f"{col}_lo"], pos, values)
        if hi is not None:
            values = np.broadcast_to(np.asarray(hi, dtype="float64"), ok.shape)[ok]
            np.fmin.at(self.a[f"{col}_hi"], pos, values)
        crossed = self.a[f"{col}_lo"][pos] > self.a[f"{col}_hi"][pos]
        if crossed.any():  # a contradiction (an assumption that does not hold here): keep what was known
            self.a[f"{col}_lo"][pos[crossed]] = before_lo[crossed]
            self.a[f"{col}_hi"][pos[crossed]] = before_hi[crossed]
        return int(((self.a[f"{col}_lo"][pos] != before_lo) | (self.a[f"{col}_hi"][pos] != before_hi)).sum())

    def exact(self, col: str) -> pd.Series:
        """The known exact value of `col` per cell (NaN when not pinned)."""
        lo, hi = self.a[f"{col}_lo"], self.a[f"{col}_hi"]
        tol = 1e-7 if col == "v" else 0
        return pd.Series(np.where((hi - lo) <= tol, lo, np.nan), index=self.index)

    def integers(self) -> int:
        """Rates and n give k; k and n give the rate; integer rounding of k and n."""
        a = self.a
        before = np.stack([a[c].copy() for c in ("k_lo", "k_hi", "n_lo", "n_hi")])
        n = a["n_lo"]
        known_n = a["n_lo"] == a["n_hi"]
        a["k_lo"] = np.where(known_n, np.fmax(a["k_lo"], np.ceil(a["v_lo"] * n / 100 - 1e-6)), a["k_lo"])
        a["k_hi"] = np.where(known_n, np.fmin(a["k_hi"], np.floor(a["v_hi"] * n / 100 + 1e-6)), a["k_hi"])
        a["k_hi"] = np.fmin(a["k_hi"], a["n_hi"])
        a["n_lo"] = np.fmax(a["n_lo"], a["k_lo"])
        both = (a["k_lo"] == a["k_hi"]) & known_n & (n > 0)
        rate = 100 * a["k_lo"] / np.where(n > 0, n, np.nan)
        a["v_lo"] = np.where(both, np.fmax(a["v_lo"], rate - 1e-9), a["v_lo"])
        a["v_hi"] = np.where(both, np.fmin(a["v_hi"], rate + 1e-9), a["v_hi"])
        for c in ("k", "n"):
            a[f"{c}_lo"] = np.ceil(a[f"{c}_lo"] - 1e-9)
            a[f"{c}_hi"] = np.floor(a[f"{c}_hi"] + 1e-9)
        after = np.stack([a[c] for c in ("k_lo", "k_hi", "n_lo", "n_hi")])
        return int((before != after).any(axis=0).sum())


def _index(frame: pd.DataFrame, unit, year, measure, group) -> pd.MultiIndex:
    def col(x):
        if isinstance(x, pd.Series):
            return x
        return frame[x] if isinstance(x, str) and x in frame.columns else pd.Series(x, index=frame.index)
    return pd.MultiIndex.from_arrays([col(unit).astype(object).to_numpy(), col(year).astype("float64").to_numpy(),
                                      col(measure).astype(object).to_numpy(), col(group).astype(object).to_numpy()])


def _rate_interval(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """A released rate cell as an interval: a number, a band, or nothing (0-100)."""
    num = _num(values)
    lo = num.copy()
    hi = num.copy()
    text = values.astype(str)
    for band, (a, b) in BAND.items():
        lo = lo.where(text != band, a)
        hi = hi.where(text != band, b)
    return lo, hi


def _ingest_cell(kn: _Knowledge, keys, k=None, n=None, rate=None) -> None:
    if k is not None:
        kn.tighten(keys, "k", _num(k).to_numpy(), _num(k).to_numpy())
    if n is not None:
        kn.tighten(keys, "n", _num(n).to_numpy(), _num(n).to_numpy())
    if rate is not None:
        lo, hi = _rate_interval(rate)
        kn.tighten(keys, "v", (lo - 1e-9).to_numpy(), (hi + 1e-9).to_numpy())


def _level_intervals(levels: pd.Series, metric: pd.Series, school_level: pd.Series, settings: Settings,
                     kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Status (or change) level names back to the value interval their cut points allow."""
    lo = np.full(len(levels), np.nan)
    hi = np.full(len(levels), np.nan)
    for i, (name, m, lv) in enumerate(zip(levels.astype(str), metric, school_level, strict=True)):
        cuts = settings.cuts_for(m, lv)
        if cuts is None:
            continue
        if kind == "status" and name in STATUS_LEVELS:
            j = STATUS_LEVELS.index(name)
            bounds = (-np.inf, *cuts.status, np.inf)
            lo[i], hi[i] = bounds[j] - 0.05, bounds[j + 1] + 0.05  # classified after rounding to 0.1
        elif kind == "change" and name in CHANGE_LEVELS:
            j = CHANGE_LEVELS.index(name)
            bounds = (-np.inf, *cuts.change, np.inf)
            lo[i], hi[i] = bounds[j] - 0.05, bounds[j + 1] + 0.05  # rounded to one decimal before classing
    return lo, hi


def attack(released: dict[str, pd.DataFrame], truth: pd.DataFrame, schools: pd.DataFrame,
           settings: Settings = DEFAULT_SETTINGS, rounds: int = 8, decision: Release | None = None,
           exact: bool = False) -> AttackReport:
    """Run every attack on the released tables; `truth` (cells with KEYS, k, n) only scores the result.

    A cell counts as hidden when the tables do not show its count and the rules protect it: n < 10, a
    sensitive count of 1-9, a coded rate, or (given the `decision`) a complementary suppression.

    `released` maps a view name (DESIGN §7) to the concatenation of every public table of that view;
    status-change tables carry `school_year`. Rates of `suspension_rate` and the discipline outcome
    `suspension` are the same cells (the attacker reads the documentation too).
    """
    truth = truth.copy()
    truth["school_year"] = truth["school_year"].astype("float64")
    truth = truth.drop_duplicates(KEYS).set_index(KEYS)
    kn = _Knowledge(truth.index)
    level_of = schools.set_index("school_id")["level"]
    measure = Release(pd.DataFrame(), suspension_derived=True).measure_of
    direct_k: list[pd.MultiIndex] = []
    direct_n: list[pd.MultiIndex] = []

    rates = released.get("rates", pd.DataFrame())
    if len(rates):
        keys = _index(rates, "school_id", "school_year", rates["metric"].map(measure), "student_group")
        _ingest_cell(kn, keys, rates["numerator"], rates["denominator"], rates["value"])
        direct_k.append(keys[_num(rates["numerator"]).notna().to_numpy()])
        direct_n.append(keys[_num(rates["denominator"]).notna().to_numpy()])
    dispro = released.get("disproportionality", pd.DataFrame())
    if len(dispro):
        keys = _index(dispro, "school_id", "school_year", "outcome", "student_group")
        _ingest_cell(kn, keys, dispro["count"], dispro["enrolled"], dispro["risk"])
        direct_k.append(keys[_num(dispro["count"]).notna().to_numpy()])
        direct_n.append(keys[_num(dispro["enrolled"]).notna().to_numpy()])
    gaps = released.get("gaps", pd.DataFrame())
    if len(gaps):
        keys = _index(gaps, "school_id", "school_year", gaps["metric"].map(measure), "student_group")
        _ingest_cell(kn, keys, gaps.get("numerator"), gaps.get("denominator"), gaps["value"])
        if "numerator" in gaps:
            direct_k.append(keys[_num(gaps["numerator"]).notna().to_numpy()])
            direct_n.append(keys[_num(gaps["denominator"]).notna().to_numpy()])
    status = released.get("status-change", pd.DataFrame())
    if len(status):
        keys = _index(status, "school_id", "school_year", status["metric"].map(measure), "student_group")
        lo, hi = _rate_interval(status["status"])
        rounded = _num(status["status"]).notna()  # one decimal
        kn.tighten(keys, "v", (lo - np.where(rounded, 0.05, 0) - 1e-9).to_numpy(),
                   (hi + np.where(rounded, 0.05, 0) + 1e-9).to_numpy())
        lv = status["school_id"].map(level_of).fillna("ES")
        lo, hi = _level_intervals(status["status_level"], status["metric"], lv, settings, "status")
        kn.tighten(keys, "v", lo - 1e-9, hi + 1e-9)
    # Released exactly = the count or (rate and n) shown somewhere.
    kn.integers()
    released_k = kn.exact("k").dropna().index
    released_n = kn.exact("n").dropna().index

    relations = _attacker_relations(truth, schools)
    for _ in range(rounds):
        np.seterr(invalid="ignore")
        changed = kn.integers()
        changed += _algebra(kn, gaps, status, dispro, measure, level_of, settings)
        changed += _sums(kn, relations)
        if not changed:
            break
    kn.integers()
    protected = _protected(truth, settings, decision)
    exact_report = None
    if exact:
        exact_report = _exact(kn, truth, relations, released_k, released_n, protected, status, measure, level_of,
                              settings)
    report = _score(kn, truth, released_k, released_n, sum(len(t) for t in released.values()),
                    settings.privacy_min_n, protected)
    report.exact = exact_report.as_dict() if exact_report is not None else None
    return report


def _exact(kn: _Knowledge, truth: pd.DataFrame, relations, released_k, released_n, protected: pd.Series, status,
           measure, level_of, settings: Settings) -> ExactReport:
    """The integer program of everything known (:mod:`analytics.access.exact_audit`): hidden counts (and small
    n) that are its only solution are pinned in ``kn``."""
    cells, rel, row, coef, same_n = relations
    size = len(kn.index)
    a = kn.a
    system = System(np.concatenate([a["k_lo"], a["n_lo"]]), np.concatenate([a["k_hi"], a["n_hi"]]))
    system.add_sums(rel, row, coef)                                                   # sums of counts
    system.add_sums(np.concatenate([rel, same_n[0]]), size + np.concatenate([row, same_n[1]]),
                    np.concatenate([coef, same_n[2]]))                                # sums of students
    # k <= n for counts of students (incidents are events: a school can have more than it has students).
    cell = np.flatnonzero(kn.index.get_level_values("measure") != "incidents")
    system.add_at_most(cell, size + cell)
    every = np.arange(size)
    system.add_rates(every, size + every, a["v_lo"], a["v_hi"])                       # v_lo <= 100 k / n <= v_hi
    _status_links(system, kn, status, measure, level_of, settings)
    t = kn.t.join(truth[["k", "n"]], how="inner")
    mentioned = kn.index.isin(t.index)
    hidden_k = (mentioned & ~kn.index.isin(released_k) & truth["k"].reindex(kn.index).notna().to_numpy()
                & protected.reindex(kn.index).fillna(False).to_numpy())
    hidden_n = mentioned & ~kn.index.isin(released_n) & (truth["n"].reindex(kn.index) < settings.privacy_min_n).to_numpy()
    targets = np.r_[np.flatnonzero(hidden_k), size + np.flatnonzero(hidden_n)]
    report = exact_unique(system, targets)
    for var, value in report.unique.items():
        col, i = ("k", var) if var < size else ("n", var - size)
        a[f"{col}_lo"][i] = a[f"{col}_hi"][i] = value
    return report


def _status_links(system: System, kn: _Knowledge, status, measure, level_of, settings: Settings) -> None:
    """A released status change between two years whose n are both known: 100 k / n - 100 k' / n' lies in
    the change's interval (its rounding and its level's cut points), a linear row over the two counts."""
    if not len(status):
        return
    keys = _index(status, "school_id", "school_year", status["metric"].map(measure), "student_group")
    prev = _index(status, "school_id", status["school_year"] - 1, status["metric"].map(measure), "student_group")
    change = _num(status["change"]).to_numpy()
    lv = status["school_id"].map(level_of).fillna("ES")
    c_lo, c_hi = _level_intervals(status["change_level"], status["metric"], lv, settings, "change")
    c_lo = np.fmax(np.nan_to_num(c_lo, nan=-np.inf), change - 0.05 - 1e-9)
    c_hi = np.fmin(np.nan_to_num(c_hi, nan=np.inf), change + 0.05 + 1e-9)
    i, j = kn.index.get_indexer(keys), kn.index.get_indexer(prev)
    n = kn.exact("n").to_numpy()
    ok = (i >= 0) & (j >= 0) & (np.isfinite(c_lo) | np.isfinite(c_hi))
    ok[ok] &= (n[i[ok]] > 0) & (n[j[ok]] > 0)
    i, j, c_lo, c_hi = i[ok], j[ok], c_lo[ok], c_hi[ok]
    rows = np.arange(len(i))
    system.add(np.r_[rows, rows], np.r_[i, j], np.r_[100 / n[i], -100 / n[j]], c_lo, c_hi)


def _protected(truth: pd.DataFrame, settings: Settings, decision: Release | None) -> pd.Series:
    """Which true cells the rules protect, recomputed from the rules themselves (not from the decision)."""
    from analytics.access.release_cells import SENSITIVE

    k, n = truth["k"], truth["n"]
    rate = 100 * k / n.where(n > 0)
    sensitive = truth.index.get_level_values("measure").isin(list(SENSITIVE))
    out = ((n < settings.privacy_min_n) | (sensitive & (k >= 1) & (k <= 9)) | (rate <= settings.privacy_low_pct)
           | (rate >= settings.privacy_high_pct))
    if decision is not None:
        state = decision.cells["state"].reindex(truth.index)
        out |= state.isin(["hidden", "low", "high"]).to_numpy()
    return out


def _attacker_relations(truth: pd.DataFrame, schools: pd.DataFrame):
    """Sums the attacker uses (schools -> cluster -> district, race groups and female + male -> ALL), where
    they hold: the attacker is granted knowledge of which sums are exact."""
    cells = truth.reset_index()
    cells["cluster"] = cells["unit"].map(schools.set_index("school_id")["cluster"])
    cells.loc[cells["unit"].str.startswith("cluster:"), "cluster"] = cells["unit"].str[len("cluster:"):]
    cells["level"] = np.where(cells["unit"] == "district", 2, np.where(cells["unit"].str.startswith("cluster:"), 1, 0))
    rel, row, coef = _relations(cells)
    return cells, rel, row, coef, _same_n(cells, int(rel.max()) + 1 if len(rel) else 0)


def _same_n(cells: pd.DataFrame, first_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equalities n = n' between cells of one unit, year and group whose measures count the same students
    (discipline outcomes, and measures whose n agree almost everywhere: `shared_denominators`), as sum
    relations (one +1 and one -1 member each). The attacker is granted them where they hold."""
    if cells.empty:
        return (np.empty(0, dtype=np.int64),) * 2 + (np.empty(0),)
    named = shared_denominators(cells.assign(school_id=cells["unit"], n_source=""))
    key = named.groupby(["unit", "school_year", "student_group", "n_source", "n"], sort=False).ngroup().to_numpy()
    first = pd.Series(np.arange(len(key))).groupby(key).transform("first").to_numpy()
    others = np.flatnonzero(first != np.arange(len(key)))
    ids = np.arange(len(others)) + first_id
    return (np.concatenate([ids, ids]), np.concatenate([others, first[others]]),
            np.concatenate([np.ones(len(others)), -np.ones(len(others))]))


def _sums(kn: _Knowledge, relations) -> int:
    cells, rel, row, coef, same_n = relations
    index = pd.MultiIndex.from_arrays([cells[c].to_numpy() for c in KEYS])
    t = kn.t.reindex(index)
    changed = 0
    for col in ("k", "n"):
        lo, hi = t[f"{col}_lo"].to_numpy(), t[f"{col}_hi"].to_numpy()
        empty = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), 0.0)
        r, w, c = (rel, row, coef) if col == "k" else (np.concatenate([rel, same_n[0]]),
                                                         np.concatenate([row, same_n[1]]),
                                                         np.concatenate([coef, same_n[2]]))
        new_lo, new_hi = propagate(lo, hi, r, w, c, (np.empty(0, dtype=np.int64),) * 2, empty, empty)
        changed += kn.tighten(index, col, new_lo, new_hi)
    return changed


def _algebra(kn: _Knowledge, gaps, status, dispro, measure, level_of, settings) -> int:
    changed = 0
    v = kn.exact("v")
    k, n = kn.exact("k"), kn.exact("n")
    if len(status):
        # Status and change are published rounded to one decimal: each is an interval of +-0.05.
        keys = _index(status, "school_id", "school_year", status["metric"].map(measure), "student_group")
        prev = _index(status, "school_id", status["school_year"] - 1, status["metric"].map(measure), "student_group")
        change = _num(status["change"]).to_numpy()
        lv = status["school_id"].map(level_of).fillna("ES")
        c_lo, c_hi = _level_intervals(status["change_level"], status["metric"], lv, settings, "change")
        c_lo = np.fmax(c_lo, change - 0.05 - 1e-9)
        c_hi = np.fmin(c_hi, change + 0.05 + 1e-9)
        t = kn.t
        cur = t.reindex(keys)[["v_lo", "v_hi"]].to_numpy()
        before = t.reindex(prev)[["v_lo", "v_hi"]].to_numpy()
        changed += kn.tighten(prev, "v", cur[:, 0] - c_hi, cur[:, 1] - c_lo)
        changed += kn.tighten(keys, "v", before[:, 0] + c_lo, before[:, 1] + c_hi)
    if len(gaps):
        changed += _gap_algebra(kn, gaps, measure, v, k, n)
    if len(dispro):
        changed += _dispro_algebra(kn, dispro, v, k, n)
    return changed


def _others_count(kn, group_keys, all_keys, ref, k, n) -> int:
    """ref = 100 (K - k) / (N - n): the group's count from ALL's, or ALL's from the group's."""
    changed = 0
    kk, nn = k.reindex(group_keys).to_numpy(), n.reindex(group_keys).to_numpy()
    ka, na = k.reindex(all_keys).to_numpy(), n.reindex(all_keys).to_numpy()
    group_k = ka - ref * (na - nn) / 100
    changed += kn.tighten(group_keys, "k", np.ceil(group_k - 1e-6), np.floor(group_k + 1e-6))
    all_k = kk + ref * (na - nn) / 100
    changed += kn.tighten(all_keys, "k", np.ceil(all_k - 1e-6), np.floor(all_k + 1e-6))
    return changed


def _gap_algebra(kn, gaps, measure, v, k, n) -> int:
    changed = 0
    m = gaps["metric"].map(measure)
    keys = _index(gaps, "school_id", "school_year", m, "student_group")
    ref = _num(gaps["reference_value"]).to_numpy()
    gap = _num(gaps["gap"]).to_numpy()
    # Gap change across years: this year's gap minus its change is last year's gap, and back.
    if "gap_change" in gaps:
        prev_year = _num(gaps["previous_year"]) if "previous_year" in gaps else gaps["school_year"] - 1
        frame = gaps.assign(_gap=gap, _ref=ref, _m=m, _prev=prev_year.fillna(gaps["school_year"] - 1),
                            _chg=_num(gaps["gap_change"]))
        on = ["school_id", "_m", "student_group", "reference"]
        joined = frame.merge(frame[on + ["school_year", "_gap"]].rename(columns={"school_year": "_prev",
                                                                                   "_gap": "_pgap"}),
                             on=on + ["_prev"], how="left")
        back = frame[on + ["_prev", "_gap", "_chg"]].rename(columns={"_prev": "school_year", "_gap": "_ngap",
                                                                      "_chg": "_nchg"})
        joined = joined.merge(back, on=on + ["school_year"], how="left")
        filled = np.where(np.isfinite(joined["_gap"]), joined["_gap"], joined["_pgap"] + joined["_chg"])
        filled = np.where(np.isfinite(filled), filled, joined["_ngap"] - joined["_nchg"])
        gap = filled[: len(gaps)] if len(filled) == len(gaps) else gap
    value = v.reindex(keys).to_numpy()
    reference = gaps["reference"].astype(str).to_numpy()
    district = _index(gaps, "district", "school_year", m, "ALL")
    ref = np.where(np.isfinite(ref), ref, np.where(reference == "district_all", v.reindex(district).to_numpy(), np.nan))
    ref = np.where(np.isfinite(ref), ref, value - gap)
    changed += kn.tighten(keys, "v", gap + ref - 1e-7, gap + ref + 1e-7)
    others = reference == "others"
    if others.any():
        sub = gaps[others]
        g_keys = keys[others]
        a_keys = _index(sub, "school_id", "school_year", sub["metric"].map(measure), "ALL")
        changed += _others_count(kn, g_keys, a_keys, ref[others], k, n)
    return changed


def _dispro_algebra(kn, dispro, v, k, n) -> int:
    changed = 0
    keys = _index(dispro, "school_id", "school_year", "outcome", "student_group")
    all_keys = _index(dispro, "school_id", "school_year", "outcome", "ALL")
    comparison = _num(dispro["comparison_risk"]).to_numpy()
    risk = v.reindex(keys).to_numpy()
    rr, rd = _num(dispro["risk_ratio"]).to_numpy(), _num(dispro["rate_difference"]).to_numpy()
    comparison = np.where(np.isfinite(comparison), comparison, np.where(rr > 0, risk / rr, np.nan))
    comparison = np.where(np.isfinite(comparison), comparison, risk - rd)
    risk_from = np.where(np.isfinite(rr), rr * comparison, comparison + rd)
    changed += kn.tighten(keys, "v", risk_from - 1e-7, risk_from + 1e-7)
    within = (dispro["ratio_type"].astype(str) != "alternate").to_numpy()
    if within.any():
        changed += _others_count(kn, keys[within], all_keys[within], comparison[within], k, n)
    comp = _num(dispro["composition"]).to_numpy()
    kk, ka = k.reindex(keys).to_numpy(), k.reindex(all_keys).to_numpy()
    changed += kn.tighten(keys, "k", np.ceil(comp * ka / 100 - 1e-6), np.floor(comp * ka / 100 + 1e-6))
    all_k = np.where(comp > 0, 100 * kk / comp, np.nan)
    changed += kn.tighten(all_keys, "k", np.ceil(all_k - 1e-6), np.floor(all_k + 1e-6))
    return changed


def _score(kn: _Knowledge, truth: pd.DataFrame, released_k, released_n, released_rows: int,
           min_n: int, protected: pd.Series) -> AttackReport:
    t = kn.t.join(truth[["k", "n"]], how="inner")
    mentioned = t.index
    hidden_k = ~mentioned.isin(released_k) & t["k"].notna().to_numpy() & protected.reindex(mentioned).fillna(False).to_numpy()
    # n is protected where it is small (a hidden n of 300 only shields a small neighbour's n).
    hidden_n = ~mentioned.isin(released_n) & (t["n"] < min_n).to_numpy()
    pinned_k = (t["k_lo"] == t["k_hi"]) & (t["k_lo"] == t["k"])
    pinned_n = (t["n_lo"] == t["n_hi"]) & (t["n_lo"] == t["n"])
    recovered = t[hidden_k & pinned_k.to_numpy()]
    examples = [{"unit": i[0], "school_year": int(i[1]), "measure": i[2], "student_group": i[3],
                 "k": float(r["k"]), "n": float(r["n"])} for i, r in recovered.head(10).iterrows()]
    return AttackReport(int(hidden_k.sum()), int(len(recovered)), int(hidden_n.sum()),
                        int((hidden_n & pinned_n.to_numpy()).sum()), released_rows, examples)


# --- what a scope releases -----------------------------------------------------------------------------


def truth_cells(engine) -> pd.DataFrame:
    """Every cell the district could release, with its true count (scoring only)."""
    from analytics.access.release_cells import discipline_cells, metric_cells
    from analytics.data import loads

    schools = loads.load_schools(engine)
    metrics = loads.load_metrics(engine).dropna(subset=["numerator", "denominator"])
    frames = [pooled_cells(discipline_cells(loads.load_discipline(engine)), schools)]
    if len(metrics):
        frames.append(pooled_cells(metric_cells(metrics), schools))
    return pd.concat(frames, ignore_index=True)[[*KEYS, "k", "n"]]


def collect(engine, scopes: list[dict], release: Release | None = None) -> dict[str, pd.DataFrame]:
    """Every public export view of every scope (`{}` district, `{"cluster": C}`, `{"school": S}`), every year."""
    from analytics.access.release_store import release_for
    from analytics.data import loads
    from analytics.outputs.views import build_view

    release = release or release_for(engine)
    years = loads.available_years(engine)
    out: dict[str, list[pd.DataFrame]] = {}
    clusters = loads.load_schools(engine)["cluster"].dropna().unique().tolist()
    for scope in scopes:
        if not scope:  # a district link reaches every cluster's schools
            for cluster in clusters:
                out.setdefault("rates", []).append(build_view(engine, "rates", cluster=cluster, public=True,
                                                              release=release))
        for view in ("rates", "gaps", "disproportionality"):
            out.setdefault(view, []).append(build_view(engine, view, public=True, release=release, **scope))
        for year in years[1:]:
            table = build_view(engine, "status-change", year=year, public=True, release=release, **scope)
            out.setdefault("status-change", []).append(table.assign(school_year=year))
    return {k: pd.concat(v, ignore_index=True) for k, v in out.items()}


def crdc_like_files(folder, seed: int = 3, schools_n: int = 16) -> list[str]:
    """CSV files of CRDC-shaped discipline (to import): real small cells, race rows only at every fourth
    school, `*` cells, and ALL rows whose OSS count is suppressed at every other school."""
    from pathlib import Path

    folder = Path(folder)
    rng = np.random.default_rng(seed)
    schools = ["school_id,school_name,level,cluster"]
    lines = ["school_id,school_year,student_group,enrolled,students_suspended,students_oss,students_expelled"]
    for i in range(schools_n):
        sid = f"S{i:02d}"
        schools.append(f"{sid},School {i},{['ES', 'MS', 'HS'][i % 3]},{['East', 'West', 'North'][i % 3]}")
        for year in (2023, 2024):
            sizes = {"BL": rng.integers(3, 200), "HI": rng.integers(3, 150), "WH": rng.integers(20, 400),
                     "AS": rng.integers(0, 40), "AM": rng.integers(0, 9)}
            total_n = total_s = total_o = 0
            rows = []
            for group, n in sizes.items():
                if n == 0:
                    continue
                s = int(rng.binomial(n, 0.12))
                o = int(rng.binomial(s, 0.6))
                total_n, total_s, total_o = total_n + n, total_s + s, total_o + o
                star = rng.random() < 0.15
                rows.append(f"{sid},{year},{group},{n},{'*' if star else s},{o},{rng.integers(0, 2)}")
            lines += rows
            if i % 4:  # schools 0, 4, 8, 12 have race rows only
                lines.append(f"{sid},{year},ALL,{total_n},{total_s},{'*' if i % 2 else total_o},")
    (folder / "schools.csv").write_text("\n".join(schools) + "\n")
    (folder / "discipline.csv").write_text("\n".join(lines) + "\n")
    return [str(folder / "schools.csv"), str(folder / "discipline.csv")]
