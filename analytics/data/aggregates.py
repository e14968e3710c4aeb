"""Aggregates computed in the database: pooled counts per metric x group x year (DESIGN §8, issue 16).

The district and cluster rows of the rates view need only sums, so the database adds them up with
``GROUP BY`` (SQLAlchemy Core, the same statement on SQLite and PostgreSQL) instead of sending every
metric row to pandas. The sums mirror :func:`analytics.stats.rates.pool_counts` exactly: a row enters
the pool when it has both counts and a positive denominator; the others are counted as left out.
The grouping columns lead the index ``ix_metrics_year_metric_group`` (schema), which the plans use.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from analytics.data import schema
from analytics.data.storage import _read

POOL_KEYS = ["school_year", "metric", "student_group"]
COUNT_COLUMNS = ["numerator", "denominator", "n_schools", "n_rows"]


def pooled_counts_statement(*, by_cluster: bool, years: Sequence[int] | None = None,
                            metrics: Sequence[str] | None = None, groups: Sequence[str] | None = None,
                            school_ids: Sequence[str] | None = None) -> sa.Select:
    """SELECT [cluster,] year, metric, group, pooled sums ... GROUP BY those keys.

    With ``by_cluster`` the rows are joined to their school's cluster (schools not in the schools
    table then drop out, as in the pandas merge).
    """
    m = schema.metrics
    pooled = sa.and_(m.c.numerator.is_not(None), m.c.denominator.is_not(None), m.c.denominator > 0)
    keys = [m.c.school_year, m.c.metric, m.c.student_group]
    source: sa.FromClause = m
    if by_cluster:
        s = schema.schools
        keys = [s.c.cluster, *keys]
        source = m.join(s, s.c.school_id == m.c.school_id)
    stmt = sa.select(
        *keys,
        sa.func.sum(sa.case((pooled, m.c.numerator), else_=0)).label("numerator"),
        sa.func.sum(sa.case((pooled, m.c.denominator), else_=0)).label("denominator"),
        sa.func.sum(sa.case((pooled, 1), else_=0)).label("n_schools"),
        sa.func.count().label("n_rows"),
    ).select_from(source)
    for column, values in ((m.c.school_year, years), (m.c.metric, metrics), (m.c.student_group, groups),
                           (m.c.school_id, school_ids)):
        if values is not None:
            stmt = stmt.where(column.in_(list(values)))
    return stmt.group_by(*keys).order_by(*keys)


def pooled_metric_counts(engine: Engine, *, by_cluster: bool, years: Sequence[int] | None = None,
                         metrics: Sequence[str] | None = None, groups: Sequence[str] | None = None,
                         school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Pooled sums of the ``metrics`` table per ([cluster,] year, metric, group), from the database.

    Same columns and numbers as ``pool_counts(rows, [cluster,] + POOL_KEYS)`` over the loaded rows.
    """
    stmt = pooled_counts_statement(by_cluster=by_cluster, years=years, metrics=metrics, groups=groups,
                                   school_ids=school_ids)
    keys = (["cluster"] if by_cluster else []) + POOL_KEYS
    df = _read(engine, stmt)
    if df.empty:
        df = pd.DataFrame(columns=keys + COUNT_COLUMNS)
    for column in ("numerator", "denominator"):
        df[column] = pd.to_numeric(df[column]).astype("float64")
    for column in ("n_schools", "n_rows"):
        df[column] = pd.to_numeric(df[column]).astype("int64")
    df["school_year"] = df["school_year"].astype("int64")
    return df


def metric_present(engine: Engine, metric: str, *, years: Sequence[int] | None = None,
                   groups: Sequence[str] | None = None, school_ids: Sequence[str] | None = None) -> bool:
    """Whether any ``metrics`` row of ``metric`` matches the filters (one indexed lookup)."""
    m = schema.metrics
    stmt = sa.select(m.c.metric).where(m.c.metric == metric)
    for column, values in ((m.c.school_year, years), (m.c.student_group, groups), (m.c.school_id, school_ids)):
        if values is not None:
            stmt = stmt.where(column.in_(list(values)))
    with engine.connect() as conn:
        return conn.execute(stmt.limit(1)).first() is not None


def explain(engine: Engine, stmt: sa.Select) -> str:
    """The database's plan for a statement (``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN`` on PostgreSQL)."""
    compiled = stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + str(compiled)).fetchall()
    return "\n".join(" ".join(str(v) for v in row) if len(row) > 1 else str(row[0]) for row in rows)
