"""Gaps between a student group and a reference, and whether they are closing (DESIGN §3).

References:
- ``others`` (default): all other students of the same school, ALL counts minus the group's counts;
- ``district_all``: the pooled district ALL value for the metric and year;
- ``best_group``: the best-performing group of the school (by the metric's direction) with n >= 10;
- ``target``: the school's target for the metric (from its ALL row).

A gap's change from the previous year is tested with a z-test for a difference in differences of
independent proportions (Wald standard error, the four proportions treated as independent samples):
``Δ = (p_g,t − p_r,t) − (p_g,t−1 − p_r,t−1)``, ``SE = sqrt(Σ p(1−p)/n)``; for the ``target``
reference the target is fixed and only the group's two proportions enter. A gap is "closing" when its
absolute size shrank and p < alpha, "widening" when it grew and p < alpha, otherwise "no significant
change"; "too small to test" when any of the cells has an expected count below 5 (the normal
approximation is unreliable and no exact test of a difference in differences is offered).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analytics.config import DEFAULT_SETTINGS, Settings

REFERENCES = ("others", "district_all", "best_group", "target")
KEYS = ["school_id", "school_year", "metric"]
GAP_COLUMNS = ["school_id", "school_year", "metric", "student_group", "reference", "value", "reference_value",
               "gap", "gap_change", "p_value", "trend"]


def _reference_counts(rows: pd.DataFrame, reference: str, higher_is_better: dict[str, bool]) -> pd.DataFrame:
    """Group rows with ``ref_num``, ``ref_den`` and ``reference_value`` columns added."""
    groups = rows[rows["student_group"] != "ALL"].copy()
    all_rows = rows[rows["student_group"] == "ALL"]
    if reference == "others":
        ref = all_rows[KEYS + ["numerator", "denominator"]].rename(columns={"numerator": "a_num", "denominator": "a_den"})
        out = groups.merge(ref, on=KEYS, how="left")
        out["ref_num"] = out["a_num"] - out["numerator"]
        out["ref_den"] = out["a_den"] - out["denominator"]
        out = out.drop(columns=["a_num", "a_den"])
        # Group counts must be a subset of ALL; where a file's counts are not, there is no "others".
        invalid = ~(out["ref_den"] > 0) | (out["ref_num"] < 0) | (out["ref_num"] > out["ref_den"])
        out.loc[invalid, ["ref_num", "ref_den"]] = np.nan
        out["reference_value"] = 100 * out["ref_num"] / out["ref_den"]
    elif reference == "district_all":
        counted = all_rows.dropna(subset=["numerator", "denominator"])
        ref = counted.groupby(["school_year", "metric"], as_index=False)[["numerator", "denominator"]].sum()
        ref = ref.rename(columns={"numerator": "ref_num", "denominator": "ref_den"})
        out = groups.merge(ref, on=["school_year", "metric"], how="left")
        out["reference_value"] = 100 * out["ref_num"] / out["ref_den"].where(out["ref_den"] > 0)
    elif reference == "best_group":
        eligible = groups[groups["denominator"] >= 10].copy()
        sign = eligible["metric"].map(lambda m: 1 if higher_is_better.get(m, True) else -1)
        eligible["_score"] = eligible["value"] * sign
        best = eligible.sort_values("_score", ascending=False).drop_duplicates(KEYS)
        best = best[KEYS + ["numerator", "denominator", "value"]].rename(
            columns={"numerator": "ref_num", "denominator": "ref_den", "value": "reference_value"})
        out = groups.merge(best, on=KEYS, how="left")
    elif reference == "target":
        ref = all_rows[KEYS + ["target"]].rename(columns={"target": "reference_value"})
        out = groups.drop(columns=["target"], errors="ignore").merge(ref, on=KEYS, how="left")
        out["ref_num"] = np.nan
        out["ref_den"] = np.nan
    else:
        raise ValueError(f"unknown gap reference {reference!r}; use one of {', '.join(REFERENCES)}")
    return out


def _variance(num: pd.Series, den: pd.Series) -> pd.Series:
    p = num / den.where(den > 0)
    return p * (1 - p) / den.where(den > 0)


def _too_small(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num < 5) | ((den - num) < 5) | den.isna()


def gap_table(rows: pd.DataFrame, reference: str = "others", higher_is_better: dict[str, bool] | None = None,
              settings: Settings = DEFAULT_SETTINGS) -> pd.DataFrame:
    """Gaps for every school x year x metric x group (not ALL), with the change since the previous year.

    Parameters
    ----------
    rows : metrics rows (school_id, school_year, metric, student_group, numerator, denominator, value, target).
    reference : one of ``REFERENCES``.
    higher_is_better : metric -> direction (used by ``best_group``); default True.

    Returns
    -------
    DataFrame with ``GAP_COLUMNS`` plus the counts behind them. Percentages and gaps in points.
    """
    higher_is_better = higher_is_better or {}
    if rows.empty:
        return pd.DataFrame(columns=GAP_COLUMNS)
    work = rows.copy()
    if "target" not in work:
        work["target"] = np.nan
    has_counts = work["numerator"].notna() & (work["denominator"] > 0)
    work.loc[has_counts, "value"] = 100 * work["numerator"] / work["denominator"]
    out = _reference_counts(work, reference, higher_is_better)
    out["reference"] = reference
    out["gap"] = out["value"] - out["reference_value"]

    order = ["school_id", "metric", "student_group", "school_year"]
    out = out.sort_values(order).reset_index(drop=True)
    prev = out.groupby(["school_id", "metric", "student_group"])[
        ["school_year", "gap", "numerator", "denominator", "ref_num", "ref_den"]].shift(1)
    out["previous_year"] = prev["school_year"]
    out["gap_change"] = out["gap"] - prev["gap"]

    var = _variance(out["numerator"], out["denominator"]) + _variance(prev["numerator"], prev["denominator"])
    small = _too_small(out["numerator"], out["denominator"]) | _too_small(prev["numerator"], prev["denominator"])
    if reference != "target":
        var = var + _variance(out["ref_num"], out["ref_den"]) + _variance(prev["ref_num"], prev["ref_den"])
        small |= _too_small(out["ref_num"], out["ref_den"]) | _too_small(prev["ref_num"], prev["ref_den"])
    se = np.sqrt(var) * 100
    z = out["gap_change"] / se.where(se > 0)
    out["p_value"] = pd.Series(2 * stats.norm.sf(np.abs(z)), index=out.index).where(z.notna() & ~small)
    shrank = out["gap"].abs() < prev["gap"].abs()
    significant = out["p_value"] < settings.alpha
    out["trend"] = np.select(
        [out["gap_change"].isna(), small, significant & shrank, significant & ~shrank],
        ["", "too small to test", "closing", "widening"],
        default="no significant change",
    )
    return out[GAP_COLUMNS + ["numerator", "denominator", "ref_num", "ref_den", "previous_year"]]


def pooled_gap_trend(rows: pd.DataFrame, z: float = 1.959964) -> pd.DataFrame:
    """Each group's pooled gap to all other students, by year, over the schools in `rows`.

    Counts are pooled across schools (group and ALL-minus-group), so the gap is a difference of two
    pooled proportions; its 95% interval is the Wald interval of a difference of independent
    proportions. Returns school_year, student_group, value, reference_value, gap, gap_low, gap_high, n.
    """
    groups = rows[rows["student_group"] != "ALL"]
    all_rows = rows[rows["student_group"] == "ALL"][KEYS + ["numerator", "denominator"]]
    merged = groups.merge(all_rows, on=KEYS, suffixes=("", "_all")).dropna(
        subset=["numerator", "denominator", "numerator_all", "denominator_all"])
    merged["ref_num"] = merged["numerator_all"] - merged["numerator"]
    merged["ref_den"] = merged["denominator_all"] - merged["denominator"]
    merged = merged[(merged["ref_den"] > 0) & merged["ref_num"].between(0, merged["ref_den"])]
    pooled = merged.groupby(["school_year", "student_group"], as_index=False)[
        ["numerator", "denominator", "ref_num", "ref_den"]].sum()
    pooled = pooled[(pooled["denominator"] > 0) & (pooled["ref_den"] > 0)]
    p1 = pooled["numerator"] / pooled["denominator"]
    p2 = pooled["ref_num"] / pooled["ref_den"]
    se = np.sqrt(p1 * (1 - p1) / pooled["denominator"] + p2 * (1 - p2) / pooled["ref_den"])
    pooled["value"], pooled["reference_value"] = 100 * p1, 100 * p2
    pooled["gap"] = pooled["value"] - pooled["reference_value"]
    pooled["gap_low"], pooled["gap_high"] = pooled["gap"] - 100 * z * se, pooled["gap"] + 100 * z * se
    pooled["n"] = pooled["denominator"]
    return pooled[["school_year", "student_group", "value", "reference_value", "gap", "gap_low", "gap_high", "n"]]
