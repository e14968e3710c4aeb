"""Values derived from discipline counts: the `ALL` row when a file has none, and the suspension rate.

DESIGN §2: `suspension_rate` = 100 x students_suspended / enrolled (students_oss when
students_suspended is empty); when a school-year has no `ALL` row, `ALL` is the sum of its
race/ethnicity rows, and pages say so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.data.catalog import RACE_GROUPS

COUNT_COLUMNS = (
    "enrolled", "students_suspended", "students_iss", "students_oss", "students_expelled", "oss_days",
    "incidents", "law_referrals", "restorative_conferences",
)


def discipline_with_all(discipline: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add an `ALL` row summed from race rows to each school-year that lacks one.

    A derived count is unknown (NaN) when any race row's count is missing or suppressed: a partial
    sum would understate ALL (pages say so). Returns the completed frame and the (school_id,
    school_year) pairs whose `ALL` was derived.
    """
    keys = ["school_id", "school_year"]
    groups = discipline["student_group"]
    race = discipline[groups.isin(RACE_GROUPS)]
    # race rows of a school-year without ALL, in their order: a set lookup of plain (school, year) pairs (a
    # merge, or matching two MultiIndexes, cost more than the rest of a school's first read)
    is_all = (groups == "ALL").to_numpy()
    has_all = set(zip(discipline["school_id"].to_numpy()[is_all].tolist(),
                      discipline["school_year"].to_numpy()[is_all].tolist(), strict=True))
    lacks_all = np.fromiter((key not in has_all for key in zip(race["school_id"].tolist(),
                                                                race["school_year"].tolist(), strict=True)),
                            dtype=bool, count=len(race))
    if not lacks_all.any():
        return discipline, discipline[keys].iloc[0:0]
    missing = race[lacks_all]
    cols = [c for c in COUNT_COLUMNS if c in discipline]
    grouped = missing.groupby(keys)
    unknown = missing[cols].isna().groupby([missing[k] for k in keys]).any()
    derived = grouped[cols].sum().mask(unknown).reset_index()
    derived["student_group"] = "ALL"
    out = pd.concat([discipline, derived[discipline.columns.intersection(derived.columns)]], ignore_index=True)
    return out, derived[keys]


def suspension_counts(discipline: pd.DataFrame) -> pd.Series:
    """Students suspended, falling back to students with OSS where the suspended count is empty."""
    if "students_oss" not in discipline:
        return discipline["students_suspended"]
    return discipline["students_suspended"].fillna(discipline["students_oss"])


def suspension_metric_rows(discipline: pd.DataFrame) -> pd.DataFrame:
    """Discipline rows as `metrics` rows for the derived `suspension_rate` metric."""
    full, _ = discipline_with_all(discipline)
    numerator = suspension_counts(full).to_numpy(dtype="float64")
    denominator = full["enrolled"].to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):  # no rate without a positive enrolment
        value = np.where(denominator > 0, 100.0 * numerator / denominator, np.nan)
    # One frame built at once (column by column cost more than the rest of a school's derived rows).
    return pd.DataFrame({"school_id": full["school_id"], "school_year": full["school_year"],
                         "student_group": full["student_group"], "metric": "suspension_rate", "numerator": numerator,
                         "denominator": denominator, "value": value, "target": np.nan}, index=full.index)


def metrics_with_suspension(metrics: pd.DataFrame, discipline: pd.DataFrame,
                             derived: bool | None = None) -> pd.DataFrame:
    """Metrics plus derived `suspension_rate` rows, unless suspension rates were imported.

    ``derived``: whether to derive, decided by the caller for a wider scope than these rows (e.g. the
    district's year, :func:`analytics.data.aggregates.suspension_derived`), so that a block of schools or
    one school gets the rows the whole scope gets; None decides from these rows (any imported: none derived)."""
    imported = metrics["metric"] == "suspension_rate"
    if derived is None:
        derived = not imported.any()
    if not derived or discipline.empty:
        return metrics
    metrics = metrics[~imported] if imported.any() else metrics
    derived = suspension_metric_rows(discipline)
    if metrics.empty:
        return derived[list(metrics.columns)] if len(metrics.columns) else derived
    return pd.concat([metrics, derived[metrics.columns]], ignore_index=True)


def metrics_with_suspension_by_school(metrics: pd.DataFrame, discipline: pd.DataFrame) -> pd.DataFrame:
    """:func:`metrics_with_suspension` of several schools' rows at once, each school deciding from its own rows
    (as ``metrics_with_suspension`` of that school's rows alone): suspension rates derived for the schools that
    imported none. Each school's rows come in the order its own call gives them: its metric rows, then its
    derived rows (a school's page reads its rows this way; the preparer reads a block of schools in one go)."""
    imported = set(metrics.loc[metrics["metric"] == "suspension_rate", "school_id"])
    discipline = discipline[~discipline["school_id"].isin(imported)] if imported else discipline
    if discipline.empty:
        return metrics
    derived = suspension_metric_rows(discipline)
    if metrics.empty:
        return derived[list(metrics.columns)] if len(metrics.columns) else derived
    return pd.concat([metrics, derived[metrics.columns]], ignore_index=True)
