"""Data quality of what has been imported: per metric and for discipline, what is there and what is not.

The database counts (SQL `GROUP BY`, so a district of any size costs one small result) feed a pure
function that writes one row per data set: rows, years present and missing, student groups missing,
suppressed or missing cells, value-only rows (percentages without counts) and schools without data.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from analytics.data import schema
from analytics.data.catalog import STUDENT_GROUPS, group_label

DISCIPLINE_OPTIONAL = ("students_suspended", "students_iss", "students_oss", "students_expelled", "oss_days",
                       "incidents", "law_referrals", "restorative_conferences")
QUALITY_COLUMNS = ["data", "rows", "years", "missing_years", "missing_groups", "suppressed_cells", "value_only_rows",
                   "schools_without_data"]


def _present(column) -> sa.ColumnElement:
    return sa.func.sum(sa.case((column.is_not(None), 1), else_=0))


def database_counts(engine: Engine) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(metric counts, discipline counts, schools): per data set x year x group, counted in the database.

    Metric counts: ``metric, school_year, student_group, rows, with_value, with_counts, value_only,
    schools``; discipline counts: ``data`` = "discipline", the same keys, ``rows``, ``missing_cells``
    (empty optional count cells), ``schools``. Schools are distinct per year and group; the totals per data
    set come from :func:`schools_with_data`.
    """
    m, d = schema.metadata.tables["metrics"], schema.metadata.tables["discipline"]
    both = sa.and_(m.c.numerator.is_not(None), m.c.denominator.is_not(None))
    metric_stmt = sa.select(
        m.c.metric, m.c.school_year, m.c.student_group, sa.func.count().label("rows"),
        _present(m.c.value).label("with_value"),
        sa.func.sum(sa.case((both, 1), else_=0)).label("with_counts"),
        sa.func.sum(sa.case((sa.and_(m.c.value.is_not(None), sa.not_(both)), 1), else_=0)).label("value_only"),
    ).group_by(m.c.metric, m.c.school_year, m.c.student_group)
    missing = sum((sa.case((d.c[col].is_(None), 1), else_=0) for col in DISCIPLINE_OPTIONAL), sa.literal(0))
    discipline_stmt = sa.select(
        d.c.school_year, d.c.student_group, sa.func.count().label("rows"), sa.func.sum(missing).label("missing_cells"),
    ).group_by(d.c.school_year, d.c.student_group)
    with engine.connect() as conn:
        metrics = pd.DataFrame(conn.execute(metric_stmt).mappings().all(),
                               columns=["metric", "school_year", "student_group", "rows", "with_value", "with_counts",
                                        "value_only"])
        discipline = pd.DataFrame(conn.execute(discipline_stmt).mappings().all(),
                                  columns=["school_year", "student_group", "rows", "missing_cells"])
        n_schools = int(conn.execute(sa.select(sa.func.count()).select_from(schema.metadata.tables["schools"]))
                        .scalar_one())
    return metrics, discipline, n_schools


def schools_with_data(engine: Engine) -> dict[str, int]:
    """Distinct schools with at least one row, per metric and for "discipline".

    The distinct (metric, school) pairs are found first and then counted: PostgreSQL answers
    `count(DISTINCT ...)` by sorting every row, which at 10,000 schools x 8 years (10 million metrics rows)
    took 45 s and ran past the statement timeout on a busy server, where a hashed `DISTINCT` took 4 s.
    """
    m, d = schema.metadata.tables["metrics"], schema.metadata.tables["discipline"]
    pairs = sa.select(m.c.metric, m.c.school_id).distinct().subquery()
    with engine.connect() as conn:
        out = {row.metric: int(row.n) for row in conn.execute(
            sa.select(pairs.c.metric, sa.func.count().label("n")).group_by(pairs.c.metric))}
        schools = sa.select(d.c.school_id).distinct().subquery()
        out["discipline"] = int(conn.execute(sa.select(sa.func.count()).select_from(schools)).scalar_one())
    return out


def _years_text(years: list[int]) -> str:
    return f"{min(years) - 1}-{str(min(years))[-2:]} to {max(years) - 1}-{str(max(years))[-2:]}" if years else ""


def _missing_years(years: set[int]) -> str:
    gaps = [y for y in range(min(years), max(years) + 1) if y not in years] if years else []
    return ", ".join(f"{y - 1}-{str(y)[-2:]}" for y in gaps)


def _missing_groups(present: pd.Series) -> str:
    return ", ".join(group_label(g) for g in STUDENT_GROUPS if g not in set(present))


def quality_table(metric_counts: pd.DataFrame, discipline_counts: pd.DataFrame, with_data: dict[str, int],
                  n_schools: int, label=lambda metric: metric) -> pd.DataFrame:
    """One row per data set (each metric, then discipline).

    ``missing_years``: years between a data set's first and last year that have no rows (a break in its
    series). ``missing_groups``: student groups (of the built-in list) with no row at all.
    ``suppressed_cells``: metrics, rows with no value (suppressed or missing); discipline, empty optional
    count cells. ``value_only_rows``: metric rows with a value but no counts (no interval or test possible).
    ``schools_without_data``: schools in the schools table with no row in the data set.
    """
    rows = []
    for metric, part in metric_counts.groupby("metric", sort=True):
        years = {int(y) for y in part["school_year"]}
        rows.append({"data": label(metric), "rows": int(part["rows"].sum()), "years": _years_text(sorted(years)),
                     "missing_years": _missing_years(years),
                     "missing_groups": _missing_groups(part["student_group"]),
                     "suppressed_cells": int((part["rows"] - part["with_value"]).sum()),
                     "value_only_rows": int(part["value_only"].sum()),
                     "schools_without_data": n_schools - with_data.get(metric, 0)})
    if not discipline_counts.empty:
        years = {int(y) for y in discipline_counts["school_year"]}
        rows.append({"data": "Discipline", "rows": int(discipline_counts["rows"].sum()),
                     "years": _years_text(sorted(years)), "missing_years": _missing_years(years),
                     "missing_groups": _missing_groups(discipline_counts["student_group"]),
                     "suppressed_cells": int(discipline_counts["missing_cells"].sum()), "value_only_rows": 0,
                     "schools_without_data": n_schools - with_data.get("discipline", 0)})
    return pd.DataFrame(rows, columns=QUALITY_COLUMNS)


def data_quality(engine: Engine, label=lambda metric: metric) -> pd.DataFrame:
    """The data-quality table of the database (see :func:`quality_table`)."""
    metrics, discipline, n_schools = database_counts(engine)
    return quality_table(metrics, discipline, schools_with_data(engine), n_schools, label)
