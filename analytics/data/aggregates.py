"""Aggregates computed in the database: pooled counts per metric x group x year (DESIGN §8).

The district and cluster rows of the rates view need only sums, so the database adds them up with
``GROUP BY`` (SQLAlchemy Core, the same statement on SQLite and PostgreSQL) instead of sending every
metric row to pandas. The sums mirror :func:`analytics.stats.rates.pool_counts` exactly: a row enters
the pool when it has both counts and a positive denominator; the others are counted as left out.
The grouping columns lead the indexes ``ix_metrics_year_metric`` and ``ix_metrics_metric_group_year`` (schema) on
SQLite, which the plans use; on PostgreSQL a year is a partition of its own, read whole or by its
``ix_metrics_metric_group_year`` index.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

from analytics.config import DEFAULT_SETTINGS, Settings
from analytics.data import loads, schema
from analytics.data.catalog import RACE_GROUPS
from analytics.data.derived import metrics_with_suspension, suspension_metric_rows
from analytics.data.loads import _read
from analytics.stats import disproportionality, gaps
from analytics.stats.summaries import MEDIAN, basis_from_counts, district_values, district_values_from_counts

POOL_KEYS = ["school_year", "metric", "student_group"]
COUNT_COLUMNS = ["numerator", "denominator", "n_schools", "n_rows"]


def pooled_counts_statement(*, by_cluster: bool, years: Sequence[int] | None = None,
                            metrics: Sequence[str] | None = None, groups: Sequence[str] | None = None,
                            school_ids: Sequence[str] | None = None) -> sa.Select:
    """SELECT [cluster,] year, metric, group, pooled sums ... GROUP BY those keys.

    With ``by_cluster`` the rows are joined to their school's cluster (schools not in the schools
    table then drop out, as in the pandas merge).
    """
    keys = (["cluster"] if by_cluster else []) + POOL_KEYS
    return counts_statement(keys, years=years, metrics=metrics, groups=groups, school_ids=school_ids)


def counts_statement(keys: Sequence[str], *, years: Sequence[int] | None = None,
                     metrics: Sequence[str] | None = None, groups: Sequence[str] | None = None,
                     school_ids: Sequence[str] | None = None, value_only: bool = False) -> sa.Select:
    """SELECT keys, numerator, denominator, n_schools, n_rows [, n_value_only] ... GROUP BY keys.

    ``keys`` are columns of ``metrics`` and ``cluster`` (joined from ``schools``). ``n_value_only``
    counts rows with a value but not both counts (the vote of :func:`analytics.stats.summaries.summary_basis`).
    """
    m, s = schema.metrics, schema.schools
    pooled = sa.and_(m.c.numerator.is_not(None), m.c.denominator.is_not(None), m.c.denominator > 0)
    columns = [s.c.cluster if key == "cluster" else m.c[key] for key in keys]
    source: sa.FromClause = m.join(s, s.c.school_id == m.c.school_id) if "cluster" in keys else m
    sums = [
        sa.func.sum(sa.case((pooled, m.c.numerator), else_=0)).label("numerator"),
        sa.func.sum(sa.case((pooled, m.c.denominator), else_=0)).label("denominator"),
        sa.func.sum(sa.case((pooled, 1), else_=0)).label("n_schools"),
        sa.func.count().label("n_rows"),
    ]
    if value_only:
        sums.append(sa.func.sum(sa.case((sa.and_(m.c.value.is_not(None), sa.not_(pooled)), 1), else_=0))
                    .label("n_value_only"))
    stmt = sa.select(*columns, *sums).select_from(source)
    for column, values in ((m.c.school_year, years), (m.c.metric, metrics), (m.c.student_group, groups),
                           (m.c.school_id, school_ids)):
        if values is not None:
            stmt = stmt.where(column.in_(list(values)))
    return stmt.group_by(*columns).order_by(*columns)


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
    return loads.in_byte_order(df, keys) if by_cluster else df


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


def explain(engine: Engine, stmt: sa.Select, *, index_scans_only: bool = False) -> str:
    """The database's plan for a statement (``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN`` on PostgreSQL).

    ``index_scans_only`` asks PostgreSQL for its plan with sequential scans priced out, which shows
    whether an index can serve the statement on a table too small for the planner to prefer it.
    """
    compiled = stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    left = tuple(compiled.params[name] for name in compiled.positiontup or ())  # SQLite's LIMIT -1 of an OFFSET
    with engine.begin() as conn:
        if index_scans_only and engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = (conn.exec_driver_sql(prefix + str(compiled), left) if left
                else conn.exec_driver_sql(prefix + str(compiled))).fetchall()
    return "\n".join(" ".join(str(v) for v in row) if len(row) > 1 else str(row[0]) for row in rows)


SUMMARY_COLUMNS = ["numerator", "denominator", "n_schools", "n_rows", "n_value_only"]


def metric_counts(engine: Engine, keys: Sequence[str], *, years: Sequence[int] | None = None,
                  metrics: Sequence[str] | None = None, groups: Sequence[str] | None = None,
                  school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Pooled sums and basis votes of the ``metrics`` table per ``keys``, from the database.

    ``keys`` are any of ``cluster``, ``school_id``, ``school_year``, ``metric``, ``student_group``.
    Same frame as :func:`counts_from_rows` over the loaded rows: ``keys`` + ``SUMMARY_COLUMNS``.
    """
    stmt = counts_statement(keys, years=years, metrics=metrics, groups=groups, school_ids=school_ids,
                            value_only=True)
    return _typed_counts(_read(engine, stmt), list(keys))


def counts_from_rows(rows: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """:func:`metric_counts` computed in pandas, for rows that are not in the table (the suspension
    rate derived from discipline counts) and for tests."""
    keys = list(keys)
    if rows.empty:
        return _typed_counts(pd.DataFrame(), keys)
    pooled = rows["numerator"].notna() & rows["denominator"].notna() & (rows["denominator"] > 0)
    work = rows[keys].assign(numerator=rows["numerator"].where(pooled, 0.0),
                             denominator=rows["denominator"].where(pooled, 0.0), n_schools=pooled,
                             n_rows=1, n_value_only=rows["value"].notna() & ~pooled)
    out = work.groupby(keys, dropna=False, sort=True)[SUMMARY_COLUMNS].sum().reset_index()
    return _typed_counts(out, keys)


def _typed_counts(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    if df.empty:
        df = pd.DataFrame(columns=keys + SUMMARY_COLUMNS)
    for column in ("numerator", "denominator"):
        df[column] = pd.to_numeric(df[column]).astype("float64")
    for column in ("n_schools", "n_rows", "n_value_only"):
        df[column] = pd.to_numeric(df[column]).astype("int64")
    if "school_year" in df:
        df["school_year"] = df["school_year"].astype("int64")
    df = df[keys + SUMMARY_COLUMNS]
    return loads.in_byte_order(df, keys) if "cluster" in keys else df


def _filters(stmt: sa.Select, *, years: Sequence[int] | None, metrics: Sequence[str] | None,
             groups: Sequence[str] | None, school_ids: Sequence[str] | None) -> sa.Select:
    m = schema.metrics
    for column, values in ((m.c.school_year, years), (m.c.metric, metrics), (m.c.student_group, groups),
                           (m.c.school_id, school_ids)):
        if values is not None:
            stmt = stmt.where(column.in_(list(values)))
    return stmt


def median_statements(keys: Sequence[str], *, years: Sequence[int] | None = None,
                      metrics: Sequence[str] | None = None, groups: Sequence[str] | None = None,
                      school_ids: Sequence[str] | None = None) -> tuple[sa.Select, sa.Select]:
    """(medians, ranges) of ``value`` per ``keys``: the statements behind :func:`median_values`.

    The median is the average of the middle one or two values in order (``ROW_NUMBER`` and ``COUNT`` over
    each group, rows ``(n + 1) // 2`` and ``(n + 2) // 2``): the same statement on SQLite, which has no
    ``percentile_cont``, and PostgreSQL, and the same floating-point operations as pandas' median
    ((a + b) / 2 of the two middle values), where ``percentile_cont``'s interpolation a + (b - a) / 2 can
    differ in the last bit. The ranges statement gives min, max and the rows with and without a value.
    """
    m, s = schema.metrics, schema.schools
    columns = [s.c.cluster if key == "cluster" else m.c[key] for key in keys]
    source: sa.FromClause = m.join(s, s.c.school_id == m.c.school_id) if "cluster" in keys else m
    filters = {"years": years, "metrics": metrics, "groups": groups, "school_ids": school_ids}
    ranked = _filters(sa.select(*[c.label(k) for c, k in zip(columns, keys, strict=True)], m.c.value.label("value"),
                                sa.func.row_number().over(partition_by=columns, order_by=m.c.value).label("position"),
                                sa.func.count().over(partition_by=columns).label("n"))
                      .select_from(source).where(m.c.value.is_not(None)), **filters).subquery("ranked")
    middle = sa.or_(ranked.c.position == (ranked.c.n + 1) // 2, ranked.c.position == (ranked.c.n + 2) // 2)
    by = [ranked.c[k] for k in keys]
    medians = sa.select(*by, sa.func.avg(ranked.c.value).label("value")).where(middle).group_by(*by)
    ranges = _filters(sa.select(*columns, sa.func.min(m.c.value).label("low"), sa.func.max(m.c.value).label("high"),
                                sa.func.count(m.c.value).label("n_schools"), sa.func.count().label("n_rows"))
                      .select_from(source), **filters).group_by(*columns).order_by(*columns)
    return medians, ranges


def median_values(engine: Engine, keys: Sequence[str], *, years: Sequence[int] | None = None,
                  metrics: Sequence[str] | None = None, groups: Sequence[str] | None = None,
                  school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`analytics.stats.summaries.median_of_values` of the matching ``metrics`` rows per ``keys``
    (any of ``cluster``, ``school_id``, ``school_year``, ``metric``, ``student_group``), computed by the
    database: the medians of value-only metrics without sending their rows to pandas."""
    keys = list(keys)
    medians, ranges = median_statements(keys, years=years, metrics=metrics, groups=groups, school_ids=school_ids)
    out = _read(engine, ranges)
    columns = [*keys, "value", "low", "high", "n_schools", "n_rows_left_out", "numerator", "denominator",
               "ci_low", "ci_high"]
    if out.empty:
        return pd.DataFrame(columns=columns)
    middle = _read(engine, medians)
    if "school_year" in keys:
        for frame in (out, middle):
            frame["school_year"] = frame["school_year"].astype("int64")
    out = out.merge(middle, on=keys, how="left")
    for column in ("value", "low", "high"):
        out[column] = pd.to_numeric(out[column]).astype("float64")
    out["n_schools"] = out["n_schools"].astype("int64")
    out["n_rows_left_out"] = out.pop("n_rows").astype("int64") - out["n_schools"]
    for column in ("numerator", "denominator", "ci_low", "ci_high"):
        out[column] = np.nan
    return out.sort_values(keys, ignore_index=True)[columns]


def suspension_derived(engine: Engine, years: Sequence[int] | None = None,
                       school_ids: Sequence[str] | None = None) -> bool:
    """Whether `suspension_rate` rows of this scope come from the discipline table (none imported), as
    :func:`analytics.data.derived.metrics_with_suspension` decides for the same rows."""
    return not metric_present(engine, "suspension_rate", years=years, school_ids=school_ids)


def metric_slice(engine: Engine, metric: str, group: str, school_ids: Sequence[str] | None = None,
                 years: Sequence[int] | None = None, derived: bool | None = None) -> pd.DataFrame:
    """One metric's rows for one student group, every year (or only ``years``): the rows of
    ``metrics_with_suspension`` over the whole metric, filtered on the group, read with the group's (and the
    years') filter in SQL. Whether the suspension rate is derived is decided over every year either way, for
    these schools, or as `derived` says (e.g. the district's decision, so some schools' rows are the
    district's rows of them)."""
    if derived is None and metric == "suspension_rate":
        derived = suspension_derived(engine, school_ids=school_ids)
    if metric == "suspension_rate" and derived:
        groups = [group] if group != "ALL" else ["ALL", *RACE_GROUPS]  # a missing ALL is summed from races
        rows = metrics_with_suspension(loads.load_metrics(engine, metrics=[metric], groups=[group], years=years,
                                                          school_ids=school_ids),
                                       loads.load_discipline(engine, years=years, groups=groups,
                                                             school_ids=school_ids))
        return rows[rows["student_group"] == group].reset_index(drop=True)
    return loads.load_metrics(engine, metrics=[metric], groups=[group], years=years, school_ids=school_ids)


def metric_rows(engine: Engine, metric: str, years: Sequence[int] | None = None,
                school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Every group's rows of one metric for some years and schools (default: all), the derived suspension
    rate included when no suspension rate was imported for these schools in any year (as
    :func:`metric_slice` and :func:`group_counts` decide)."""
    if metric == "suspension_rate" and suspension_derived(engine, school_ids=school_ids):
        return metrics_with_suspension(loads.load_metrics(engine, metrics=[metric], years=years, school_ids=school_ids),
                                       loads.load_discipline(engine, years=years, school_ids=school_ids))
    return loads.load_metrics(engine, metrics=[metric], years=years, school_ids=school_ids)


def gap_trend_statement(metric: str, school_ids: Sequence[str] | None = None) -> sa.Select:
    """SELECT year, group, the sums of :func:`analytics.stats.gaps.gap_trend_sums` ... GROUP BY year, group.

    The metric's ALL rows are read once (``ix_metrics_metric_group_year``) into a materialized CTE, and each
    school-year's group rows are found from it by the unique key, school first (three times faster on
    SQLite than looking up every group row's ALL row: the rows of a school sit together). PostgreSQL joins
    them as rows of the table instead (not materialized): it estimated a materialized CTE's join at a thousand
    rows, not the 900,000 of one metric at 10,000 schools x 8 years, and sorted them on disk to group them
    (2.1 s, 1.3 s joined from the table's statistics). Rows of unknown
    schools stay out (joined to the schools table, as the pages' scope does); counts are cast to floating
    point before the Mantel-Haenszel terms, so integer division never truncates.
    """
    m, s = schema.metrics, schema.schools
    a = (sa.select(m.c.school_id, m.c.school_year, m.c.numerator, m.c.denominator)
         .where(m.c.metric == metric, m.c.student_group == "ALL", m.c.numerator.is_not(None),
                m.c.denominator.is_not(None))
         .cte("all_rows").prefix_with("MATERIALIZED", dialect="sqlite"))
    g = m.alias("g")
    k1, n1 = sa.cast(g.c.numerator, sa.Float), sa.cast(g.c.denominator, sa.Float)
    k0, n0 = sa.cast(a.c.numerator, sa.Float) - k1, sa.cast(a.c.denominator, sa.Float) - n1
    keep = n1 > 0  # the other students' side (n0 > 0) is a condition of every row
    total = n1 + n0
    terms = {
        "mh_num": (k1 * n0 - k0 * n1) / total,
        "mh_weight": n1 * n0 / total,
        "mh_p": (n1 * n1 * k0 - n0 * n0 * k1 + n1 * n0 * (n0 - n1) / 2) / (total * total),
        "mh_q": (k1 * (n0 - k0) + k0 * (n1 - k1)) / (2 * total),
    }
    sums = [sa.func.sum(k1).label("numerator"), sa.func.sum(n1).label("denominator"),
            sa.func.sum(k0).label("ref_num"), sa.func.sum(n0).label("ref_den"),
            *[sa.func.sum(sa.case((keep, term))).label(name) for name, term in terms.items()],
            sa.func.sum(sa.case((keep, 1), else_=0)).label("n_strata")]
    join = sa.and_(g.c.school_id == a.c.school_id, g.c.school_year == a.c.school_year, g.c.metric == metric)
    stmt = (sa.select(g.c.school_year, g.c.student_group, *sums)
            .select_from(a.join(s, s.c.school_id == a.c.school_id).join(g, join))
            .where(g.c.student_group != "ALL", g.c.numerator.is_not(None), g.c.denominator.is_not(None),
                   n0 > 0, k0 >= 0, k0 <= n0))
    if school_ids is not None:
        stmt = stmt.where(a.c.school_id.in_(list(school_ids)))
    return stmt.group_by(g.c.school_year, g.c.student_group)


def gap_trend_sums(engine: Engine, metric: str, school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`analytics.stats.gaps.gap_trend_sums` of one metric's rows of some schools (default: every school
    in the schools table), every year, summed by the database: a few rows per year and group for
    :func:`analytics.stats.gaps.pooled_gap_trend_from_sums` instead of every school's rows."""
    if metric == "suspension_rate" and suspension_derived(engine, school_ids=school_ids):
        rows = metric_rows(engine, metric, school_ids=school_ids)
        known = loads.load_schools(engine)["school_id"]
        return gaps.gap_trend_sums(rows[rows["school_id"].isin(known)])
    df = _read(engine, gap_trend_statement(metric, school_ids))
    if df.empty:
        return pd.DataFrame(columns=gaps.TREND_KEYS + gaps.TREND_SUMS)
    for column in gaps.TREND_SUMS:
        df[column] = pd.to_numeric(df[column]).astype("float64").fillna(0.0)
    df["n_strata"] = df["n_strata"].astype("int64")
    df["school_year"] = df["school_year"].astype("int64")
    return df.sort_values(gaps.TREND_KEYS, ignore_index=True)


def group_counts(engine: Engine, metric: str, group: str, keys: Sequence[str], *,
                 years: Sequence[int] | None = None, school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`metric_counts` of one metric and group per ``keys``; the derived suspension rate (not in
    the metrics table) is summed from its rows (:func:`counts_from_rows`)."""
    if metric == "suspension_rate" and suspension_derived(engine, school_ids=school_ids):
        rows = metric_slice(engine, metric, group, school_ids)
        if years:
            rows = rows[rows["school_year"].isin(list(years))]
        if "cluster" in keys:
            rows = rows.merge(loads.load_schools(engine)[["school_id", "cluster"]], on="school_id")
        return counts_from_rows(rows, keys)
    return metric_counts(engine, keys, years=years, metrics=[metric], groups=[group], school_ids=school_ids)


def district_figures(engine: Engine, year: int) -> pd.DataFrame:
    """The district figure of every metric x group for a year, pooled or the median of school values:
    :func:`analytics.stats.summaries.district_values` of every row of the year (derived suspension rate
    included), from the database's sums and, for value-only metrics, its medians (:func:`median_values`)."""
    by = ["metric", "student_group"]
    counts = metric_counts(engine, by, years=[year])
    medians = counts.loc[basis_from_counts(counts) == MEDIAN, "metric"].unique().tolist()
    values = median_values(engine, by, years=[year], metrics=medians) if medians else None
    figures = district_values_from_counts(counts, values, by)
    if suspension_derived(engine, [year]):
        discipline = loads.load_discipline(engine, years=[year])
        if not discipline.empty:
            derived = district_values(suspension_metric_rows(discipline), by)
            figures = pd.concat([figures, derived], ignore_index=True) if len(figures) else derived
    return figures


def metric_groups(engine: Engine, metric: str) -> list[str]:
    """The student groups with rows for a metric (a loose scan of the metric-first index), sorted; for the derived
    suspension rate, those of the discipline table."""
    if metric == "suspension_rate" and suspension_derived(engine):
        return discipline_groups(engine)
    with engine.connect() as conn:
        return sorted(conn.execute(page_statements(metric, "ALL", 0)["groups of a metric (filter bar)"]).scalars())


def discipline_groups(engine: Engine) -> list[str]:
    """The student groups of the discipline table, with ``ALL`` when race rows let it be derived
    (:func:`analytics.data.derived.discipline_with_all`), sorted."""
    d = schema.discipline
    with engine.connect() as conn:
        groups = set(conn.execute(sa.select(d.c.student_group).distinct()).scalars())
    if groups & set(RACE_GROUPS):
        groups.add("ALL")
    return sorted(groups)


def district_all_counts(engine: Engine, metric: str) -> pd.DataFrame:
    """The gaps' ``district_all`` reference of one metric summed by the database: ALL numerators and
    denominators per year over the schools with both (:func:`analytics.stats.gaps.district_all_counts`)."""
    if metric == "suspension_rate" and suspension_derived(engine):
        return gaps.district_all_counts(metric_slice(engine, metric, "ALL"))
    df = _read(engine, district_all_statement(metric))
    if df.empty:
        df = pd.DataFrame(columns=["school_year", "metric", "ref_num", "ref_den"])
    for column in ("ref_num", "ref_den"):
        df[column] = pd.to_numeric(df[column]).astype("float64")
    df["school_year"] = df["school_year"].astype("int64")
    return df


def district_all_statement(metric: str) -> sa.Select:
    m = schema.metrics
    return (sa.select(m.c.school_year, m.c.metric, sa.func.sum(m.c.numerator).label("ref_num"),
                      sa.func.sum(m.c.denominator).label("ref_den"))
            .where(m.c.metric == metric, m.c.student_group == "ALL", m.c.numerator.is_not(None),
                   m.c.denominator.is_not(None))
            .group_by(m.c.school_year, m.c.metric).order_by(m.c.school_year))


def page_statements(metric: str, group: str, year: int) -> dict[str, sa.Select]:
    """The statements pages run for one view, by what they read (for ``EXPLAIN`` in tests and benchmarks)."""
    m = schema.metrics
    return {
        "group rows, every year (metric_slice)": loads._filtered(m, metric=[metric], student_group=[group]),
        "pooled per year (KPI)": counts_statement(["school_year"], metrics=[metric], groups=[group], value_only=True),
        "pooled per cluster (cluster table)": counts_statement(["cluster"], years=[year], metrics=[metric],
                                                               groups=[group], value_only=True),
        "pooled per metric x group (district figures)": counts_statement(["metric", "student_group"], years=[year],
                                                                         value_only=True),
        "district ALL (gap reference)": district_all_statement(metric),
        "groups of a metric (filter bar)": loads.distinct_statement(m.c.student_group, m.c.metric == metric),
    }


def explain_pages(engine: Engine, metric: str, group: str, year: int, *,
                  index_scans_only: bool = False) -> dict[str, str]:
    """The database's plan of each of :func:`page_statements`."""
    return {name: explain(engine, stmt, index_scans_only=index_scans_only)
            for name, stmt in page_statements(metric, group, year).items()}


# The count behind each disproportionality outcome (analytics.stats.disproportionality.OUTCOMES).
_OUTCOME_COLUMNS = {"iss": "students_iss", "oss": "students_oss", "expulsion": "students_expelled",
                    "law_referral": "law_referrals"}


def _known_sum(column: sa.ColumnElement) -> sa.ColumnElement:
    """The sum of a column, NULL when any summed value is NULL (a partial sum would understate it)."""
    return sa.case((sa.func.count(column) == sa.func.count(), sa.func.sum(column)), else_=None)


def _has_all_row(d: sa.Table) -> sa.Exists:
    """Whether the school-year of a discipline row has an ALL row of its own."""
    other = d.alias("has_all")
    return sa.exists().where(other.c.school_id == d.c.school_id, other.c.school_year == d.c.school_year,
                             other.c.student_group == "ALL")


def _discipline_all_rows() -> sa.Subquery:
    """Each school-year's ALL row: the imported one, or the sum of its race rows when it has none
    (:func:`analytics.data.derived.discipline_with_all`; ``derived`` 1); one count column per outcome, and OSS days."""
    d = schema.discipline
    counted = ["enrolled", "students_suspended", *_OUTCOME_COLUMNS.values(), "oss_days"]
    imported = (sa.select(d.c.school_id, d.c.school_year, *[d.c[c] for c in counted], sa.literal(0).label("derived"))
                .where(d.c.student_group == "ALL"))
    has_all = _has_all_row(d)
    derived = (sa.select(d.c.school_id, d.c.school_year, *[_known_sum(d.c[c]).label(c) for c in counted],
                         sa.literal(1).label("derived"))
               .where(d.c.student_group.in_(list(RACE_GROUPS)), sa.not_(has_all))
               .group_by(d.c.school_id, d.c.school_year))
    return sa.union_all(imported, derived).subquery("all_rows")


def _outcome_count(table: sa.FromClause, outcome: str) -> sa.ColumnElement:
    if outcome == "suspension":  # students suspended, or students with OSS where that is empty
        return sa.func.coalesce(table.c.students_suspended, table.c.students_oss)
    return table.c[_OUTCOME_COLUMNS[outcome]]


def district_risks_statements(outcomes: Sequence[str], years: Sequence[int] | None = None) -> tuple[sa.Select,
                                                                                                    sa.Select]:
    """(per year and group, per year) sums behind the district risks, every outcome in one pass each.

    Per year and group: the part of the district's ALL that is group g's, over schools whose ALL count
    is known (g's own counts where known, the whole school's where not), and how many schools that is
    (``n_<outcome>``). Per year: the district's ALL sums over the schools whose ALL counts are known.
    ``years``: only those years (each year's sums are its own).
    """
    d, a = schema.discipline, _discipline_all_rows()
    removed, totals = [], []
    for outcome in outcomes:
        all_count, g_count = _outcome_count(a, outcome), _outcome_count(d, outcome)
        known_all = sa.and_(a.c.enrolled.is_not(None), all_count.is_not(None))
        g_known = sa.and_(g_count.is_not(None), d.c.enrolled.is_not(None))
        removed += [
            sa.func.sum(sa.case((sa.and_(known_all, g_known), g_count), (known_all, all_count))).label(f"out_count_{outcome}"),
            sa.func.sum(sa.case((sa.and_(known_all, g_known), d.c.enrolled), (known_all, a.c.enrolled)))
            .label(f"out_enrolled_{outcome}"),
            sa.func.sum(sa.case((known_all, 1), else_=0)).label(f"n_{outcome}"),
        ]
        totals += [sa.func.sum(sa.case((known_all, all_count))).label(f"all_count_{outcome}"),
                   sa.func.sum(sa.case((known_all, a.c.enrolled))).label(f"all_enrolled_{outcome}")]
    by_group = (sa.select(d.c.school_year, d.c.student_group, *removed)
                .select_from(d.join(a, sa.and_(a.c.school_id == d.c.school_id, a.c.school_year == d.c.school_year)))
                .where(d.c.student_group != "ALL")
                .group_by(d.c.school_year, d.c.student_group).order_by(d.c.school_year, d.c.student_group))
    by_year = sa.select(a.c.school_year, *totals).group_by(a.c.school_year)
    if years is not None:
        by_group = by_group.where(d.c.school_year.in_(list(years)), a.c.school_year.in_(list(years)))
        by_year = by_year.where(a.c.school_year.in_(list(years)))
    return by_group, by_year


# What the restorative-practices outcomes read (analytics.stats.rp_impact.outcome_panel): the ALL row and
# the groups of its risk ratios, with the counts behind the suspension rate and OSS days.
RP_GROUPS = ("ALL", "BL", "WH", "SWD")
RP_COUNTS = ("enrolled", "students_suspended", "students_oss", "oss_days")


def rp_outcome_rows_statement(school_ids: Sequence[str] | None = None) -> sa.Select:
    """The ALL, BL, WH and SWD rows, and the race rows of school-years without an ALL row (the panel sums
    them into one, DESIGN §2), with only the counts the RP outcomes use: a fifth of the table's cells."""
    d = schema.discipline
    has_all = _has_all_row(d)
    stmt = sa.select(d.c.school_id, d.c.school_year, d.c.student_group, *[d.c[c] for c in RP_COUNTS]).where(
        sa.or_(d.c.student_group.in_(list(RP_GROUPS)),
               sa.and_(d.c.student_group.in_(list(RACE_GROUPS)), sa.not_(has_all))))
    return stmt.where(d.c.school_id.in_(list(school_ids))) if school_ids is not None else stmt


# PostgreSQL's settings for the RP outcome rows: the planner prices the ALL-row test of every race row far above
# its hashed cost (6 M for 320,000 rows at 10,000 schools), and JIT-compiles the read: 1.5 s of its 2.6 s.
RP_ROWS_PLANNER = {"jit": "off"}


def rp_outcome_rows(engine: Engine, school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Discipline rows for :func:`analytics.stats.rp_impact.outcome_panel` (of `school_ids`, default every
    school): the same panel as from the whole table, which it reads only through these rows and counts."""
    df = _read(engine, rp_outcome_rows_statement(school_ids), RP_ROWS_PLANNER)
    if df.empty:
        df = pd.DataFrame(columns=["school_id", "school_year", "student_group", *RP_COUNTS])
    return loads._typed("discipline", df)


# The counts the discipline page pools by group (the suspension rate reads students_suspended itself here).
SCOPE_COUNTS = ("students_suspended", "students_iss", "students_oss", "students_expelled", "law_referrals")


def discipline_scope_statement(school_ids: Sequence[str] | None = None, by_cluster: bool = False) -> sa.Select:
    """Sums per year and group of some schools' discipline rows (default every school), ALL completed from
    race rows where missing (:func:`_discipline_all_rows`): what the discipline page pools, so no view holds
    the schools' rows.

    For each count c: ``c`` and ``c_enrolled`` summed over the rows where c is known (a pooled rate), and
    ``n_c`` those rows; ``enrolled`` and ``suspended`` over every row (shares of enrolment and of suspended
    students); ``s`` and ``s_enrolled`` over the rows whose suspension count (students suspended, else with
    OSS) and enrolment are known, ``n_s`` those rows; ``n_oss_days``; ``derived`` ALL rows summed from races
    and ``derived_unknown`` those whose suspension count is unknown.

    With ``by_cluster`` the rows are joined to their school's cluster and summed per cluster too (``cluster``
    first): every column is a sum or a count, so a cluster's rows are those of its schools' own statement.
    """
    d, a = schema.discipline, _discipline_all_rows()
    counts = [*SCOPE_COUNTS, "oss_days"]
    alls = sa.select(a.c.school_id, a.c.school_year, sa.literal("ALL").label("student_group"), a.c.enrolled,
                     *[a.c[c] for c in counts], a.c.derived)
    groups = sa.select(d.c.school_id, d.c.school_year, d.c.student_group, d.c.enrolled, *[d.c[c] for c in counts],
                       sa.literal(0).label("derived")).where(d.c.student_group != "ALL")
    if school_ids is not None:
        alls, groups = (q.where(q.selected_columns.school_id.in_(list(school_ids))) for q in (alls, groups))
    r = sa.union_all(alls, groups).subquery("scope_rows")
    susp = sa.func.coalesce(r.c.students_suspended, r.c.students_oss)
    known_s = sa.and_(susp.is_not(None), r.c.enrolled.is_not(None))
    sums = []
    for c in SCOPE_COUNTS:
        sums += [sa.func.sum(r.c[c]).label(c), sa.func.sum(sa.case((r.c[c].is_not(None), r.c.enrolled))).label(f"{c}_enrolled"),
                 sa.func.count(r.c[c]).label(f"n_{c}")]
    keys = [r.c.school_year, r.c.student_group]
    source: sa.FromClause = r
    if by_cluster:
        s = schema.schools
        keys, source = [s.c.cluster, *keys], r.join(s, s.c.school_id == r.c.school_id)
    return (sa.select(*keys, *sums, sa.func.count(r.c.oss_days).label("n_oss_days"),
                      sa.func.sum(r.c.enrolled).label("enrolled"), sa.func.sum(r.c.students_suspended).label("suspended"),
                      sa.func.sum(sa.case((known_s, susp))).label("s"),
                      sa.func.sum(sa.case((known_s, r.c.enrolled))).label("s_enrolled"),
                      sa.func.sum(sa.case((known_s, 1), else_=0)).label("n_s"),
                      sa.func.sum(r.c.derived).label("derived"),
                      sa.func.sum(sa.case((sa.and_(r.c.derived == 1, susp.is_(None)), 1), else_=0)).label("derived_unknown"))
            .select_from(source).group_by(*keys).order_by(*keys))


def discipline_scope_sums(engine: Engine, school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`discipline_scope_statement` read as numbers: a sum over no known value is 0, as pandas sums
    (rows per year and group: a few hundred, whatever the number of schools)."""
    return _scope_sums(engine, discipline_scope_statement(school_ids), ["school_year", "student_group"])


def discipline_cluster_sums(engine: Engine) -> pd.DataFrame:
    """:func:`discipline_scope_sums` of every cluster's schools in one grouped read (``cluster`` first, rows in
    cluster, year and group order): a cluster's rows, without the column, are those of its schools' own read."""
    return _scope_sums(engine, discipline_scope_statement(by_cluster=True), ["cluster", "school_year", "student_group"])


def _scope_sums(engine: Engine, stmt: sa.Select, keys: list[str]) -> pd.DataFrame:
    df = _read(engine, stmt)
    names = [c.name for c in stmt.selected_columns][len(keys):]
    if df.empty:
        df = pd.DataFrame(columns=[*keys, *names])
    df[names] = df[names].apply(lambda col: pd.to_numeric(col).astype("float64")).fillna(0.0)
    df = df.astype({"school_year": "int64"})
    return loads.in_byte_order(df, keys) if "cluster" in keys else df


def discipline_outcomes(engine: Engine) -> tuple[str, ...]:
    """The disproportionality outcomes with a known count anywhere in the discipline table: one ``EXISTS`` each,
    which stops at the first known count (counting them read every row: 0.13 s of the database's time at
    10,000 schools, in every district risks)."""
    d = schema.discipline
    outcomes = {"suspension": _outcome_count(d, "suspension"), **{o: d.c[c] for o, c in _OUTCOME_COLUMNS.items()}}
    with engine.connect() as conn:
        row = conn.execute(sa.select(*[sa.exists().where(col.is_not(None)).label(o)
                                       for o, col in outcomes.items()])).one()
    return tuple(o for o in outcomes if row._mapping[o])


# PostgreSQL's settings for the district risks' sums per year and group: the planner estimates the group rows
# joined to their ALL rows at 9,150 (461,000 for four years at 10,000 schools), so it sorts them, on disk, to group
# them; hashed into the few dozen groups in memory the statement took a fifth less time (0.86 s instead of 1.08,
# best of six). JIT compiling would cost more than the statement once sorting is priced out.
# Both this and the sums per year are read by one process: their test of each race row for its school-year's ALL
# row was shared with two parallel workers, which cost more CPU than they saved and, beside a view's other reads on
# a busy server, more time too (at 10,000 schools 0.55-0.6 s of the server's CPU instead of 0.68, and 0.11 instead
# of 0.19 for the sums per year).
SERIAL_PLANNER = {"max_parallel_workers_per_gather": "0"}
RISK_SUMS_PLANNER = {"enable_sort": "off", "work_mem": "64MB", "jit": "off", **SERIAL_PLANNER}


def district_risks(engine: Engine, years: Sequence[int] | None = None) -> disproportionality.DistrictRisks:
    """:func:`analytics.stats.disproportionality.district_risks` of the whole district, summed by the
    database: a few rows per year, group and outcome instead of every school's discipline rows (of
    ``years`` only, when given; the outcomes are the whole table's either way)."""
    outcomes = discipline_outcomes(engine)
    columns = ["school_year", "outcome", "student_group", "district_comparison_risk"]
    if not outcomes:
        return disproportionality.DistrictRisks(outcomes, pd.DataFrame(columns=columns))
    by_group, by_year = district_risks_statements(outcomes, years)
    removed, totals = _read(engine, by_group, RISK_SUMS_PLANNER), _read(engine, by_year, SERIAL_PLANNER)
    frames = []
    for outcome in outcomes:
        sums = removed[removed[f"n_{outcome}"].astype("int64") > 0]  # groups of schools with a known ALL
        sums = sums.merge(totals[["school_year", f"all_count_{outcome}", f"all_enrolled_{outcome}"]],
                          on="school_year", how="left")
        number = {k: pd.to_numeric(sums[f"{k}_{outcome}"]).astype("float64")
                  for k in ("out_count", "out_enrolled", "all_count", "all_enrolled")}
        count = number["all_count"] - number["out_count"]
        enrolled = number["all_enrolled"] - number["out_enrolled"]
        frames.append(pd.DataFrame({"school_year": sums["school_year"].astype("int64"), "outcome": outcome,
                                    "student_group": sums["student_group"],
                                    "district_comparison_risk": 100 * count / enrolled.where(enrolled > 0)}))
    return disproportionality.DistrictRisks(outcomes, pd.concat(frames, ignore_index=True)[columns])


def scope_disproportionality(engine: Engine, school_ids: Sequence[str] | None = None,
                             settings: Settings = DEFAULT_SETTINGS, years: Sequence[int] | None = None,
                             groups: pd.DataFrame | None = None) -> pd.DataFrame:
    """Disproportionality of some schools (every school when None): only their discipline rows are read,
    and the alternate ratio's district risks are summed by the database (:func:`district_risks` of `years`).

    ``years`` reads only those years: each year's ratios are its own, and a year's 3-year flag is right when
    the two years before it are read too (a year left out breaks a run, as a missing year does). ``groups``
    (``school_id, student_group``) computes only those groups of their schools: a group's ratios need its
    own rows and its school's ALL row alone (:func:`analytics.stats.disproportionality.disproportionality`)."""
    if groups is not None:
        school_ids = sorted(set(groups["school_id"]))
    if school_ids is None or not len(school_ids):  # every school (no alternate ratio), or none: no risks summed
        return disproportionality.disproportionality(loads.load_discipline(engine, school_ids=school_ids,
                                                                           years=years), settings, groups=groups)
    # The district's risks are summed by the database on a connection of their own while the rows are read
    # (2.4 s and 1.5 s for every school that can be flagged at 10,000 schools).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="risks") as reads:
        risks = reads.submit(district_risks, engine, years).result
        rows = loads.load_discipline(engine, school_ids=school_ids, years=years)
        return disproportionality.disproportionality(rows, settings, district=risks() if len(rows) else None,
                                                     groups=groups)


def flag_candidate_statement(year: int, settings: Settings = DEFAULT_SETTINGS,
                             school_ids: Sequence[str] | None = None) -> sa.Select:
    """SELECT school_id, student_group of the groups that can have a risk-ratio flag in `year`
    (:func:`flag_candidate_groups`)."""
    d = schema.discipline
    cell = settings.cell_size
    years = [year - back for back in range(settings.consecutive_years)]
    counts = [_outcome_count(d, "suspension"), *(d.c[c] for c in _OUTCOME_COLUMNS.values())]
    stmt = (sa.select(d.c.school_id, d.c.student_group)
            .where(d.c.school_year.in_(years), d.c.student_group != "ALL", d.c.enrolled >= settings.n_size,
                   sa.or_(*[c >= cell for c in counts]))
            .group_by(d.c.school_id, d.c.student_group)
            .having(sa.func.count(sa.distinct(d.c.school_year)) == len(years)))
    if school_ids is not None:
        stmt = stmt.where(d.c.school_id.in_(list(school_ids)))
    return stmt


def flag_candidate_groups(engine: Engine, year: int, settings: Settings = DEFAULT_SETTINGS,
                          school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """The groups (``school_id, student_group``, not ALL; of `school_ids`, default every school) that can have
    a risk-ratio flag in `year`: a flag needs a ratio in each of the ``settings.consecutive_years`` years up
    to `year`, and a ratio needs the group's row to have ``n_size`` students enrolled and an outcome count of
    ``cell_size`` (:func:`analytics.stats.disproportionality.disproportionality`). One grouped read; a group
    without such a row in every one of those years has no flag to compute."""
    with engine.connect() as conn:
        rows = conn.execute(flag_candidate_statement(year, settings, school_ids)).all()
    return pd.DataFrame(rows, columns=["school_id", "student_group"])


# The discipline columns a risk ratio reads (:func:`analytics.stats.disproportionality.disproportionality`).
RATIO_COLUMNS = ("enrolled", "students_suspended", *_OUTCOME_COLUMNS.values())


def flag_candidate_rows_statement(year: int, years: Sequence[int], settings: Settings = DEFAULT_SETTINGS,
                                  school_ids: Sequence[str] | None = None) -> sa.CompoundSelect:
    """The discipline rows of `years` that the ratios of `year`'s candidate groups read
    (:func:`flag_candidate_statement`, joined as a CTE): those groups' own rows and their schools' ALL rows,
    summed from race rows where a school-year has none (:func:`_discipline_all_rows`), in one read."""
    d, a = schema.discipline, _discipline_all_rows()
    candidates = flag_candidate_statement(year, settings, school_ids).cte("candidates")
    of_candidate = sa.and_(d.c.school_id == candidates.c.school_id, d.c.student_group == candidates.c.student_group)
    group_rows = (sa.select(d.c.school_id, d.c.school_year, d.c.student_group, *[d.c[c] for c in RATIO_COLUMNS])
                  .select_from(d.join(candidates, of_candidate)).where(d.c.school_year.in_(list(years))))
    all_rows = (sa.select(a.c.school_id, a.c.school_year, sa.literal("ALL").label("student_group"),
                          *[a.c[c] for c in RATIO_COLUMNS])
                .where(a.c.school_year.in_(list(years)), a.c.school_id.in_(sa.select(candidates.c.school_id))))
    return sa.union_all(group_rows, all_rows)


def flag_candidate_rows(engine: Engine, year: int, years: Sequence[int], settings: Settings = DEFAULT_SETTINGS,
                        school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`flag_candidate_rows_statement`'s rows as discipline rows (counts as float): every ALL row their
    ratios need is there, so :func:`analytics.stats.disproportionality.disproportionality` of them is the
    candidate groups' part of the whole table's (at 10,000 schools 0.08 M rows instead of every row of
    the candidates' schools, 0.19 M, and no list of schools or groups sent back to the database)."""
    # One process (:data:`SERIAL_PLANNER`): 0.37 s of the server's CPU for a district at 10,000 schools instead of 0.46.
    rows = _read(engine, flag_candidate_rows_statement(year, years, settings, school_ids), SERIAL_PLANNER)
    if rows.empty:
        rows = pd.DataFrame(columns=["school_id", "school_year", "student_group", *RATIO_COLUMNS])
    return loads._typed("discipline", rows)


def discipline_school_ids(engine: Engine, school_ids: Sequence[str] | None = None) -> list[str]:
    """The schools with discipline rows (of `school_ids`, default every school), sorted: one ``DISTINCT``."""
    d = schema.discipline
    stmt = sa.select(d.c.school_id).distinct()
    if school_ids is not None:
        stmt = stmt.where(d.c.school_id.in_(list(school_ids)))
    with engine.connect() as conn:
        return sorted(conn.execute(stmt).scalars())


def discipline_years(engine: Engine) -> list[int]:
    """The school years of the discipline table, sorted (:func:`analytics.data.loads.years_statement`: its
    partitions on PostgreSQL, a loose index scan of ``ix_discipline_year`` elsewhere, never every row)."""
    return loads.table_years(engine, "discipline")


def disproportionality_parts(engine: Engine, school_ids: Sequence[str] | None = None,
                             settings: Settings = DEFAULT_SETTINGS, district: disproportionality.DistrictRisks | None = None,
                             schools_per_part: int = 250,
                             years: Sequence[int] | None = None) -> Iterator[pd.DataFrame]:
    """:func:`analytics.stats.disproportionality.disproportionality_parts` of some schools (default: every
    school) with each part's discipline rows read from the database when it is computed, so neither the
    district's table nor its rows are ever held at once; the alternate ratio's district risks are summed
    by the database (:func:`district_risks`) unless given. ``years``: only their rows (as
    :func:`scope_disproportionality` reads them)."""
    ids = discipline_school_ids(engine, school_ids)
    if not ids:
        yield disproportionality.disproportionality(loads.load_discipline(engine, school_ids=[]), settings)
        return
    district = district if district is not None else district_risks(engine, years)
    parts = (loads.load_discipline(engine, school_ids=ids[start:start + schools_per_part], years=years)
             for start in range(0, len(ids), schools_per_part))
    yield from disproportionality.disproportionality_of_parts(parts, district, settings)


def discipline_part_statement(school_ids: Sequence[str]) -> sa.Select:
    """The read of one part's discipline rows (:func:`disproportionality_parts`), for ``EXPLAIN``."""
    return loads._filtered(schema.discipline, school_id=list(school_ids))


def monthly_incidents_statement(actions: Sequence[str] | None = None,
                                school_ids: Sequence[str] | None = None, *, by_school: bool = False,
                                by_cluster: bool = False) -> sa.Select:
    """SELECT [school or cluster,] year, month, incidents ... GROUP BY [the school or its cluster and] the
    incident date's calendar month (``EXTRACT``, which SQLAlchemy renders as ``strftime`` on SQLite);
    filtered on the school first (``ix_incidents_school_date``)."""
    i, s = schema.incidents, schema.schools
    year, month = sa.extract("year", i.c.incident_date), sa.extract("month", i.c.incident_date)
    keys = [i.c.school_id] if by_school else [s.c.cluster] if by_cluster else []
    # Cast to integers (PostgreSQL's EXTRACT is numeric and COUNT bigint), so a district's counts are read as CSV.
    stmt = sa.select(*keys, *[sa.cast(x, sa.Integer).label(name) for x, name in ((year, "year"), (month, "month"),
                                                                                 (sa.func.count(), "incidents"))])
    if by_cluster:
        stmt = stmt.select_from(i.join(s, s.c.school_id == i.c.school_id))
    if actions is not None:
        stmt = stmt.where(i.c.action.in_(list(actions)))
    if school_ids is not None:
        stmt = stmt.where(i.c.school_id.in_(list(school_ids)))
    return stmt.group_by(*keys, year, month)


# PostgreSQL's settings for the incidents counted per month: with its default 4 MB of memory the planner sorts a
# district's 0.64 M suspensions (10,000 schools) on disk by school and month, in three processes (1.1 s); hashed
# into their 0.14 M school-months in memory, in one process, they take 0.65 s and a third of the CPU time.
MONTH_COUNTS_PLANNER = {"work_mem": "64MB"}


def monthly_incident_counts(engine: Engine, *, actions: Sequence[str] | None = None,
                            school_ids: Sequence[str] | None = None, by_school: bool = False,
                            by_cluster: bool = False) -> pd.Series:
    """Incidents per calendar month (a monthly ``PeriodIndex``; with ``by_school`` or ``by_cluster``, per
    school or cluster and month: levels ``school_id`` or ``cluster``, and ``month``), counted by the
    database: the counts :func:`analytics.stats.run_charts.monthly_incident_series` takes from the loaded
    incident rows, without sending every incident to pandas (a district has hundreds of thousands). A
    cluster's counts are those of its schools' own read: one grouped read serves every cluster."""
    df = _read(engine, monthly_incidents_statement(actions, school_ids, by_school=by_school, by_cluster=by_cluster),
               MONTH_COUNTS_PLANNER)
    months = pd.PeriodIndex.from_fields(year=pd.to_numeric(df["year"]).astype("int64").to_numpy(),
                                        month=pd.to_numeric(df["month"]).astype("int64").to_numpy(), freq="M")
    counts = pd.to_numeric(df["incidents"]).astype("int64").to_numpy()
    if by_school or by_cluster:
        key = "school_id" if by_school else "cluster"
        index = pd.MultiIndex.from_arrays([df[key].astype(object).to_numpy(), months], names=[key, "month"])
        return pd.Series(counts, index=index, name="count")
    return pd.Series(counts, index=months, name="count")


STATUS_KEYS = ["school_id", "metric", "student_group"]
# A colour as one character of the grid strings below: its rank (Blue 0 ... Red 4), "x" for no colour.
_RANKS = {"Blue": "0", "Green": "1", "Yellow": "2", "Orange": "3", "Red": "4", "": "x"}
RANK_COLORS = {rank: name for name, rank in _RANKS.items() if name}


def status_rows_parts(colour_years: Sequence[int], metrics: Sequence[str], *,
                      school_ids: Sequence[str] | None = None, min_n: int = DEFAULT_SETTINGS.status_min_n,
                      derived_suspension: bool = False,
                      keep: Callable[[sa.ColumnElement, sa.ColumnElement], sa.ColumnElement] | None = None,
                      changed_only: bool = False) -> list[sa.Select]:
    """Statements whose rows, together, are one row per school x metric x group with its value in each colour
    year and the year before it (``value_<year>``) and its denominator in each colour year
    (``denominator_<year>``), for the keys with at least ``min_n`` students in every colour year: the only rows
    :func:`analytics.stats.status_change.status_change` can colour in all of them.

    The value is :func:`analytics.stats.rates.add_rate_columns`'s: 100 x numerator / denominator in
    double precision when both counts are known and the denominator is positive, else the value given.
    The metrics rows of those years are joined year beside year on their key (:func:`_side_by_side`);
    ``derived_suspension`` adds the suspension rate from discipline counts as
    :func:`analytics.data.derived.suspension_metric_rows` makes it (students suspended, else with OSS, over
    enrolled; a missing ALL summed from races), turned into columns by ``MAX(CASE ...)`` (:func:`_by_key`).
    ``keep(value, metric)``: a condition on the latest colour year's imported rows, tested before any join.
    ``changed_only``: leave out the keys with no value the year before a colour year (no change, so no colour;
    of the metrics table, those with no row that year).
    """
    years = sorted({y for c in colour_years for y in (c - 1, c)})
    wide = [_side_by_side(years, colour_years, metrics, school_ids, min_n, keep, changed_only)]
    if derived_suspension:
        d, a = schema.discipline, _discipline_all_rows()
        no_value = sa.cast(sa.null(), sa.Float).label("value")
        own = sa.select(d.c.school_id, d.c.school_year, sa.literal("suspension_rate").label("metric"),
                        d.c.student_group, _outcome_count(d, "suspension").label("numerator"),
                        d.c.enrolled.label("denominator"), no_value).where(d.c.school_year.in_(years))
        summed = sa.select(a.c.school_id, a.c.school_year, sa.literal("suspension_rate").label("metric"),
                           sa.literal("ALL").label("student_group"), _outcome_count(a, "suspension").label("numerator"),
                           a.c.enrolled.label("denominator"), no_value).where(a.c.derived == 1,
                                                                                a.c.school_year.in_(years))
        if school_ids is not None:
            own = own.where(d.c.school_id.in_(list(school_ids)))
            summed = summed.where(a.c.school_id.in_(list(school_ids)))
        wide.append(_by_key(sa.union_all(own, summed).subquery("status_rows_1"), years, colour_years, min_n,
                            changed_only))
    return wide


def _rate(rows: sa.FromClause) -> sa.ColumnElement:
    """:func:`analytics.stats.rates.add_rate_columns`'s value of a row, in double precision."""
    counted = sa.and_(rows.c.numerator.is_not(None), rows.c.denominator > 0)
    return sa.case((counted, sa.cast(rows.c.numerator, sa.Float) * sa.literal(100.0, sa.Float)
                    / sa.cast(rows.c.denominator, sa.Float)), else_=rows.c.value)


def _side_by_side(years: list[int], colour_years: Sequence[int], metrics: Sequence[str],
                  school_ids: Sequence[str] | None, min_n: int,
                  keep: Callable[[sa.ColumnElement, sa.ColumnElement], sa.ColumnElement] | None = None,
                  changed_only: bool = False) -> sa.Select:
    """:func:`status_rows_parts` of the imported metrics rows: a key has one row a year (the table's unique
    key), so its years are joined side by side on it, from the latest colour year's rows (each on its year's
    partition on PostgreSQL): the colour years' rows with ``min_n`` students inner, the years before them
    outer (inner when ``changed_only``: the planner may then hash the fewer rows of the two). No sort or
    grouping of every row of those years (what :func:`_by_key` does)."""
    m = schema.metrics
    at = {y: m.alias(f"status_{y}") for y in years}
    base = at[max(colour_years)]
    joined, where = base, [base.c.school_year == max(colour_years), base.c.metric.in_(list(metrics)),
                           base.c.denominator >= min_n]
    if school_ids is not None:
        where.append(base.c.school_id.in_(list(school_ids)))
    if keep is not None:
        where.append(keep(_rate(base), base.c.metric))
    for year, rows in at.items():
        if rows is base:
            continue
        on = sa.and_(*[rows.c[k] == base.c[k] for k in STATUS_KEYS], rows.c.school_year == year,
                     rows.c.metric.in_(list(metrics)))
        if year in colour_years:
            joined, where = joined.join(rows, on), [*where, rows.c.denominator >= min_n]
        else:
            joined = joined.join(rows, on) if changed_only else joined.outerjoin(rows, on)
    columns = [_rate(at[y]).label(f"value_{y}") for y in years]
    columns += [at[y].c.denominator.label(f"denominator_{y}") for y in colour_years]
    return sa.select(*[base.c[k] for k in STATUS_KEYS], *columns).select_from(joined).where(*where)


def _by_key(rows: sa.Subquery, years: list[int], colour_years: Sequence[int], min_n: int,
            changed_only: bool = False) -> sa.Select:
    """:func:`status_rows_parts` of rows from a subquery (the suspension rate derived from discipline rows,
    some summed): one ``MAX(CASE ...)`` per year and column over each key's rows, grouped."""
    value = _rate(rows)

    def in_year(column: sa.ColumnElement, year: int) -> sa.ColumnElement:
        return sa.func.max(sa.case((rows.c.school_year == year, column)))

    keys = [rows.c[k] for k in STATUS_KEYS]
    columns = [in_year(value, y).label(f"value_{y}") for y in years]
    columns += [in_year(rows.c.denominator, y).label(f"denominator_{y}") for y in colour_years]
    having = [in_year(rows.c.denominator, y) >= min_n for y in colour_years]
    if changed_only:
        having += [in_year(value, y).is_not(None) for y in years if y not in colour_years]
    return sa.select(*keys, *columns).group_by(*keys).having(sa.and_(*having))


def _float(x: float) -> sa.ColumnElement:
    return sa.literal(x, sa.Float)


class _BoundsBelow(sa.sql.expression.ColumnElement):
    """How many of ascending ``bounds`` a value is above (NULL for NULL): on PostgreSQL the value's
    ``width_bucket`` among the doubles just above the bounds, which names the value once; elsewhere a ``CASE``
    that names it at each bound. PostgreSQL computes a rate at each place it is written, so the ``CASE`` of a
    status and a change level computed each cell's rates 13 times (a tenth of the worsened colours' time)."""

    inherit_cache = True
    _traverse_internals = [("value", InternalTraversal.dp_clauseelement),
                           ("bounds", InternalTraversal.dp_plain_obj)]
    type = sa.Integer()

    def __init__(self, value: sa.ColumnElement, bounds: Sequence[float]):
        self.value, self.bounds = value, tuple(float(b) for b in bounds)


@compiles(_BoundsBelow)
def _levels_below_case(element: _BoundsBelow, compiler, **kw) -> str:
    value, bounds = element.value, element.bounds
    case = sa.case(*[(value <= _float(b), i) for i, b in enumerate(bounds)], (value.is_not(None), len(bounds)))
    return compiler.process(case, **kw)


@compiles(_BoundsBelow, "postgresql")
def _levels_below_bucket(element: _BoundsBelow, compiler, **kw) -> str:
    above = [_float(math.nextafter(b, math.inf)) for b in element.bounds]  # v > b is v >= the next double
    return compiler.process(sa.func.width_bucket(element.value, postgresql.array(above)), **kw)


def _level_index(value: sa.ColumnElement, previous: sa.ColumnElement, cuts) -> tuple[sa.ColumnElement,
                                                                                      sa.ColumnElement]:
    """Status and change levels (0-4, NULL when missing) that :func:`analytics.stats.status_change.status_change`
    gives after rounding, from the raw value and change compared with the largest doubles that round to each
    cut point or below (:func:`analytics.stats.status_change.largest_rounding_to`): no rounding in SQL. A level
    is the number of those bounds the value or change is above (:class:`_BoundsBelow`)."""
    from analytics.stats.status_change import largest_rounding_to as at_most

    c0, c1, c2, c3 = cuts.change
    status, change = [at_most(b) for b in cuts.status], [at_most(c0), at_most(c1), at_most(c2, strict=True), at_most(c3)]
    if status == sorted(status) and change == sorted(change):
        return _BoundsBelow(value, status), _BoundsBelow(value - previous, change)
    # Cut points out of order: the grid's first bound from the bottom (status) or the top (change) that holds.
    moved = value - previous
    s = sa.case(*[(value <= _float(b), i) for i, b in enumerate(status)], (value.is_not(None), 4))
    c = sa.case(*[(moved > _float(b), 4 - i) for i, b in enumerate(change[::-1])], (moved.is_not(None), 0))
    return s, c


def status_rank_sql(value: sa.ColumnElement, previous: sa.ColumnElement, metric: sa.ColumnElement,
                    level: sa.ColumnElement, higher_is_better: dict[str, bool],
                    settings: Settings = DEFAULT_SETTINGS) -> sa.ColumnElement:
    """The colour rank (one character of :data:`RANK_COLORS`, "x" for no colour) that
    :func:`analytics.stats.status_change.status_change` gives a value, last year's value, a metric and a
    school level: the levels by the (metric, level) cut points (:meth:`Settings.cuts_for`), then the cell of
    the grid (:func:`analytics.stats.status_change.grid_color`) picked from a 25-character string.
    The group-size rule is the caller's; metrics without cut points get NULL."""
    from analytics.stats.status_change import CHANGE_LEVELS, STATUS_LEVELS, grid_color

    grid = {way: "".join(_RANKS[grid_color(s, c, way)] for s in STATUS_LEVELS for c in CHANGE_LEVELS)
            for way in (False, True)}
    branches = []
    for name in sorted({m for m, _ in settings.status_cuts}):
        levels = sorted({lv for m, lv in settings.status_cuts if m == name and lv != "ES"})
        ways = grid[higher_is_better.get(name, True)]
        for lv, cuts in [*((lv, settings.cuts_for(name, lv)) for lv in levels), (None, settings.cuts_for(name, "ES"))]:
            if cuts is None:
                continue
            s, c = _level_index(value, previous, cuts)
            at = metric == name if lv is None else sa.and_(metric == name, level == lv)
            branches.append((at, sa.func.coalesce(sa.func.substr(sa.literal(ways), s * 5 + c + 1, 1), "x")))
    return sa.case(*branches, else_=sa.null())


def may_be_orange_or_red_sql(value: sa.ColumnElement, metric: sa.ColumnElement, higher_is_better: dict[str, bool],
                             settings: Settings = DEFAULT_SETTINGS) -> sa.ColumnElement:
    """Whether a value's status level lets some change make it Orange or Red at some school level of its metric
    (:func:`status_rank_sql`'s cut points): a test of one or two comparisons a metric, true of every cell that
    rank gives Orange or Red, so a year's rows that can never be are left out before the years are joined
    (about half of them; the grid's ``CASE`` then colours the others)."""
    from analytics.stats.status_change import CHANGE_LEVELS, STATUS_LEVELS, grid_color
    from analytics.stats.status_change import largest_rounding_to as at_most

    branches = []
    for name in sorted({m for m, _ in settings.status_cuts}):
        way = higher_is_better.get(name, True)
        bad = [i for i, st in enumerate(STATUS_LEVELS) if any(grid_color(st, c, way) in ("Orange", "Red")
                                                                for c in CHANGE_LEVELS)]
        if not bad:
            continue
        low, high = min(bad), max(bad)
        if bad != list(range(low, high + 1)):  # not one run of levels: no test narrower than "has a value"
            branches.append(sa.and_(metric == name, value.is_not(None)))
            continue
        levels = {lv for m, lv in settings.status_cuts if m == name} | {"ES"}
        for cuts in {settings.cuts_for(name, lv) for lv in levels} - {None}:
            test = [value.is_not(None)]
            if low > 0:
                test.append(value > _float(at_most(cuts.status[low - 1])))
            if high < len(STATUS_LEVELS) - 1:
                test.append(value <= _float(at_most(cuts.status[high])))
            branches.append(sa.and_(metric == name, *test))
    return sa.or_(*branches) if branches else sa.false()


def worsened_statement(then_year: int, now_year: int, higher_is_better: dict[str, bool], *,
                       school_ids: Sequence[str] | None = None, settings: Settings = DEFAULT_SETTINGS,
                       derived_suspension: bool = False) -> sa.Select | sa.CompoundSelect:
    """:func:`worsened_statements` as one statement (their ``UNION ALL``), for ``EXPLAIN``."""
    parts = worsened_statements(then_year, now_year, higher_is_better, school_ids=school_ids, settings=settings,
                                derived_suspension=derived_suspension)
    return sa.union_all(*parts) if len(parts) > 1 else parts[0]


def worsened_statements(then_year: int, now_year: int, higher_is_better: dict[str, bool], *,
                        school_ids: Sequence[str] | None = None, settings: Settings = DEFAULT_SETTINGS,
                        derived_suspension: bool = False) -> list[sa.Select]:
    """Statements whose rows, together, are the school x metric x group cells whose colour is Orange or Red in
    ``now_year`` and a better colour in ``then_year`` (``school_id, metric, student_group, ranks``: the two
    colour ranks, now's and then's), one statement per part of :func:`status_rows_parts` (cells with
    ``settings.status_min_n`` students in both years, with their values of both years and the years before
    them), coloured in the database (:func:`status_rank_sql`): only the cells that worsened leave it. A
    school's level (``ES`` when unknown) picks the cut points.

    The grid's ``CASE`` over every metric is the costliest expression of the statement, so each part's rows are
    coloured where they are made (not after their union), each rank once a row (:func:`_fenced`: PostgreSQL
    computes an expression at each place it is written), and the two ranks are compared as one two-character
    code with the seven pairs that worsen. Now's rank alone is tested first: then's is computed for the cells
    Orange or Red now (about half of those joined)."""
    coloured = sorted({m for m, _ in settings.status_cuts})
    parts = status_rows_parts([then_year, now_year], coloured, school_ids=school_ids, min_n=settings.status_min_n,
                              derived_suspension=derived_suspension, changed_only=True,
                              keep=lambda value, metric: may_be_orange_or_red_sql(value, metric, higher_is_better,
                                                                                  settings))
    s = schema.schools
    level = sa.func.coalesce(s.c.level, "ES")
    worse = [f"{now}{then}" for now in "34" for then in "0123" if then < now]

    def worsened(part: sa.Select, name: str) -> sa.Select:
        wide = _fenced(part, name)  # each rate computed once a row, not at each place the ranks name it

        def rank(rows: sa.FromClause, year: int) -> sa.ColumnElement:
            return status_rank_sql(rows.c[f"value_{year}"], rows.c[f"value_{year - 1}"], rows.c.metric, rows.c.level,
                                   higher_is_better, settings)

        levelled = (sa.select(*wide.c, level.label("level"))
                    .select_from(wide.outerjoin(s, s.c.school_id == wide.c.school_id)).subquery(f"{name}_levelled"))
        now = _fenced(sa.select(*levelled.c, rank(levelled, now_year).label("now")), f"{name}_now")
        ranks = _fenced(sa.select(*[now.c[k] for k in STATUS_KEYS], now.c.now.concat(rank(now, then_year))
                                  .label("ranks")).where(now.c.now.in_(["3", "4"])), f"{name}_ranks")
        return sa.select(*ranks.c).where(ranks.c.ranks.in_(worse))

    return [worsened(part, f"wide_{i}") for i, part in enumerate(parts)]


def _fenced(stmt: sa.Select, name: str) -> sa.Subquery:
    """``stmt`` as a subquery whose columns are computed once a row: ``OFFSET 0`` keeps PostgreSQL from merging
    it into the statement around it, which would write each of its expressions again at every place that names
    the column (a colour rank tested, concatenated and returned was computed three times)."""
    return stmt.offset(0).subquery(name)


# PostgreSQL's settings for a district's worsened colours: the planner joins the years' 773,000 rows each (10,000
# schools) by memoized index lookups, which it prices below hashing, though the estimates are close (568,000 rows)
# and extended statistics on the key change nothing; each year's rows hashed in memory took a quarter of the time.
# Merged in the key's order as each year's key holds them (index-only scans, `schema.POSTGRESQL_KEY_INCLUDE`), a
# district's statement takes 1.4 s of the server's CPU instead of 2.4 hashed; the planner prices the merge above
# the hash, and with no sort the merge of ordered scans is the plan left. Parallel workers hashed the years again,
# for CPU time the view's other reads wait for on a busy server (both parts: 3.35 s of it, 1.95 s merged serially).
# JIT compiling the grid's CASE cost more than it saved. A cluster's few schools keep the lookups.
YEAR_JOIN_PLANNER = {"enable_nestloop": "off", "enable_sort": "off", "max_parallel_workers_per_gather": "0",
                     "work_mem": "64MB", "jit": "off"}


def worsened_colours(engine: Engine, then_year: int, now_year: int, higher_is_better: dict[str, bool], *,
                     school_ids: Sequence[str] | None = None, settings: Settings = DEFAULT_SETTINGS) -> pd.DataFrame:
    """The cells of :func:`worsened_statements` (``school_id, metric, student_group, color, color_then``,
    colour names), the derived suspension rate included when none was imported for these years and schools
    (as :func:`analytics.outputs.views._metric_rows` decides): a district's worsened colours without sending
    its status rows to pandas. The parts are read at once, each on its own connection."""
    years = sorted({then_year - 1, then_year, now_year - 1, now_year})
    derived = suspension_derived(engine, years=years, school_ids=school_ids)
    parts = worsened_statements(then_year, now_year, higher_is_better, school_ids=school_ids, settings=settings,
                                derived_suspension=derived)
    planner = YEAR_JOIN_PLANNER if school_ids is None else None
    with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="colours") as reads:  # PostgreSQL would
        found = list(reads.map(lambda part: _read(engine, part, planner), parts))  # run a union's parts in turn
    rows = pd.concat(found, ignore_index=True) if len(found) > 1 else found[0]
    if rows.empty:
        return pd.DataFrame(columns=[*STATUS_KEYS, "color", "color_then"])
    return rows[STATUS_KEYS].assign(color=rows["ranks"].str[0].map(RANK_COLORS),
                                    color_then=rows["ranks"].str[1].map(RANK_COLORS))
