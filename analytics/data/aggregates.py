"""Aggregates computed in the database: pooled counts per metric x group x year (DESIGN §8).

The district and cluster rows of the rates view need only sums, so the database adds them up with
``GROUP BY`` (SQLAlchemy Core, the same statement on SQLite and PostgreSQL) instead of sending every
metric row to pandas. The sums mirror :func:`analytics.stats.rates.pool_counts` exactly: a row enters
the pool when it has both counts and a positive denominator; the others are counted as left out.
The grouping columns lead the indexes ``ix_metrics_year_metric`` and ``ix_metrics_metric_group_year`` (schema) on
SQLite, which the plans use; on PostgreSQL a year is a partition of its own, read whole or by its
``ix_metrics_metric_group_year`` index.

The discipline and incidents tables' sums are in :mod:`analytics.data.aggregates_discipline`, the status
colours in :mod:`analytics.data.aggregates_status`; :func:`explain` shows the plan of any of their statements.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from analytics.data import loads, schema
from analytics.data.aggregates_discipline import discipline_groups
from analytics.data.catalog import RACE_GROUPS
from analytics.data.derived import metrics_with_suspension, suspension_metric_rows
from analytics.data.loads import _read
from analytics.stats import gaps
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
