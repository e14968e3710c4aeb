"""Metric rows, slices and sums: a cluster's rows, the district's tables and figures of a metric, a year's rows
and the growth gaps (cached per import version, :mod:`pages.ui.data_versions`)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from analytics.data import aggregates, loads
from analytics.data.derived import metrics_with_suspension
from analytics.stats.gaps import gap_table, label_gaps, pooled_gap_trend_from_sums
from analytics.stats.rates import add_rate_columns
from analytics.stats.small_numbers import rank_schools
from analytics.stats.status_change import status_change
from analytics.stats.summaries import cluster_table_from_counts, data_limits, school_values, summary_kpi_from_counts
from pages.ui.caching import _made, ahead
from pages.ui.catalog_loaders import _directions, _metric_labels, _one_cluster_members, _schools, _years
from pages.ui.compact import ClusterParts
from pages.ui.data_versions import _imported, _then_release, engine, import_version


@st.cache_resource(show_spinner=False, max_entries=4)
@_imported
def _metric_rows(version: int, metric: str, years: tuple[int, ...] | None, school_ids: tuple[str, ...] | None):
    return aggregates.metric_rows(engine(), metric, list(years) if years else None,
                                  list(school_ids) if school_ids else None)


def metric_rows(metric: str, years: Sequence[int] | None = None, school_ids: Sequence[str] | None = None):
    """Metric rows (every group) for the given years and schools; suspension rate derived if needed."""
    return _metric_rows(import_version(), metric, tuple(years) if years else None,
                        tuple(school_ids) if school_ids else None)


@st.cache_data(show_spinner=False, max_entries=32)
@_imported
def _metric_slice(version: int, metric: str, group: str, school_ids: tuple[str, ...] | None) -> pd.DataFrame:
    return aggregates.metric_slice(engine(), metric, group, list(school_ids) if school_ids else None)


def metric_slice(metric: str, group: str, school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """One metric's rows for one student group, every year (of the given schools, default every school):
    the same rows as ``metric_rows(metric)`` filtered on the group, read from the database alone."""
    return _metric_slice(import_version(), metric, group, tuple(school_ids) if school_ids else None)


@st.cache_data(show_spinner=False, max_entries=64)
@_imported
def _metric_counts(version: int, metric: str, group: str, keys: tuple[str, ...], years: tuple[int, ...] | None,
                   school_ids: tuple[str, ...] | None) -> pd.DataFrame:
    return aggregates.group_counts(engine(), metric, group, keys, years=list(years) if years else None,
                                   school_ids=list(school_ids) if school_ids else None)


def metric_counts(metric: str, group: str, keys: Sequence[str], years: Sequence[int] | None = None,
                  school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Pooled sums and basis votes of one metric and group per `keys` (e.g. ``["school_year"]`` or
    ``["cluster"]``), summed by the database (:func:`analytics.data.aggregates.group_counts`)."""
    return _metric_counts(import_version(), metric, group, tuple(keys), tuple(years) if years else None,
                          tuple(school_ids) if school_ids else None)


@st.cache_data(show_spinner=False, max_entries=32)
@_imported
def _district_all_counts(version: int, metric: str) -> pd.DataFrame:
    return aggregates.district_all_counts(engine(), metric)


def district_all_counts(metric: str) -> pd.DataFrame:
    """The gaps' ``district_all`` reference of a metric (ALL counts per year), summed by the database."""
    return _district_all_counts(import_version(), metric)


def _in_school_order(rows: pd.DataFrame) -> pd.DataFrame:
    """A metric slice's rows by school and year (one row each): the same order whether they were read for
    a few schools or split off the district's, which the database gives in no set order."""
    return rows.sort_values(["school_id", "school_year"], kind="stable", ignore_index=True)


@st.cache_resource(show_spinner=False, max_entries=16)
@_then_release
def _cluster_slices(version: int, metric: str, group: str) -> ClusterParts:
    schools, rows = _schools(version), _in_school_order(_metric_slice(version, metric, group, None))
    cluster = rows["school_id"].map(dict(zip(schools["school_id"], schools["cluster"], strict=True)))
    # One sum over the district by cluster and year, split: counts are whole numbers, so each cluster's sums
    # are those of its own rows (`counts_from_rows` of them), in the same columns and types.
    counts = aggregates.counts_from_rows(rows.assign(cluster=cluster), ["cluster", "school_year"])
    sums = {name: part.drop(columns="cluster").reset_index(drop=True)
            for name, part in counts.groupby("cluster", sort=False)}
    made = ClusterParts({name: (part.reset_index(drop=True), sums[name])
                         for name, part in rows.groupby(cluster, sort=False)})
    _made().add(("slices", version, metric, group))
    return made


@st.cache_resource(show_spinner=False, max_entries=64)
@_imported
def _one_cluster_slice(version: int, metric: str, group: str, cluster: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One cluster's rows and sums read for its own schools alone, the suspension rate derived or not as the
    district's rows decide (:func:`analytics.data.aggregates.metric_slice`): its part of :func:`_cluster_slices`."""
    ids = _one_cluster_members(version, cluster)["school_id"].tolist()
    derived = _suspension_derived_anywhere(version) if metric == "suspension_rate" else None
    rows = _in_school_order(aggregates.metric_slice(engine(), metric, group, ids, derived=derived))
    return rows, aggregates.counts_from_rows(rows, ["school_year"])


@st.cache_data(show_spinner=False, max_entries=4)
@_imported
def _suspension_derived_anywhere(version: int) -> bool:
    return aggregates.suspension_derived(engine())


def cluster_slice(metric: str, group: str, cluster: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One cluster's rows of a metric and group (every year; the rows of ``metric_slice`` whose school is in
    the cluster, by school and year) and their sums per ``school_year`` (``counts_from_rows``): split once per
    data version from the district's rows by the preparer, so a cluster's first view only looks them up
    (read-only, shared). Until then, the cluster's own rows are read (the same rows and sums: at 10,000
    schools splitting every cluster's took four seconds of a cluster's first view)."""
    version = import_version()
    if ("slices", version, metric, group) not in _made():
        return _one_cluster_slice(version, metric, group, cluster)
    found = _cluster_slices(version, metric, group).get(cluster)
    if found is None:  # no rows of this metric and group in the cluster
        rows = _metric_slice(version, metric, group, None).iloc[0:0]
        return rows, aggregates.counts_from_rows(rows, ["school_year"])
    return found


@_imported
def _metric_slice_of_years(version: int, metric: str, group: str, years: tuple[int, ...]) -> pd.DataFrame:
    return aggregates.metric_slice(engine(), metric, group, years=list(years))


@st.cache_resource(show_spinner=False, max_entries=16)
@_then_release
def _district_tables(version: int, metric: str, year: int, group: str):
    # Only the year and the one before it are read (the KPI's change; every other figure is the year's): a first
    # view at 10,000 schools x 8 years reads 2 years' rows and sums (0.35 s and 0.1 s instead of 1.2 s and 0.7 s
    # on PostgreSQL).
    earlier = [y for y in _years(version) if y < year]
    wanted = (*earlier[-1:], year)
    schools = _schools(version)
    rows = _metric_slice_of_years(version, metric, group, wanted)
    higher = _directions(version).get(metric, True)
    by_school = school_values(rows, schools, year, group)
    ranked, _ = rank_schools(by_school, higher)
    kpi = summary_kpi_from_counts(_metric_counts(version, metric, group, ("school_year",), wanted, None), rows, year,
                                  group, _years(version))
    clusters = cluster_table_from_counts(_metric_counts(version, metric, group, ("cluster",), (year,), None), rows,
                                         schools, year, group)
    return kpi, by_school, clusters, ranked


def district_tables(metric: str, year: int, group: str):
    """The district's view of one metric, year and group: its KPI (pooled from counts, or the median of school
    values), every school's value, every cluster's and the schools ranked by their empirical-Bayes adjusted
    rate (read-only, shared). The overview draws them and every cluster page compares with them, so they
    are made once per data version and view (the preparer makes the opening metrics' ahead)."""
    return _district_tables(import_version(), metric, int(year), group)


@st.cache_data(show_spinner=False, max_entries=8)
@_imported
def _district_figures(version: int, year: int) -> pd.DataFrame:
    return aggregates.district_figures(engine(), year)


def district_figures(year: int) -> pd.DataFrame:
    """The district figure of every metric x group for a year (pooled, or the median of school values):
    :func:`analytics.stats.summaries.district_values` of every row of the year, from the database's sums."""
    return _district_figures(import_version(), year)


@st.cache_data(show_spinner=False, max_entries=16)
@_imported
def _gap_trend_sums(version: int, metric: str, school_ids: tuple[str, ...] | None) -> pd.DataFrame:
    return aggregates.gap_trend_sums(engine(), metric, list(school_ids) if school_ids is not None else None)


def _gap_scope(version: int, level: str, cluster: str) -> tuple[tuple[str, ...], bool]:
    """The schools of `level` and `cluster`, and whether they are the whole district."""
    schools = _schools(version)
    scope = schools if level == "all" else schools[schools["level"] == level]
    scope = scope if cluster == "all" else scope[scope["cluster"] == cluster]
    return tuple(scope["school_id"]), len(scope) == len(schools)


@st.cache_resource(show_spinner=False, max_entries=8)
@_imported
def _gap_year_views(version: int, metric: str, year: int, reference: str, level: str, cluster: str):
    higher = _directions(version)
    in_scope = _gap_rows(version, metric, year, level, cluster)
    # Every other reference is within a school; the district's ALL is summed in the database.
    district_all = _district_all_counts(version, metric) if reference == "district_all" else None
    gaps = label_gaps(gap_table(in_scope, reference, higher, reference_year=year, label=False,
                                district_all=district_all, years=(year,)), higher)
    label = _metric_labels(version).get(metric, metric)
    return gaps, _gap_grid(version, metric, year, level, cluster), data_limits(in_scope, year, label.lower())


def _gap_rows(version: int, metric: str, year: int, level: str, cluster: str) -> pd.DataFrame:
    """The scope's rows of a metric, every group, in the view's year and the one before (gaps, their change,
    status and change, data limits); the district's rows are cached once for every view."""
    school_ids, whole = _gap_scope(version, level, cluster)
    in_scope = _metric_rows(version, metric, (year - 1, year), None if whole else school_ids)
    return in_scope[in_scope["school_id"].isin(school_ids)]


@st.cache_resource(show_spinner=False, max_entries=8)
@_imported
def _gap_grid(version: int, metric: str, year: int, level: str, cluster: str) -> pd.DataFrame:
    schools = _schools(version)
    higher = _directions(version)
    in_scope = _gap_rows(version, metric, year, level, cluster)
    current = add_rate_columns(in_scope[in_scope["school_year"] == year]) if len(in_scope) else in_scope
    previous = in_scope[in_scope["school_year"] == year - 1]
    return status_change(current, previous, dict(zip(schools["school_id"], schools["level"], strict=True)), higher)


def gap_grid(metric: str, year: int, level: str = "all", cluster: str = "all") -> pd.DataFrame:
    """The status-and-change rows of the schools of `level` and `cluster` (the grid of :func:`gap_year_views`,
    whatever the reference): a page draws the grid before the year's gaps are labelled (read-only, shared)."""
    return _gap_grid(import_version(), metric, int(year), level, cluster)


@st.cache_resource(show_spinner=False, max_entries=8)
@_imported
def _gap_trend(version: int, metric: str, level: str, cluster: str) -> pd.DataFrame:
    school_ids, whole = _gap_scope(version, level, cluster)
    return pooled_gap_trend_from_sums(_gap_trend_sums(version, metric, None if whole else school_ids))


def gap_year_views(metric: str, year: int, reference: str, level: str = "all", cluster: str = "all"):
    """Labelled gaps for the year (one BH family), status-and-change rows and data limits of the schools of
    `level` and `cluster`: what the view's year and the one before give, so a page draws them before the trend
    over every year (:func:`gap_trend`) is summed (read-only, shared: the page derives new frames from them,
    never changes them). The preparer computes the page's opening view ahead."""
    return _gap_year_views(import_version(), metric, int(year), reference, level, cluster)


def gap_trend(metric: str, level: str = "all", cluster: str = "all") -> pd.DataFrame:
    """The pooled gap trend of the schools of `level` and `cluster` (every year, summed by the database;
    read-only, shared)."""
    return _gap_trend(import_version(), metric, level, cluster)


def gap_trend_ahead(metric: str, level: str = "all", cluster: str = "all") -> None:
    """Start :func:`gap_trend` on a thread of its own (:func:`ahead`): the database sums every year while the
    page draws the status grid and labels the year's gaps (one metric's 900,000 group rows at 10,000 schools x
    8 years: a second or two of the database's time)."""
    ahead("gap-trend", _gap_trend, import_version(), metric, level, cluster)


@st.cache_resource(show_spinner=False, max_entries=8)
@_imported
def _year_rows(version: int, year: int) -> pd.DataFrame:
    eng = engine()
    return metrics_with_suspension(loads.load_metrics(eng, years=[year]), loads.load_discipline(eng, years=[year]))


def year_rows(year: int) -> pd.DataFrame:
    """Every metric and group of every school for one year (district comparisons)."""
    return _year_rows(import_version(), year)
