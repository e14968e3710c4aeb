"""Restorative-practices impact: staggered difference-in-differences with honest uncertainty (DESIGN §3).

Schools start restorative practices (RP) in different years. The estimator and its inference live in
:mod:`analytics.stats.did` (Callaway & Sant'Anna, 2021, against never-treated schools; randomization
inference by reassigning start years, the 95% interval by test inversion; Fisher, 1935; Rosenbaum,
2002; MacKinnon & Webb, 2020 for few treated clusters). This module builds the school x year outcome
panel from discipline counts, runs it for each outcome, and words the result: the verdict follows the
randomization p-value, the wording follows the estimate's sign, and small samples are said to be small.

Comparisons are within school level when the schools carry a ``level``: an RP middle school is compared
with never-treated middle schools only, and start years are reassigned among schools of the same level
(stratified randomization inference; see :mod:`analytics.stats.did`). Suspension rates and their
trends differ several-fold between levels, and RP is rarely adopted evenly across them: in a null
simulation where middle and high schools adopt three times as often, pooling the levels made the
interval exclude 0 in 14.5% of 200 seeds, comparing within levels in 7.0%
(``benchmarks/rp_coverage.py``).

Scales: the district estimate compares its RP schools with its never-treated schools. A cluster or
school estimate compares the RP schools of that cluster (or the one school) with every never-treated
school of the district: a feeder cluster often holds one high school and one or two middle schools, so
same-level comparisons inside it rarely exist; the schools whose effect is estimated stay the scope's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.data.derived import discipline_with_all, suspension_counts
from analytics.stats.did import EVENT_COLUMNS, DiDResult, describe, staggered_did

SUMMARY_COLUMNS = ["outcome", "estimate", "ci_low", "ci_high", "p_value", "n_rp_schools", "n_comparison_schools",
                   "method"]
OUTCOME_LABELS = {
    "suspension_rate": "suspension rate (points)",
    "oss_days_per_100": "OSS days per 100 students",
    "risk_ratio_black_white": "Black/White suspension risk ratio",
    "risk_ratio_swd": "SWD/non-SWD suspension risk ratio",
}
__all__ = ["EVENT_COLUMNS", "OUTCOME_LABELS", "SUMMARY_COLUMNS", "DistrictPanel", "RPImpact", "SchoolRows",
           "outcome_panel",
           "rp_impact", "clusters_by_design", "comparison_scope", "rp_impact_for_cluster", "rp_impact_for_school"]


@dataclass(frozen=True)
class RPImpact:
    summary: pd.DataFrame
    event_study: pd.DataFrame
    statement: str


def outcome_panel(schools: pd.DataFrame, discipline: pd.DataFrame) -> pd.DataFrame:
    """School x year outcomes: suspension rate, OSS days per 100, Black/White and SWD risk ratios."""
    full, _ = discipline_with_all(discipline)
    full = full.assign(_susp=suspension_counts(full))
    values = [c for c in ("enrolled", "_susp", "oss_days") if c in full]
    wide = full.pivot_table(index=["school_id", "school_year"], columns="student_group", values=values,
                            aggfunc="sum", dropna=False)

    def col(value: str, group: str) -> pd.Series:
        return wide[(value, group)] if (value, group) in wide.columns else pd.Series(np.nan, index=wide.index)

    def risk(count: pd.Series, enrolled: pd.Series) -> pd.Series:
        return count / enrolled.where(enrolled > 0)

    all_n, all_s = col("enrolled", "ALL"), col("_susp", "ALL")
    panel = pd.DataFrame({
        "suspension_rate": 100 * risk(all_s, all_n),
        "oss_days_per_100": 100 * col("oss_days", "ALL") / all_n.where(all_n > 0),
        "risk_ratio_black_white": risk(col("_susp", "BL"), col("enrolled", "BL"))
        / risk(col("_susp", "WH"), col("enrolled", "WH")).where(lambda r: r > 0),
        "risk_ratio_swd": risk(col("_susp", "SWD"), col("enrolled", "SWD"))
        / risk(all_s - col("_susp", "SWD"), all_n - col("enrolled", "SWD")).where(lambda r: r > 0),
    }).reset_index()
    starts = schools.set_index("school_id")["rp_start_year"]
    panel["rp_start_year"] = panel["school_id"].map(starts)
    if "level" in schools:
        panel["level"] = panel["school_id"].map(schools.set_index("school_id")["level"])
    return panel


class SchoolRows:
    """A district-wide frame whose rows are picked school by school through integer codes made once: a
    scope's rows by ``isin`` on string ids converted each of the scope's thousands of ids in Python."""

    def __init__(self, frame: pd.DataFrame):
        codes, units = pd.factorize(frame["school_id"])
        self.frame, self._codes, self._units = frame, codes, pd.Index(units)

    def mask(self, school_ids) -> np.ndarray:
        """Whether each row's school is among `school_ids` (``frame["school_id"].isin(school_ids)``)."""
        ids = school_ids if isinstance(school_ids, pd.Series | pd.Index) else pd.Index(list(school_ids))
        at = self._units.get_indexer(ids)
        wanted = np.zeros(len(self._units) + 1, dtype=bool)  # the last slot: rows without a school (code -1)
        wanted[at[at >= 0]] = True
        return wanted[self._codes]

    def rows(self, school_ids) -> pd.DataFrame:
        return self.frame[self.mask(school_ids)]


class DistrictPanel:
    """A district's :func:`outcome_panel` and the school-years its discipline rows hold, made once for every
    scope's estimate (each cluster's and school's compares its RP schools with the same never-treated schools).

    :meth:`scope` gives the panel a scope's own rows would give: the pivot holds every pair of the schools and
    years it sees, and each cell is a sum of its own rows, so a scope's panel is the district's rows of its
    schools in the years its schools' rows hold.
    """

    def __init__(self, panel: pd.DataFrame, seen: pd.DataFrame):
        self.panel = panel
        self._panel, self._seen = SchoolRows(panel), SchoolRows(seen)  # seen: one row per school-year with rows

    @classmethod
    def of(cls, schools: pd.DataFrame, discipline: pd.DataFrame) -> DistrictPanel:
        return cls(outcome_panel(schools, discipline),
                   discipline[["school_id", "school_year"]].drop_duplicates().reset_index(drop=True))

    def scope(self, school_ids) -> pd.DataFrame:
        """:func:`outcome_panel` of the schools `school_ids` and their discipline rows."""
        ids = school_ids if isinstance(school_ids, pd.Series | pd.Index) else pd.Index(list(school_ids))
        years = self._seen.rows(ids)["school_year"].unique()
        rows = self._panel.mask(ids) & self.panel["school_year"].isin(years).to_numpy()
        return self.panel[rows].reset_index(drop=True)


def _rp_words(text: str) -> str:
    return text.replace("treated schools", "RP schools").replace("treated school", "RP school")


def _summary_row(result: DiDResult) -> dict:
    method = result.method if result.estimable else f"not estimable: {_rp_words(result.note)}"
    if result.estimable and not (np.isfinite(result.ci_low) and np.isfinite(result.ci_high)):
        method += "; the interval is unbounded (too few schools to rule any effect out)"
    return {"outcome": result.outcome, "estimate": result.estimate, "ci_low": result.ci_low,
            "ci_high": result.ci_high, "p_value": result.p_value, "n_rp_schools": result.n_treated,
            "n_comparison_schools": result.n_comparison, "method": method}


def _statement(results: list[DiDResult], settings: Settings) -> str:
    if not results:
        return "Restorative-practices impact cannot be estimated: no discipline data."
    main = results[0]
    if not main.estimable:
        return f"Restorative-practices impact cannot be estimated: {_rp_words(main.note)}."
    text = describe(main, subject="restorative-practices schools", outcome_label="suspension rates",
                    comparison="comparison schools", treated="RP", alpha=settings.alpha)
    among = f"schools of the same {main.strata}" if main.strata else "schools"
    return _rp_words(text) + " Method: Callaway-Sant'Anna difference-in-differences against never-treated " \
        f"{among}, randomization inference (start years reassigned among {among})."


def _impact(panel: pd.DataFrame, settings: Settings, outcomes: list[str] | None) -> RPImpact:
    results = []
    for outcome in outcomes or list(OUTCOME_LABELS):
        if outcome not in panel or panel[outcome].notna().sum() == 0:
            continue
        # The event study is drawn for the first outcome (suspension rate) only.
        results.append(staggered_did(panel, outcome, start_col="rp_start_year", strata_col=_strata(panel),
                                     settings=settings, event_study=not results))
    summary = pd.DataFrame([_summary_row(r) for r in results], columns=SUMMARY_COLUMNS)
    events = [r.event_study for r in results if not r.event_study.empty]
    event_study = pd.concat(events, ignore_index=True) if events else pd.DataFrame(columns=EVENT_COLUMNS)
    return RPImpact(summary, event_study, _statement(results, settings))


def _strata(panel: pd.DataFrame) -> str | None:
    """Compare within school level when levels are known (see the module docstring)."""
    return "level" if "level" in panel and panel["level"].notna().any() else None


def _empty() -> RPImpact:
    summary = pd.DataFrame(columns=SUMMARY_COLUMNS)
    return RPImpact(summary, pd.DataFrame(columns=EVENT_COLUMNS), _statement([], DEFAULT_SETTINGS))


def rp_impact(schools: pd.DataFrame, discipline: pd.DataFrame, settings: Settings = DEFAULT_SETTINGS,
              outcomes: list[str] | None = None, district: DistrictPanel | None = None) -> RPImpact:
    """RP schools against never-treated schools among `schools` (a district or a cluster; `district`: the
    panel of these very schools and rows, made already)."""
    if discipline.empty or schools.empty:
        return _empty()
    return _impact(district.panel if district is not None else outcome_panel(schools, discipline), settings,
                   outcomes)


def comparison_scope(schools: pd.DataFrame, rp_school_ids) -> pd.DataFrame:
    """The RP schools among `rp_school_ids` and every never-treated school of `schools` (the district)."""
    treated = schools["school_id"].isin(set(rp_school_ids)) & schools["rp_start_year"].notna()
    return schools[treated | schools["rp_start_year"].isna()]


def rp_impact_for_schools(schools: pd.DataFrame, discipline: pd.DataFrame, rp_school_ids,
                          settings: Settings = DEFAULT_SETTINGS, outcomes: list[str] | None = None,
                          district: DistrictPanel | None = None) -> RPImpact:
    """The RP schools among `rp_school_ids` against every never-treated school of `schools` (the district).

    Other RP schools are left out, so start years are reassigned only among the scope's RP schools and the
    comparison schools (randomization inference within level, as DESIGN §3 requires). `district`, the
    district's panel made once (:class:`DistrictPanel`), gives the scope's panel by slicing instead of
    pivoting the scope's rows again: the same panel, so the same estimate.
    """
    keep = comparison_scope(schools, rp_school_ids)
    if not keep["rp_start_year"].notna().any():
        return RPImpact(pd.DataFrame(columns=SUMMARY_COLUMNS), pd.DataFrame(columns=EVENT_COLUMNS),
                        "No school here has a restorative-practices start year, so there is no impact estimate.")
    if discipline.empty:
        return _empty()
    panel = (district.scope(keep["school_id"]) if district is not None
             else outcome_panel(keep, discipline[discipline["school_id"].isin(keep["school_id"])]))
    return _impact(panel, settings, outcomes)


def rp_impact_for_cluster(schools: pd.DataFrame, discipline: pd.DataFrame, cluster: str,
                          settings: Settings = DEFAULT_SETTINGS, outcomes: list[str] | None = None,
                          district: DistrictPanel | None = None) -> RPImpact:
    """A cluster's RP schools against every never-treated school of `schools` (pass the whole district)."""
    members = schools.loc[schools["cluster"] == cluster, "school_id"]
    return rp_impact_for_schools(schools, discipline, members, settings, outcomes, district)


def clusters_by_design(schools: pd.DataFrame) -> list[str]:
    """Every cluster, those with as many RP schools of each level side by side (then by name).

    Each cluster's estimate reassigns start years among its RP schools and the district's never-treated
    schools of their levels, so clusters of the same make-up reassign among strata of the same sizes: in this
    order, one after another they read the same draws (:func:`analytics.stats.did.shared_draws`).
    """
    named = schools.dropna(subset=["cluster"])
    rp = named[named["rp_start_year"].notna()]
    levels = rp["level"].astype("string").fillna("") if "level" in rp else pd.Series("", index=rp.index)
    counts = rp.groupby([rp["cluster"], levels]).size()
    make_up = {cluster: tuple(sorted(part.droplevel(0).items())) for cluster, part in counts.groupby(level=0)}
    return sorted((str(c) for c in named["cluster"].unique()), key=lambda c: (make_up.get(c, ()), c))


def rp_impact_for_school(schools: pd.DataFrame, discipline: pd.DataFrame, school_id: str,
                         settings: Settings = DEFAULT_SETTINGS, outcomes: list[str] | None = None,
                         district: DistrictPanel | None = None) -> RPImpact:
    """One RP school against every never-treated school of `schools` (pass the whole district).

    Other RP schools are left out, so the start year is reassigned between this school and the
    comparison schools only (one treated unit: randomization inference, as DESIGN §3 requires).
    """
    if discipline.empty or schools.empty:
        return _empty()
    keep = schools[(schools["school_id"] == school_id) | schools["rp_start_year"].isna()]
    if school_id not in set(keep["school_id"]) or pd.isna(keep.set_index("school_id").at[school_id, "rp_start_year"]):
        summary = pd.DataFrame(columns=SUMMARY_COLUMNS)
        return RPImpact(summary, pd.DataFrame(columns=EVENT_COLUMNS),
                        "This school has no restorative-practices start year, so there is no school-level impact "
                        "estimate.")
    return rp_impact_for_schools(schools, discipline, [school_id], settings, outcomes, district)
