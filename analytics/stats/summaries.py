"""District, cluster and school summaries of one metric for one student group (pooled from counts)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.stats.rates import add_rate_columns, pooled_rates, two_proportion_test


@dataclass(frozen=True)
class Kpi:
    """A pooled value and its change since the previous year, with the test behind the change."""

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

    @property
    def significant(self) -> bool:
        return bool(np.isfinite(self.p_value) and self.p_value < 0.05)


def _group_year(rows: pd.DataFrame, year: int, group: str) -> pd.DataFrame:
    return rows[(rows["school_year"] == year) & (rows["student_group"] == group)]


def pooled_kpi(rows: pd.DataFrame, year: int, group: str, years: list[int]) -> Kpi:
    """Pooled value for `year` and change from the previous available year (two-proportion test)."""
    earlier = [y for y in years if y < year]
    previous_year = max(earlier) if earlier else None
    current = pooled_rates(_group_year(rows, year, group).assign(_k=1), ["_k"])
    if current.empty:
        return Kpi(*([np.nan] * 8), 0, 0, year, previous_year)
    cur = current.iloc[0]
    prev_value, change, p_value = np.nan, np.nan, np.nan
    if previous_year is not None:
        prev = pooled_rates(_group_year(rows, previous_year, group).assign(_k=1), ["_k"])
        if not prev.empty:
            p = prev.iloc[0]
            prev_value = p["value"]
            change = cur["value"] - prev_value
            p_value = two_proportion_test(cur["numerator"], cur["denominator"], p["numerator"], p["denominator"])
    return Kpi(cur["value"], cur["numerator"], cur["denominator"], cur["ci_low"], cur["ci_high"], prev_value,
               change, p_value, int(cur["n_schools"]), int(cur["n_rows_left_out"]), year, previous_year)


def cluster_table(rows: pd.DataFrame, schools: pd.DataFrame, year: int, group: str) -> pd.DataFrame:
    """One pooled row per cluster: value, Wilson interval, students, schools pooled and left out."""
    current = _group_year(rows, year, group).merge(schools[["school_id", "cluster"]], on="school_id")
    if current.empty:
        return pd.DataFrame(columns=["cluster", "numerator", "denominator", "value", "ci_low", "ci_high",
                                     "n_schools", "n_rows_left_out"])
    table = pooled_rates(current, ["cluster"])
    return table[table["denominator"].notna()].reset_index(drop=True)


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
    denominator). The p-value is :func:`analytics.stats.rates.two_proportion_test` of group vs others.
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
    out["p_value"] = [
        two_proportion_test(k1, n1, k2, n2) if ok else np.nan
        for k1, n1, k2, n2, ok in zip(out["numerator"], out["denominator"], others_num, others_den, valid,
                                      strict=True)
    ]
    return out.drop(columns=["all_num", "all_den"])


def school_profile(school_rows: pd.DataFrame, district_rows: pd.DataFrame, year: int) -> pd.DataFrame:
    """Every metric x group of one school for a year, against the pooled district value and the target."""
    current = school_rows[school_rows["school_year"] == year]
    if current.empty:
        return pd.DataFrame()
    with_ci = add_rate_columns(current)
    district = pooled_rates(district_rows[district_rows["school_year"] == year], ["metric", "student_group"])
    district = district[["metric", "student_group", "value"]].rename(columns={"value": "district_value"})
    gaps = gaps_vs_others(current)[["metric", "student_group", "others_value", "gap", "p_value"]]
    profile = with_ci.merge(district, on=["metric", "student_group"], how="left").merge(
        gaps, on=["metric", "student_group"], how="left")
    profile["vs_district"] = profile["value"] - profile["district_value"]
    return profile
