"""Discipline: rows, sums and rates by group, disproportionality flags and risk ratios, incidents per month and
the suspension run chart, for the district, a cluster (looked up among every cluster's once made) or some schools."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from analytics.config import DEFAULT_SETTINGS
from analytics.data import aggregates_discipline, loads
from analytics.stats.disproportionality import DistrictRisks, group_rates
from analytics.stats.run_charts import monthly_series, run_chart
from pages.ui.caching import _made, ahead
from pages.ui.catalog_loaders import _schools, cluster_members
from pages.ui.compact import ClusterParts, _as_read, texts_as_categories
from pages.ui.data_versions import _imported, _then_release, engine, import_version


@st.cache_resource(show_spinner=False, max_entries=16)
@_imported
def _discipline(version: int, school_ids: tuple[str, ...] | None) -> pd.DataFrame:
    return loads.load_discipline(engine(), school_ids=list(school_ids) if school_ids else None)


def discipline(school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    return _discipline(import_version(), tuple(school_ids) if school_ids else None)


@st.cache_data(show_spinner=False, max_entries=16)
@_imported
def _discipline_sums(version: int, school_ids: tuple[str, ...] | None) -> pd.DataFrame:
    return aggregates_discipline.discipline_scope_sums(engine(), list(school_ids) if school_ids is not None else None)


# Every cluster's discipline sums and rates are made by the preparer and looked up once made: until then a
# cluster's view reads and pools its own schools' (the same rows), since every cluster's are over a thousand
# groups at state scale (10 s and more before a cold server's first view could draw anything).
def _made_for_clusters(cluster: str | None, *flag) -> bool:
    """Whether a cluster's view can look its result up among every cluster's: a cluster is asked for and the
    preparer has made them (``flag``, one of :func:`_made`'s)."""
    return cluster is not None and flag in _made()


@st.cache_resource(show_spinner=False, max_entries=4)
@_imported
def _cluster_discipline_sums(version: int) -> ClusterParts:
    sums = aggregates_discipline.discipline_cluster_sums(engine())
    # Joined anew: views of the grouped table would keep it whole, and the block it was cut from (7.7 MiB at
    # 2,000 schools instead of 4.4; DESIGN §8 memory bar).
    made = ClusterParts({str(name): part.drop(columns="cluster").reset_index(drop=True)
                         for name, part in sums.groupby("cluster", sort=False)})
    _made().add(("sums", version))
    return made


# Clusters per block of a per-cluster result the preparer makes in pieces: each cluster's rates or run chart is its
# own, and every cluster's at once kept the interpreter 11 s of CPU (rates) and 4 s (run charts) at 10,000 schools.
CLUSTER_BLOCK = 100


def cluster_blocks(clusters: Sequence[str]) -> list[tuple[str, ...]]:
    """`clusters` in order, cut into blocks of :data:`CLUSTER_BLOCK` (each block's result is cached on its own)."""
    names = tuple(clusters)
    return [names[i:i + CLUSTER_BLOCK] for i in range(0, len(names), CLUSTER_BLOCK)]


@st.cache_resource(show_spinner=False, max_entries=4)
@_then_release
def _cluster_group_rates(version: int, year: int) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    made = {}
    for block in cluster_blocks(list(_cluster_discipline_sums(version))):  # the preparer makes them one by one
        made.update(_cluster_group_rates_of(version, year, block))
    _made().add(("rates", version, year))
    return made


@st.cache_resource(show_spinner=False, max_entries=64)
def _cluster_group_rates_of(version: int, year: int,
                            clusters: tuple[str, ...]) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """One block's part of :func:`_cluster_group_rates` (the same objects: nothing is held twice)."""
    sums = _cluster_discipline_sums(version)
    return {cluster: group_rates(sums[cluster], year) for cluster in clusters}


def discipline_group_rates(sums: pd.DataFrame, year: int, cluster: str | None = None) -> tuple[pd.DataFrame,
                                                                                                   pd.DataFrame]:
    """:func:`analytics.stats.disproportionality.group_rates` of a scope's sums (:func:`discipline_sums`);
    when they are `cluster`'s and the year is the latest, a copy of the cluster's, made for every cluster by
    the preparer (each a few kB), so a cluster's first view pools nothing."""
    version = import_version()
    years, _ = _discipline_choices(version)
    if years and year == years[-1] and _made_for_clusters(cluster, "rates", version, year):
        found = _cluster_group_rates(version, year).get(cluster)
        if found is not None:
            return found[0].copy(), found[1].copy()  # the page relabels them
    return group_rates(sums, year)


def discipline_sums(school_ids: Sequence[str], cluster: str | None = None) -> pd.DataFrame:
    """Sums per year and group of the given schools' discipline rows, ALL completed from race rows where
    missing (:func:`analytics.data.aggregates_discipline.discipline_scope_sums`): summed by the database, so no view
    holds the schools' rows (the district's are 15 MiB at 2,000 schools).

    When the schools are those of `cluster`, its sums are looked up among every cluster's, summed in one
    read (:func:`analytics.data.aggregates_discipline.discipline_cluster_sums`) that the preparer makes after an
    import, so a cluster's first view reads nothing (shared read-only, like the district's: never modify);
    before the preparer has made them, the cluster's schools' own sums (the same rows)."""
    version = import_version()
    if _made_for_clusters(cluster, "sums", version) and (
            found := _cluster_discipline_sums(version).get(cluster)) is not None:
        return found
    every = set(school_ids) >= set(_schools(version)["school_id"])
    return _discipline_sums(version, None if every else tuple(sorted(school_ids)))


@st.cache_data(show_spinner=False, max_entries=4)
@_imported
def _discipline_choices(version: int) -> tuple[list[int], list[str]]:
    eng = engine()
    return aggregates_discipline.discipline_years(eng), aggregates_discipline.discipline_groups(eng)


def discipline_choices() -> tuple[list[int], list[str]]:
    """The school years and student groups of the discipline table (``DISTINCT`` in the database; ``ALL``
    among the groups when race rows let it be derived)."""
    return _discipline_choices(import_version())


@st.cache_data(show_spinner=False, max_entries=4)
@_imported
def _district_risks(version: int) -> DistrictRisks:
    return aggregates_discipline.district_risks(engine())


@st.cache_data(show_spinner=False, max_entries=4)
@_imported
def _district_risks_of(version: int, years: tuple[int, ...]) -> DistrictRisks:
    return aggregates_discipline.district_risks(engine(), years)


RATIO_OUTCOME = "suspension"  # the outcome whose risk ratios the discipline page draws


@st.cache_resource(show_spinner=False, max_entries=8)
@_imported
def _flags_and_ratios(version: int, school_ids: tuple[str, ...] | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    if school_ids is None:
        return _district_flags_and_ratios(version)
    if ("flags", version) not in _made():  # the scope's schools alone: the district's are not made yet
        return _scope_flags_and_ratios(version, list(school_ids))
    # a school's rows are the same in any scope (the district's risks): a slice
    flagged, ratios = _district_flags_and_ratios(version)
    ids = set(school_ids)
    return flagged[flagged["school_id"].isin(ids)], ratios[ratios["school_id"].isin(ids)]


@st.cache_resource(show_spinner=False, max_entries=2)
@_imported
def _district_flags_and_ratios(version: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every school's flagged rows and suspension rows, in their own cache: many scopes' slices never evict them
    (the ("flags", version) mark of :func:`_made` then holds as long as they do)."""
    made = _scope_flags_and_ratios(version, None)
    _made().add(("flags", version))
    return made


def _scope_flags_and_ratios(version: int, school_ids: list[str] | None,
                            years: tuple[int, ...] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Some schools' (default every school's) flagged rows and suspension rows, each school's from its own rows
    and the district's risks (so the same rows in any scope); of `years` alone when given."""
    flagged, ratios = [], []
    risks = _district_risks(version) if years is None else _district_risks_of(version, years)
    parts = aggregates_discipline.disproportionality_parts(engine(), school_ids, district=risks, years=years)
    for part in parts:  # a few hundred schools' rows at a time: the scope's whole table is never held
        flagged.append(part[part["flagged"]])
        ratios.append(part[part["outcome"] == RATIO_OUTCOME])
    # Every school's suspension rows (a hundred thousand and more at 2,000 schools) keep their texts (school, group,
    # outcome, ratio type) as categories: 7 of their 18 MiB (DESIGN §8 memory bar); read back by :func:`_as_read`.
    return pd.concat(flagged), texts_as_categories(pd.concat(ratios))[0]


@st.cache_resource(show_spinner=False, max_entries=4)
def _cluster_ratio_rows(version: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each cluster's rows of the district's flagged and suspension tables, by position (in table order)."""
    positions = [_positions_by_cluster(version, frame) for frame in _flags_and_ratios(version, None)]
    none = np.array([], dtype=np.intp)
    return {str(c): (positions[0].get(c, none), positions[1].get(c, none))
            for c in _schools(version)["cluster"].dropna().unique()}


def _positions_by_cluster(version: int, frame: pd.DataFrame) -> dict:
    """cluster -> the positions of its schools' rows in `frame` (table order), found by each row's school."""
    schools = _schools(version)
    cluster_of = dict(zip(schools["school_id"], schools["cluster"], strict=True))
    return frame.groupby(frame["school_id"].map(cluster_of).to_numpy(), sort=False).indices


def flags_and_ratios(school_ids: Sequence[str] | None = None,
                     cluster: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Disproportionality of the given schools (default: every school), every year: the flagged rows (any
    outcome) and the suspension rows, which is all the discipline page reads (read-only, shared). Some
    schools' rows are a slice of the district's (prepared after an import): each school's ratios use its own
    rows and the district's risks only, whatever the scope.

    Computed from the schools' own rows, read from the database a few hundred schools at a time, with the
    alternate ratio's district risks summed by the database; the other outcomes' rows (four fifths of a
    district's table) are not kept in memory.

    When the schools are those of `cluster`, its rows are taken by their positions in the district's tables,
    found once per data version by the preparer (no test of every row's school). Until the district's are made,
    some schools' are computed from their own rows alone (a cluster's first view at 10,000 schools otherwise
    waited for every school's).
    """
    flagged, ratios = _flags_and_ratios_kept(school_ids, cluster)
    return flagged, _as_read(ratios)


def _flags_and_ratios_kept(school_ids: Sequence[str] | None, cluster: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`flags_and_ratios` as kept (the suspension rows' texts as categories)."""
    version = import_version()
    if _made_for_clusters(cluster, "flags", version) and (found := _cluster_ratio_rows(version).get(cluster)) is not None:
        return tuple(frame.iloc[rows] for frame, rows in zip(_flags_and_ratios(version, None), found, strict=True))
    return _flags_and_ratios(version, tuple(sorted(school_ids)) if school_ids is not None else None)


def prepared_flags(cluster: str | None = None) -> pd.DataFrame | None:
    """The flagged rows (every year and outcome) of the district or of `cluster` when the district's are made
    (:func:`flags_and_ratios`, prepared after an import), else None: what changed then computes the ratios of
    the groups that can be flagged itself rather than wait for every group's (shared, read-only)."""
    if ("flags", import_version()) not in _made():
        return None
    ids = None if cluster is None else cluster_members(cluster)["school_id"].tolist()
    return flags_and_ratios(ids, cluster)[0]


@st.cache_resource(show_spinner=False, max_entries=2)
@_then_release
def _cluster_year_ratios(version: int, year: int) -> tuple[tuple[pd.DataFrame, pd.DataFrame], dict[str, tuple[slice, slice]]]:
    """The district's flagged and suspension rows of one year, cluster after cluster (each cluster's in table
    order), and each cluster's rows in them as a slice: a cluster's first view then takes a slice of the
    year (no gathering of rows from every year's tables; a few MiB at 2,000 schools)."""
    frames, spans = [], []
    for frame in _flags_and_ratios(version, None):
        of_year = frame[frame["school_year"] == year]
        at = _positions_by_cluster(version, of_year)
        ends = np.cumsum([len(rows) for rows in at.values()], dtype=np.intp)
        order = np.concatenate(list(at.values())) if at else np.array([], dtype=np.intp)
        frames.append(of_year.iloc[order])
        spans.append({str(c): slice(int(end - len(rows)), int(end)) for (c, rows), end in zip(at.items(), ends, strict=True)})
    none = slice(0, 0)
    _made().add(("year ratios", version, year))
    return (frames[0], frames[1]), {c: (spans[0].get(c, none), spans[1].get(c, none)) for c in {*spans[0], *spans[1]}}


def year_flags_and_ratios(year: int, school_ids: Sequence[str] | None = None,
                          cluster: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`flags_and_ratios` of one year (the rows of the year, in their order and with their labels).
    When the schools are those of `cluster` and the preparer has made the year's rows by cluster (the latest
    year, which the page opens on), a slice of them (read-only, shared)."""
    version = import_version()
    if _made_for_clusters(cluster, "year ratios", version, year):
        (flagged, ratios), spans = _cluster_year_ratios(version, year)
        none = slice(0, 0)
        at_flags, at_ratios = spans.get(cluster, (none, none))
        return flagged.iloc[at_flags], _as_read(ratios.iloc[at_ratios])
    if school_ids is not None and ("flags", version) not in _made():
        flagged, ratios = _year_flags_and_ratios(version, tuple(sorted(school_ids)), int(year))
        return flagged, _as_read(ratios)
    flagged, ratios = _flags_and_ratios_kept(school_ids, cluster)
    return flagged[flagged["school_year"] == year], _as_read(ratios[ratios["school_year"] == year])


def _flag_years(year: int) -> tuple[int, ...]:
    """The years a year's flags read: the year and the ones before it that its run of high ratios spans."""
    return tuple(range(year - DEFAULT_SETTINGS.consecutive_years + 1, year + 1))


@st.cache_resource(show_spinner=False, max_entries=8)
@_imported
def _year_flags_and_ratios(version: int, school_ids: tuple[str, ...], year: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Some schools' flagged and suspension rows of one year, before the district's are made: read from their rows
    of the years the year's flags span, with the district's risks of those years summed by the database (each
    year's ratios are its own; at 10,000 schools every year's risks are 3 s and more of the database's time,
    three years' a third of that)."""
    flagged, ratios = _scope_flags_and_ratios(version, list(school_ids), _flag_years(year))
    return flagged[flagged["school_year"] == year], ratios[ratios["school_year"] == year]


def year_flags_and_ratios_ahead(year: int, school_ids: Sequence[str] | None) -> None:
    """Start the scope's :func:`year_flags_and_ratios` on a thread of its own (:func:`ahead`) when they are its own
    to compute (some schools, the district's not made yet): the database reads them while the page draws."""
    version = import_version()
    if school_ids is not None and ("flags", version) not in _made():
        ahead("year-flags", _year_flags_and_ratios, version, tuple(sorted(school_ids)), int(year))


@st.cache_data(show_spinner=False, max_entries=16)
@_imported
def _incident_months(version: int, actions: tuple[str, ...] | None, school_ids: tuple[str, ...] | None) -> pd.Series:
    return aggregates_discipline.monthly_incident_counts(engine(), actions=list(actions) if actions else None,
                                                         school_ids=list(school_ids) if school_ids is not None else None)


@st.cache_resource(show_spinner=False, max_entries=4)
@_imported
def _cluster_incident_months(version: int, actions: tuple[str, ...] | None) -> ClusterParts:
    counts = aggregates_discipline.monthly_incident_counts(engine(), actions=list(actions) if actions else None,
                                                           by_cluster=True)
    made = ClusterParts({str(name): part.droplevel("cluster").sort_index().rename_axis(None)
                         for name, part in counts.groupby(level="cluster", sort=False)})
    _made().add(("months", version, actions))
    return made


def incident_months(actions: Sequence[str] | None = None, school_ids: Sequence[str] | None = None,
                    cluster: str | None = None) -> pd.Series:
    """Incidents per calendar month of the given schools (default: every incident), counted by the database.

    When the schools are those of `cluster`, its counts are looked up among every cluster's, counted in one
    read that the preparer makes after an import (none: the cluster has no incidents; shared read-only);
    until the preparer has made them, the cluster's schools' own (as :func:`discipline_sums`)."""
    key, version = (tuple(actions) if actions else None), import_version()
    if _made_for_clusters(cluster, "months", version, key):
        return _cluster_incident_months(version, key).get(cluster, _NO_MONTHS)
    return _incident_months(version, key, tuple(school_ids) if school_ids is not None else None)


_NO_MONTHS = pd.Series([], index=pd.PeriodIndex([], freq="M"), dtype="int64", name="count")


SUSPENSIONS = ("ISS", "OSS")  # the actions the run chart counts


def _suspension_run_chart(every: pd.Series, suspensions: pd.Series) -> pd.DataFrame | None:
    """The run chart (:func:`analytics.stats.run_charts.run_chart`) of suspensions per month of a scope whose
    incidents per month are `every` (none: no chart)."""
    return None if every.empty else run_chart(monthly_series(suspensions)[["period", "value"]])


@st.cache_resource(show_spinner=False, max_entries=2)
@_then_release
def _cluster_run_charts(version: int) -> dict[str, pd.DataFrame]:
    made = {}
    for block in cluster_blocks(list(_cluster_incident_months(version, None))):  # the preparer makes them one by one
        made.update(_cluster_run_charts_of(version, block))
    _made().add(("run charts", version))
    return made


@st.cache_resource(show_spinner=False, max_entries=64)
def _cluster_run_charts_of(version: int, clusters: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """One block's part of :func:`_cluster_run_charts` (the same objects: nothing is held twice)."""
    every, suspensions = _cluster_incident_months(version, None), _cluster_incident_months(version, SUSPENSIONS)
    return {cluster: _suspension_run_chart(every[cluster], suspensions.get(cluster, _NO_MONTHS))
            for cluster in clusters}


def suspension_run_chart(school_ids: Sequence[str], cluster: str | None = None) -> pd.DataFrame | None:
    """The monthly run chart of suspensions (ISS + OSS) of the given schools: median and signals of their
    incidents per month (:func:`incident_months`); None when they have no incidents at all.

    When the schools are those of `cluster`, its chart is looked up among every cluster's, made by the
    preparer from every cluster's months (a few kB each; none: the cluster has no incidents). Shared
    read-only."""
    version = import_version()
    if _made_for_clusters(cluster, "run charts", version):
        return _cluster_run_charts(version).get(cluster)
    return _suspension_run_chart(incident_months(None, school_ids, cluster),
                                 incident_months(SUSPENSIONS, school_ids, cluster))
