"""District, cluster and school summaries of one metric for one student group.

Pooled from counts when the files have counts (sum of numerators / sum of denominators). Report-card
files that publish only percentages ("value-only", DESIGN section 3) get the median of school values
with its range instead, labelled as such: no interval and no test is invented for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.stats.rates import (
    add_rate_columns,
    pool_counts,
    pooled_rates,
    rates_from_pooled_counts,
    two_proportion_test,
    two_proportion_tests,
    wilson_arrays,
)

POOLED, MEDIAN = "pooled", "median"
MEDIAN_LABEL = "median of school values"
NO_COUNTS = "these files have no counts, so no intervals or significance tests"


@dataclass(frozen=True)
class Kpi:
    """A summary value and its change since the previous year, with the test behind the change.

    `basis` is "pooled" (from counts, with a Wilson interval and a two-proportion test of the change)
    or "median" (median of school values, with their range `low`-`high`; change untested).
    """

    value: float
    numerator: float
    denominator: float
    ci_low: float
    ci_high: float
    previous_value: float
    change: float
    p_value: float
    n_schools: int
    n_left_out: int
    year: int
    previous_year: int | None
    basis: str = POOLED
    low: float = np.nan
    high: float = np.nan

    @property
    def significant(self) -> bool:
        return bool(np.isfinite(self.p_value) and self.p_value < 0.05)


def _group_year(rows: pd.DataFrame, year: int, group: str) -> pd.DataFrame:
    return rows[(rows["school_year"] == year) & (rows["student_group"] == group)]


def pooled_kpi(rows: pd.DataFrame, year: int, group: str, years: list[int]) -> Kpi:
    """Pooled value for `year` and change from the previous available year (two-proportion test)."""
    return pooled_kpi_from_counts(pool_counts(rows[rows["student_group"] == group], ["school_year"]), year, years)


def pooled_kpi_from_counts(counts: pd.DataFrame, year: int, years: list[int]) -> Kpi:
    """:func:`pooled_kpi` from the sums of one group per ``school_year`` (:func:`pool_counts`' columns,
    e.g. summed by the database in ``analytics.data.aggregates.metric_counts``)."""
    earlier = [y for y in years if y < year]
    previous_year = max(earlier) if earlier else None
    at_year = counts["school_year"].to_numpy()
    columns = {col: counts[col].to_numpy(dtype="float64") for col in ("numerator", "denominator", "n_schools", "n_rows")}

    def pooled(y: int) -> dict[str, float] | None:
        found = np.flatnonzero(at_year == y)
        return None if not len(found) else _pooled_row({col: v[found[0]] for col, v in columns.items()})

    cur = pooled(year)
    if cur is None:
        return Kpi(*([np.nan] * 8), 0, 0, year, previous_year)
    prev_value, change, p_value = np.nan, np.nan, np.nan
    p = pooled(previous_year) if previous_year is not None else None
    if p is not None:
        prev_value = p["value"]
        change = cur["value"] - prev_value
        p_value = two_proportion_test(cur["numerator"], cur["denominator"], p["numerator"], p["denominator"])
    return Kpi(cur["value"], cur["numerator"], cur["denominator"], cur["ci_low"], cur["ci_high"], prev_value,
               change, p_value, int(cur["n_schools"]), int(cur["n_rows_left_out"]), year, previous_year)


def _pooled_row(sums: dict[str, float]) -> dict[str, float]:
    """:func:`~analytics.stats.rates.rates_from_pooled_counts` of one row of sums, with the same arithmetic
    (an empty pool has no counts; the Wilson interval of :func:`~analytics.stats.rates.wilson_arrays`), on
    scalars: a cluster's KPI is two such rows, and two one-row frames cost more than the rest of it."""
    num, den = (sums["numerator"], sums["denominator"]) if sums["denominator"] > 0 else (np.nan, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 100.0 * num / den if den > 0 and not np.isnan(num) else np.nan
    low, high = wilson_arrays(np.array([num]), np.array([den]))
    return {"numerator": num, "denominator": den, "value": value, "ci_low": low[0], "ci_high": high[0],
            "n_schools": sums["n_schools"], "n_rows_left_out": sums["n_rows"] - sums["n_schools"]}


def basis_from_counts(counts: pd.DataFrame) -> np.ndarray:
    """:func:`summary_basis` per row of summed votes (``n_schools`` with counts, ``n_value_only``)."""
    return np.where(counts["n_value_only"] > counts["n_schools"], MEDIAN, POOLED)


def summary_kpi_from_counts(counts: pd.DataFrame, rows: pd.DataFrame, year: int, group: str, years: list[int],
                            basis: str | None = None) -> Kpi:
    """:func:`summary_kpi` with the group's sums and votes per ``school_year`` summed by the database.

    ``counts``: ``analytics.data.aggregates.metric_counts(..., keys=["school_year"])`` of the metric and
    group in the scope; ``rows``: the scope's rows of the group, read only for a median.
    """
    current = counts[counts["school_year"] == year]
    votes = current[["n_schools", "n_value_only"]].sum()
    basis = basis or (MEDIAN if votes["n_value_only"] > votes["n_schools"] else POOLED)
    if basis == POOLED:
        return pooled_kpi_from_counts(counts, year, years)
    return summary_kpi(rows, year, group, years, basis=MEDIAN)


def summary_basis(rows: pd.DataFrame) -> str:
    """"pooled" when most rows that carry a value also carry both counts, else "median" (value-only).

    A report card publishes percentages without counts; pooling the few rows that have counts would
    misrepresent the many that do not, so such data is summarised by the median of school values.
    """
    counts = _basis_counts(rows)
    return MEDIAN if int(counts["value_only"].sum()) > int(counts["counts"].sum()) else POOLED


def _basis_counts(rows: pd.DataFrame) -> pd.DataFrame:
    """Per row: does it carry both counts, or a value without counts?"""
    has_counts = rows["numerator"].notna() & rows["denominator"].notna() & (rows["denominator"] > 0)
    return pd.DataFrame({"counts": has_counts, "value_only": rows["value"].notna() & ~has_counts})


def median_of_values(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Median of school values within each `by` group, with the range of those values.

    Returns the `by` columns plus ``value`` (median), ``low`` and ``high`` (minimum and maximum school
    value), ``n_schools`` (rows with a value) and ``n_rows_left_out`` (rows without one: suppressed or
    missing). Counts, intervals and tests are NaN: percentages without counts support none of them.
    """
    work = rows[by + ["value"]].copy()
    work["_has"] = work["value"].notna()
    out = work.groupby(by, dropna=False, sort=True).agg(
        value=("value", "median"), low=("value", "min"), high=("value", "max"),
        n_schools=("_has", "sum"), n_rows=("_has", "size")).reset_index()
    out["n_rows_left_out"] = out["n_rows"] - out["n_schools"]
    for col in ("numerator", "denominator", "ci_low", "ci_high"):
        out[col] = np.nan
    return out.drop(columns="n_rows")


def summary_kpi(rows: pd.DataFrame, year: int, group: str, years: list[int], basis: str | None = None) -> Kpi:
    """The figure for a scope: :func:`pooled_kpi` from counts, or the median of school values.

    `basis` defaults to :func:`summary_basis` of the rows; pass the district's basis for a cluster so
    both figures on a page are of one kind. The median's change since the previous year is a plain
    difference of medians: with no counts there is no test (``p_value`` NaN).
    """
    basis = basis or summary_basis(_group_year(rows, year, group))
    if basis == POOLED:
        return pooled_kpi(rows, year, group, years)
    earlier = [y for y in years if y < year]
    previous_year = max(earlier) if earlier else None
    current = median_of_values(_group_year(rows, year, group).assign(_k=1), ["_k"])
    if current.empty or current["n_schools"].iloc[0] == 0:
        left_out = int(current["n_rows_left_out"].iloc[0]) if len(current) else 0
        return Kpi(*([np.nan] * 8), 0, left_out, year, previous_year, MEDIAN)
    cur = current.iloc[0]
    prev_value = np.nan
    if previous_year is not None:
        prev = _group_year(rows, previous_year, group)["value"].dropna()
        prev_value = float(prev.median()) if len(prev) else np.nan
    return Kpi(float(cur["value"]), np.nan, np.nan, np.nan, np.nan, prev_value, float(cur["value"]) - prev_value,
               np.nan, int(cur["n_schools"]), int(cur["n_rows_left_out"]), year, previous_year, MEDIAN,
               float(cur["low"]), float(cur["high"]))


def cluster_table(rows: pd.DataFrame, schools: pd.DataFrame, year: int, group: str) -> pd.DataFrame:
    """One row per cluster: pooled value with its Wilson interval, or the median of school values.

    The basis (column ``basis``) is chosen once for the whole year and group (:func:`summary_basis`),
    so clusters are always compared like with like. Median rows carry ``low``/``high`` (range of school
    values) and no interval.
    """
    current = _group_year(rows, year, group).merge(schools[["school_id", "cluster"]], on="school_id")
    if current.empty:
        return pd.DataFrame(columns=["cluster", "numerator", "denominator", "value", "ci_low", "ci_high",
                                     "n_schools", "n_rows_left_out", "low", "high", "basis"])
    if summary_basis(current) == MEDIAN:
        table = median_of_values(current, ["cluster"])
        return table[table["n_schools"] > 0].assign(basis=MEDIAN).reset_index(drop=True)
    table = pooled_rates(current, ["cluster"])
    return table[table["denominator"].notna()].assign(low=np.nan, high=np.nan, basis=POOLED).reset_index(drop=True)


def cluster_table_from_counts(counts: pd.DataFrame, rows: pd.DataFrame, schools: pd.DataFrame, year: int,
                              group: str) -> pd.DataFrame:
    """:func:`cluster_table` with the sums and votes per cluster for the year and group summed by the
    database (``analytics.data.aggregates.metric_counts(..., keys=["cluster"])``); ``rows`` (the group's
    rows) are read only for medians."""
    if counts.empty:
        return cluster_table(rows.iloc[0:0], schools, year, group)
    if basis_from_counts(counts[["n_schools", "n_value_only"]].sum().to_frame().T)[0] == MEDIAN:
        return cluster_table(rows, schools, year, group)
    table = rates_from_pooled_counts(counts[["cluster", "numerator", "denominator", "n_schools", "n_rows"]])
    return table[table["denominator"].notna()].assign(low=np.nan, high=np.nan, basis=POOLED).reset_index(drop=True)


def district_values(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """The district figure per `by` group (e.g. metric x group), each on its own basis.

    Pooled from counts where the group's rows have counts (:func:`summary_basis`), the median of
    school values where they do not. Returns `by` + ``value`` + ``basis``.
    """
    if rows.empty:
        return pd.DataFrame(columns=[*by, "value", "basis"])
    counts = _basis_counts(rows)
    votes = rows[by].assign(_counts=counts["counts"], _value_only=counts["value_only"]).groupby(
        by, dropna=False, sort=True)[["_counts", "_value_only"]].sum().reset_index()
    votes["basis"] = np.where(votes["_value_only"] > votes["_counts"], MEDIAN, POOLED)
    pooled = pooled_rates(rows, by)[[*by, "value"]]
    medians = median_of_values(rows, by)[[*by, "value"]].rename(columns={"value": "_median"})
    out = votes[[*by, "basis"]].merge(pooled, on=by, how="left").merge(medians, on=by, how="left")
    out["value"] = np.where(out["basis"] == MEDIAN, out["_median"], out["value"])
    return out[[*by, "value", "basis"]]


def district_values_from_counts(counts: pd.DataFrame, medians: pd.DataFrame | None, by: list[str]) -> pd.DataFrame:
    """:func:`district_values` with the sums and votes per `by` group summed by the database
    (``analytics.data.aggregates.metric_counts``); ``medians`` (`by` + ``value``: :func:`median_of_values`,
    e.g. ``analytics.data.aggregates.median_values``) must hold every group whose basis is the median."""
    if counts.empty:
        return pd.DataFrame(columns=[*by, "value", "basis"])
    out = counts[by].assign(basis=basis_from_counts(counts))
    out["value"] = rates_from_pooled_counts(counts[[*by, "numerator", "denominator", "n_schools", "n_rows"]])[
        "value"].to_numpy()
    if (out["basis"] == MEDIAN).any():
        out = out.merge(medians[[*by, "value"]].rename(columns={"value": "_median"}), on=by, how="left")
        out["value"] = np.where(out["basis"] == MEDIAN, out["_median"], out["value"])
    return out[[*by, "value", "basis"]]


def school_values(rows: pd.DataFrame, schools: pd.DataFrame, year: int, group: str) -> pd.DataFrame:
    """Each school's value for the year and group with its Wilson interval, joined to school facts."""
    current = _group_year(rows, year, group)
    with_ci = add_rate_columns(current) if not current.empty else current.assign(ci_low=np.nan, ci_high=np.nan)
    cols = ["school_id", "school_name", "level", "cluster", "latitude", "longitude"]
    return schools[cols].merge(with_ci.drop(columns=["student_group", "school_year"], errors="ignore"),
                               on="school_id", how="left")


def gaps_vs_others(rows: pd.DataFrame) -> pd.DataFrame:
    """Each group's value against all other students of the same school (ALL minus the group).

    Uses counts only: others = (ALL numerator - group numerator) / (ALL denominator - group
    denominator). The p-value is :func:`analytics.stats.rates.two_proportion_test` of group vs others
    (:func:`~analytics.stats.rates.two_proportion_tests`: every row at once).
    Rows without counts get NaN. Returns the input rows plus ``others_value``, ``gap``, ``p_value``.
    """
    keys = ["school_id", "school_year", "metric"]
    all_rows = rows[rows["student_group"] == "ALL"][keys + ["numerator", "denominator"]].rename(
        columns={"numerator": "all_num", "denominator": "all_den"})
    out = rows[rows["student_group"] != "ALL"].merge(all_rows, on=keys, how="left")
    others_num = out["all_num"] - out["numerator"]
    others_den = out["all_den"] - out["denominator"]
    valid = (others_den > 0) & (others_num >= 0) & (others_num <= others_den) & (out["denominator"] > 0)
    out["others_value"] = np.where(valid, 100 * others_num / others_den.where(others_den > 0), np.nan)
    out["gap"] = out["value"] - out["others_value"]
    tested = valid.to_numpy()
    p_values = np.full(len(out), np.nan)
    p_values[tested] = two_proportion_tests(*(np.asarray(v, dtype="float64")[tested] for v in (
        out["numerator"], out["denominator"], others_num, others_den)))
    out["p_value"] = p_values
    return out.drop(columns=["all_num", "all_den"])


def school_profile(school_rows: pd.DataFrame, district_rows: pd.DataFrame | None, year: int,
                   district: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every metric x group of one school for a year, against the district figure and the target.

    The district figure is pooled from counts, or the median of school values for value-only metrics
    (column ``district_basis``): :func:`district_values` of `district_rows`, or `district` when given
    (the same frame computed beforehand, e.g. from the database's sums).
    """
    current = school_rows[school_rows["school_year"] == year]
    if current.empty:
        return pd.DataFrame()
    if district is None:
        district = district_values(district_rows[district_rows["school_year"] == year], ["metric", "student_group"])
    return school_profiles(current, year, district)


PROFILE_KEYS = ["school_id", "metric", "student_group"]


def school_profiles(rows: pd.DataFrame, year: int, district: pd.DataFrame) -> pd.DataFrame:
    """:func:`school_profile` of every school in `rows` at once, rows in their input order.

    Every step is row-wise (Wilson intervals, the district figure looked up by metric x group) or within one
    school (:func:`gaps_vs_others` pairs each group with its own school's ALL row), so one pass over the
    district's rows of a year gives each school's profile as one school's rows would; a stable sort by
    school (:func:`profile_slices`) then makes each school's profile a slice.
    """
    current = rows[rows["school_year"] == year]
    if current.empty:
        return pd.DataFrame()
    with_ci = add_rate_columns(current)
    district = district.rename(columns={"value": "district_value", "basis": "district_basis"})
    gaps = gaps_vs_others(current)[[*PROFILE_KEYS, "others_value", "gap", "p_value"]]
    profile = with_ci.merge(district, on=["metric", "student_group"], how="left").merge(
        gaps, on=PROFILE_KEYS, how="left")
    profile["vs_district"] = profile["value"] - profile["district_value"]
    return profile


def profile_slices(profiles: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, tuple[int, int]]]:
    """:func:`school_profiles` sorted by school (stable: each school's rows keep their order) and each
    school's ``(start, stop)`` positions in it, so one school's profile is ``iloc[start:stop]``."""
    ordered = profiles.sort_values("school_id", kind="stable").reset_index(drop=True)
    ids = ordered["school_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.array([], dtype=int)
    stops = np.r_[starts[1:], len(ids)]
    return ordered, {str(ids[a]): (int(a), int(b)) for a, b in zip(starts, stops, strict=True)}


def top_and_bottom(df: pd.DataFrame, n: int, higher_is_better: bool = True, value: str = "value") -> pd.DataFrame:
    """The `n` best and `n` worst rows by `value` (all rows when there are at most 2n), best first.

    Keeps a long school list readable; rows without a value are left out. Adds ``part``: "best" or
    "worst" (direction from `higher_is_better`).
    """
    valued = df.dropna(subset=[value]).sort_values(value, ascending=not higher_is_better, kind="stable")
    if len(valued) <= 2 * n:
        return valued.assign(part="best").reset_index(drop=True)
    return pd.concat([valued.head(n).assign(part="best"), valued.tail(n).assign(part="worst")], ignore_index=True)


def data_limits(rows: pd.DataFrame, year: int, label: str) -> list[str]:
    """What the data cannot support for gaps and changes, in plain sentences (empty list: no limit found).

    Checked in order: no values for the year; only the `ALL` group (no groups to compare); values
    without counts (no interval or test, :func:`summary_basis`); no consecutive previous year (no change).
    Pages show these as the reason a view is empty, instead of a guess.
    """
    current = rows[rows["school_year"] == year]
    if current.empty or current["value"].notna().sum() == 0:
        return [f"There are no {label} values for this year in this scope."]
    reasons = []
    if set(current["student_group"]) <= {"ALL"}:
        reasons.append(f"The files give {label} for all students only, so there are no student groups to compare.")
    if summary_basis(current) == MEDIAN:
        reasons.append(NO_COUNTS[0].upper() + NO_COUNTS[1:] + " (report-card percentages).")
    if not (rows["school_year"] == year - 1).any():
        reasons.append("There is no previous school year, so no change can be measured.")
    return reasons
