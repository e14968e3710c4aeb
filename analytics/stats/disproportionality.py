"""Discipline disproportionality by the IDEA method of 34 CFR 300.647, applied per school (DESIGN §3).

For a group g and an outcome: risk = students in g with the outcome / students enrolled in g;
comparison risk = the same for all other students of the school (ALL minus g). The risk ratio is
computed only when g has enrolled >= n-size (30) and count >= cell size (10); otherwise
``ratio_type = "none"``. When the comparison group fails either minimum, or its risk is zero, the
alternate risk ratio divides by the district risk of all students outside g that year:
(district ALL count - district g count) / (district ALL enrolled - district g enrolled) over every
school with known counts (a school with no g row adds its whole ALL; a school whose ALL or g count
is suppressed is left out of both): ``ratio_type = "alternate"``.
Also the rate difference (group risk - comparison risk, points) and composition (g's share of the
students with the outcome, %). A group is flagged when its ratio is >= the threshold (3.0) in each of
3 consecutive school years (Maryland's rule; a missing year breaks the run).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.data.catalog import STUDENT_GROUPS, group_label
from analytics.data.derived import discipline_with_all, suspension_counts

OUTCOMES = {
    "suspension": None,  # students_suspended, or students_oss when it is empty
    "iss": "students_iss",
    "oss": "students_oss",
    "expulsion": "students_expelled",
    "law_referral": "law_referrals",
}
COLUMNS = ["school_id", "school_year", "student_group", "outcome", "enrolled", "count", "risk", "comparison_risk",
           "risk_ratio", "ratio_type", "rate_difference", "composition", "flagged"]


def _outcome_counts(discipline: pd.DataFrame, outcome: str) -> pd.Series:
    column = OUTCOMES[outcome]
    if column is None:
        return suspension_counts(discipline)
    return discipline[column] if column in discipline else pd.Series(np.nan, index=discipline.index)


def _long(discipline: pd.DataFrame, outcomes: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per school x year x group x outcome: the outcomes with a known count anywhere in the
    rows, or exactly `outcomes` (those of the whole district, when the rows are a part of it)."""
    frames = []
    for outcome in OUTCOMES:
        count = _outcome_counts(discipline, outcome)
        if (count.notna().any() if outcomes is None else outcome in outcomes):
            frames.append(discipline[["school_id", "school_year", "student_group", "enrolled"]].assign(
                outcome=outcome, count=count.astype("float64")))
    if not frames:
        return pd.DataFrame(columns=["school_id", "school_year", "student_group", "enrolled", "outcome", "count"])
    return pd.concat(frames, ignore_index=True)


def flag_consecutive(table: pd.DataFrame, threshold: float, years: int) -> pd.Series:
    """True where the ratio is >= threshold in this year and the `years - 1` school years before it."""
    keys = ["school_id", "student_group", "outcome"]
    ordered = table.sort_values(keys + ["school_year"])
    over = (ordered["risk_ratio"] >= threshold).astype(int)
    grouped = ordered.groupby(keys, sort=False)
    previous_over = grouped["risk_ratio"].shift(1).ge(threshold)
    gap = ordered["school_year"] - grouped["school_year"].shift(1) != 1
    starts = (over == 1) & (~previous_over | gap)  # a low year or a missing year breaks the run
    run_length = over.groupby(starts.cumsum()).cumsum() * over
    return (run_length >= years).reindex(table.index)


def district_comparison(all_rows: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
    """District risk (%) of all students outside g, per year, group and outcome (DESIGN §3).

    (district ALL count - district g count) / (district ALL enrolled - district g enrolled), summed
    over every school whose counts are known: a school without a row for g counts g as 0 of 0, and
    a school whose ALL or g count (or enrolment) is unknown is left out of numerator and denominator.

    all_rows: school_id, school_year, outcome, all_enrolled, all_count. groups: the non-ALL rows with
    school_id, school_year, student_group, outcome, enrolled, count, all_enrolled, all_count.
    """
    keys = ["school_year", "outcome"]
    known_all = all_rows.dropna(subset=["all_enrolled", "all_count"])
    totals = known_all.groupby(keys)[["all_count", "all_enrolled"]].sum()
    g = groups.dropna(subset=["all_enrolled", "all_count"])  # schools whose ALL is unknown are out already
    g_known = g[["count", "enrolled"]].notna().all(axis=1)
    # Subtract g's own students where g is known, and the whole school where g's count is unknown.
    g = g.assign(out_count=np.where(g_known, g["count"], g["all_count"]),
                 out_enrolled=np.where(g_known, g["enrolled"], g["all_enrolled"]))
    removed = g.groupby(keys + ["student_group"])[["out_count", "out_enrolled"]].sum().reset_index()
    out = removed.join(totals, on=keys)
    count, enrolled = out["all_count"] - out["out_count"], out["all_enrolled"] - out["out_enrolled"]
    out["district_comparison_risk"] = 100 * count / enrolled.where(enrolled > 0)
    return out[keys + ["student_group", "district_comparison_risk"]]


@dataclass(frozen=True)
class DistrictRisks:
    """What the alternate ratio needs from the whole district: the outcomes it has counts for and
    :func:`district_comparison`'s risks per year, group and outcome (a few hundred rows)."""

    outcomes: tuple[str, ...]
    risks: pd.DataFrame


def _with_all_counts(long: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ALL rows, group rows joined to their school's ALL counts) of a long table."""
    keys = ["school_id", "school_year", "outcome"]
    all_rows = long[long["student_group"] == "ALL"][keys + ["enrolled", "count"]].rename(
        columns={"enrolled": "all_enrolled", "count": "all_count"})
    return all_rows, long[long["student_group"] != "ALL"].merge(all_rows, on=keys, how="left")


def district_risks(discipline: pd.DataFrame) -> DistrictRisks:
    """The district's comparison risks, computed once from every school's rows, so that
    :func:`disproportionality` can then be computed for some schools only (``district=``)."""
    full, _ = discipline_with_all(discipline)
    long = _long(full)
    all_rows, table = _with_all_counts(long)
    return DistrictRisks(tuple(long["outcome"].unique()), district_comparison(all_rows, table))


def disproportionality(discipline: pd.DataFrame, settings: Settings = DEFAULT_SETTINGS,
                       district: DistrictRisks | None = None, groups: pd.DataFrame | None = None) -> pd.DataFrame:
    """Risk, comparison risk, risk ratio (or alternate), rate difference, composition and the 3-year flag.

    Parameters
    ----------
    discipline : rows of the discipline table (any schools and years; ALL derived from race rows
        where missing).
    settings : n_size, cell_size, risk_ratio_threshold and consecutive_years.
    district : :func:`district_risks` of the whole district when `discipline` holds only some of its
        schools (the alternate ratio divides by the district's risk); default: computed from `discipline`.
    groups : ``school_id, student_group`` pairs: only their rows are computed (with `district` given). A
        group's ratios and flags read its own rows and its school's ALL row (derived from every race row
        first where missing), so they are those of the whole table.

    Returns
    -------
    One row per school x year x group (not ALL) x outcome with ``COLUMNS``; percentages 0-100, NaN
    where not computed.
    """
    if discipline.empty:
        return pd.DataFrame(columns=COLUMNS)
    full, _ = discipline_with_all(discipline)
    if groups is not None:
        if district is None:
            raise ValueError("groups are computed against the district's risks: give `district`")
        full = _of_groups(full, groups)
    long = _long(full, None if district is None else district.outcomes)
    all_rows, table = _with_all_counts(long)
    table["comp_enrolled"] = table["all_enrolled"] - table["enrolled"]
    table["comp_count"] = table["all_count"] - table["count"]
    table["risk"] = 100 * table["count"] / table["enrolled"].where(table["enrolled"] > 0)
    table["comparison_risk"] = 100 * table["comp_count"] / table["comp_enrolled"].where(table["comp_enrolled"] > 0)

    comparison = district_comparison(all_rows, table) if district is None else district.risks
    table = table.merge(comparison, on=["school_year", "student_group", "outcome"], how="left")

    group_ok = (table["enrolled"] >= settings.n_size) & (table["count"] >= settings.cell_size)
    comp_ok = ((table["comp_enrolled"] >= settings.n_size) & (table["comp_count"] >= settings.cell_size)
               & (table["comparison_risk"] > 0))
    alternate_ok = table["district_comparison_risk"] > 0
    table["ratio_type"] = np.select([group_ok & comp_ok, group_ok & alternate_ok], ["within_school", "alternate"],
                                    default="none")
    table["risk_ratio"] = np.select(
        [table["ratio_type"] == "within_school", table["ratio_type"] == "alternate"],
        [table["risk"] / table["comparison_risk"].where(table["comparison_risk"] > 0),
         table["risk"] / table["district_comparison_risk"].where(table["district_comparison_risk"] > 0)],
        default=np.nan,
    )
    table["rate_difference"] = table["risk"] - table["comparison_risk"]
    table["composition"] = 100 * table["count"] / table["all_count"].where(table["all_count"] > 0)
    table["flagged"] = flag_consecutive(table, settings.risk_ratio_threshold, settings.consecutive_years)
    table["flagged"] = table["flagged"].fillna(False).astype(bool)
    return table[COLUMNS].sort_values(["school_id", "school_year", "outcome", "student_group"]).reset_index(drop=True)


def _of_groups(full: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
    """The rows of `groups` (school, group pairs) and their schools' ALL rows."""
    wanted = pd.MultiIndex.from_frame(groups[["school_id", "student_group"]])
    keep = pd.MultiIndex.from_frame(full[["school_id", "student_group"]]).isin(wanted)
    return full[keep | (full["student_group"] == "ALL").to_numpy()]


def disproportionality_parts(discipline: pd.DataFrame, settings: Settings = DEFAULT_SETTINGS,
                             district: DistrictRisks | None = None,
                             schools_per_part: int = 250) -> Iterator[pd.DataFrame]:
    """:func:`disproportionality` of `discipline` a few hundred schools at a time: the parts, concatenated,
    are the whole table (same rows, order and index). A district's whole table is about five rows per
    discipline row and its intermediate frames several times that (a third of a gigabyte at 2,000
    schools); a caller that keeps only some rows of each part never holds them all at once.

    Every school's rows are its own (ALL, comparison group, 3-year runs); only the alternate ratio's district
    risks span schools, and they are computed once from the whole of `discipline` (or given as `district`).
    """
    if discipline.empty:
        yield disproportionality(discipline, settings)
        return
    district = district if district is not None else district_risks(discipline)
    ids = sorted(discipline["school_id"].unique())
    parts = (discipline[discipline["school_id"].isin(ids[start:start + schools_per_part])]
             for start in range(0, len(ids), schools_per_part))
    yield from disproportionality_of_parts(parts, district, settings)


def disproportionality_of_parts(parts: Iterable[pd.DataFrame], district: DistrictRisks,
                                settings: Settings = DEFAULT_SETTINGS) -> Iterator[pd.DataFrame]:
    """:func:`disproportionality` of each part (the discipline rows of some schools, parts in school order,
    no school in two parts), indexed on from the part before, so the parts concatenated are the table of
    all of them. Parts may be read one at a time
    (``analytics.data.aggregates_discipline.disproportionality_parts``)."""
    offset = 0
    for rows in parts:
        part = disproportionality(rows, settings, district=district)
        part.index = pd.RangeIndex(offset, offset + len(part))
        offset += len(part)
        yield part


def group_rates(sums: pd.DataFrame, year: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each outcome's pooled rate (%) by student group in ``year``, and each group's share of suspended
    students and of enrolment (%), from a scope's sums per year and group
    (:func:`analytics.data.aggregates_discipline.discipline_scope_sums`).

    A rate is pooled over the schools with a known count of that outcome (``students / enrolled`` of those
    schools, ``n_<column>`` counting them); groups with fewer than 10 students enrolled get no rates (too
    small to read). Rows are in :data:`STUDENT_GROUPS` order, labelled by :func:`group_label`,
    with the largest ``enrolled`` behind any rate. Both frames are empty without rows for the year.
    """
    current = sums[sums["school_year"] == year].set_index("student_group").sort_index()
    outcome_cols = {"suspension": "students_suspended", **{k: v for k, v in OUTCOMES.items() if v}}
    # Whether each group's outcome is counted by any school (a pooled rate), outcomes counted for some group
    # only; column-wise on the few rows of the year (one frame, not one per outcome to pivot).
    counted = pd.DataFrame({o: current[f"n_{c}"] > 0 for o, c in outcome_cols.items()})
    outcomes = sorted(o for o in counted.columns if counted[o].any())
    comp = current.drop(index="ALL", errors="ignore").rename_axis("student_group")[["suspended", "enrolled"]]
    totals = current.loc[current.index == "ALL", ["suspended", "enrolled"]].sum()
    comp = pd.DataFrame({"share of suspended (%)": 100 * comp["suspended"] / totals["suspended"],
                         "share of enrolled (%)": 100 * comp["enrolled"] / totals["enrolled"]})
    if not outcomes:
        return pd.DataFrame(), comp
    counted = counted[outcomes]
    rows = counted.any(axis=1)
    wide = pd.DataFrame({o: 100 * current[outcome_cols[o]] / current[f"{outcome_cols[o]}_enrolled"]
                         for o in outcomes}).where(counted)[rows].rename_axis(index="group", columns="outcome")
    wide["enrolled"] = pd.DataFrame({o: current[f"{outcome_cols[o]}_enrolled"] for o in outcomes}).where(
        counted)[rows].max(axis=1)
    wide = wide.reindex([g for g in STUDENT_GROUPS if g in wide.index])
    wide.index = wide.index.map(group_label).rename("Student group")
    small = wide["enrolled"] < 10
    wide.loc[small, wide.columns.difference(["enrolled"])] = np.nan
    return wide, comp
