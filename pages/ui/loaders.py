"""Cached loaders: the engine, the data versions and every table a page reads.

Raw tables are cached as shared resources (no copy per rerun; pages only read them). A result read from
imported tables alone is keyed on the import version (:func:`import_version`), so an import is visible at once
and a workspace edit (a saved goal, cycle or note) leaves it cached; a result that reads any workspace table
(goals, cycles, walkthroughs, meetings…) is keyed on the data version every write bumps (:func:`data_version`)."""

from __future__ import annotations

import collections
import contextlib
import functools
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import streamlit as st
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from analytics.config import DEFAULT_SETTINGS
from analytics.data import aggregates, catalog, kept, loads, memory, quality, storage
from analytics.data.derived import metrics_with_suspension
from analytics.learning.outcomes import RP_METRIC_OUTCOMES, rp_metric_impact, rp_metric_panels
from analytics.stats.disproportionality import DistrictRisks, group_rates
from analytics.stats.gaps import gap_table, label_gaps, pooled_gap_trend_from_sums
from analytics.stats.rates import add_rate_columns
from analytics.stats.rp_impact import (
    DistrictPanel,
    RPImpact,
    SchoolRows,
    comparison_scope,
    rp_impact,
    rp_impact_for_cluster,
    rp_impact_for_school,
)
from analytics.stats.run_charts import monthly_series, run_chart
from analytics.stats.small_numbers import rank_schools
from analytics.stats.status_change import status_change
from analytics.stats.summaries import (
    cluster_table_from_counts,
    data_limits,
    profile_slices,
    school_profile,
    school_profiles,
    school_values,
    summary_kpi_from_counts,
)
from pages.ui.state import per_run, start_run


@st.cache_resource(show_spinner="Preparing the database…")
def _engine() -> Engine:
    return storage.ensure_database()


def engine() -> Engine:
    """The app's engine; an empty embedded database is filled with the demo district once.

    Every read goes through here, so a run that began in Streamlit's legacy pages mode (a page script
    without the app.py shell and its access checks) is stopped and rerun before it reads anything.
    """
    leave_legacy_run()
    return _engine()


def _inside_legacy_runner() -> bool:
    """True when this script run was started by Streamlit's legacy pages runner (it is on the stack)."""
    try:
        from streamlit.runtime.scriptrunner.script_runner import _mpa_v1
    except ImportError:
        return False
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is _mpa_v1.__code__:
            return True
        frame = frame.f_back
    return False


def leave_legacy_run() -> None:
    """Rerun, through app.py's navigation, a run that Streamlit began in legacy pages mode."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)  # none on a thread of the run's own (ahead) or the preparer's
    if ctx is None:
        return
    if not _inside_legacy_runner():
        return
    try:  # rerun by page name so the deep link's page is kept (its legacy page hash means nothing now)
        from streamlit.commands.execution_control import _force_yield_point
        from streamlit.runtime.scriptrunner_utils.script_requests import RerunData

        name = ctx.pages_manager.intended_page_name or ""
        ctx.script_requests.request_rerun(RerunData(query_string=ctx.query_string, page_name=name,
                                                    context_info=ctx.context_info))
        _force_yield_point()
    except (ImportError, AttributeError, TypeError):
        st.rerun()


_PIN = "_data_version_pin"
_RETRIES = "_data_changed_reruns"
MAX_DATA_RETRIES = 5


def pin_data_version() -> storage.Versions:
    """Read both data versions once (one SELECT) for this script run; every loader of the run then reads them.

    app.py calls this first on every run, so a page never mixes rows from before and after a write that
    lands while it is drawing: a loader that finds newer data raises `storage.DataChanged` and the run
    starts again (see :func:`run_page`).
    """
    try:
        versions = storage.versions(engine())
    except sa_exc.DBAPIError:
        database_unreachable()
    st.session_state[_PIN] = versions
    start_run()  # what this run looks up many times is looked up once (pages.ui.state.per_run)
    return versions


def database_unreachable() -> None:
    """A plain message instead of a traceback while the database is down or restarting; stops the run."""
    st.error("The database is not reachable right now (it may be restarting). Nothing was changed; reload the "
             "page in a minute. If this lasts, tell the data team.", icon=":material/cloud_off:")
    st.stop()


def pinned_versions() -> storage.Versions:
    """Both data versions of this run (read now when the run pinned none)."""
    pinned = st.session_state.get(_PIN)
    return pinned if pinned is not None else storage.versions(engine())


def data_version() -> int:
    """The run's data version, bumped by every write: the key of results that read a workspace table."""
    return pinned_versions().changes


def import_version() -> int:
    """The run's import version, bumped by imports only: the key of results read from imported tables alone."""
    return pinned_versions().imports


def _consistent(load: Callable, counter: int = storage.CHANGES) -> Callable:
    """A loader whose result is checked to belong to the version of `counter` it is cached under; on a cache
    miss what its intermediate frames held is given back (:func:`_then_release`)."""
    return _then_release(_checked_against(load, counter))


def _checked_against(fn: Callable, counter: int) -> Callable:
    """`fn(version, ...)`, its result checked to belong to `version` of `counter` (`storage.read_at_version`)."""

    @functools.wraps(fn)
    def checked(version: int, *args, **kwargs):
        return storage.read_at_version(engine(), version, lambda: fn(version, *args, **kwargs), counter)

    return checked


def _imported(load: Callable) -> Callable:
    """:func:`_consistent` for a loader that reads imported tables alone, cached under the import version."""
    return _consistent(load, storage.IMPORTS)


def _then_release(compute: Callable) -> Callable:
    """A computation after which the memory its intermediate frames used goes back to the system.

    Runs only on a cache miss (it sits inside the cache): district-wide tables are built through large
    temporary frames, and without this the server keeps its peak size (DESIGN §8 memory bar).
    """

    @functools.wraps(compute)
    def released(*args, **kwargs):
        try:
            return compute(*args, **kwargs)
        finally:
            memory.release_freed_memory()

    return released


def run_page(page, after: Callable[[], None] | None = None) -> None:
    """Run a page (then `after`, under the same guard, :func:`data_guard`). app.py runs it inside
    `pages.ui.prepare.page_in_progress`: the server's preparer starts no new piece of work meanwhile."""
    with data_guard():
        page.run()
        if after is not None:
            after()
        st.session_state[_RETRIES] = 0


@contextlib.contextmanager
def data_guard() -> Iterator[None]:
    """Run the block; when an import lands while it reads (`storage.DataChanged`), run the script again on
    the new data instead of mixing the two, and say the database is unreachable instead of failing.

    Around the page and around what the navigation shell reads before it (a shared link's scope check reads
    the district's schools): an import landing between the run's pinned version and those reads would
    otherwise end the run with an error where the page should be."""
    try:
        yield
    except storage.DataChanged:
        st.session_state.pop(_PIN, None)
        retries = st.session_state[_RETRIES] = st.session_state.get(_RETRIES, 0) + 1
        if retries > MAX_DATA_RETRIES:  # imports landing back to back: say so rather than loop
            st.session_state[_RETRIES] = 0
            st.info("New data is being imported right now; reload the page in a moment to see it.",
                    icon=":material/sync:")
            st.stop()
        st.rerun()
    except sa_exc.DBAPIError:
        database_unreachable()


@st.cache_data(show_spinner=False, max_entries=4)
@_imported
def _schools(version: int) -> pd.DataFrame:
    return loads.load_schools(engine())


def schools() -> pd.DataFrame:
    return _schools(import_version())


@st.cache_resource(show_spinner=False, max_entries=4)
def _school_fields(version: int) -> dict[str, dict[str, str]]:
    table = _schools(version)
    return {column: dict(zip(table["school_id"], table[column], strict=True)) for column in ("school_name", "cluster")}


def school_field(column: str) -> dict[str, str]:
    """school_id -> its stored `school_name` or its `cluster`, shared read-only: a page about one school looks
    it up without a copy of the district's schools table on every rerun (one cache lookup per run)."""
    return per_run(f"school_{column}", lambda: _school_fields(import_version())[column])


@st.cache_data(show_spinner=False, max_entries=4)
def _school_names(version: int) -> pd.Series:
    return catalog.school_labels(_schools(version))


def school_names() -> pd.Series:
    """school_id -> the name people read ("Lincoln ES (North)" where two schools share a name)."""
    return _school_names(import_version())


@st.cache_data(show_spinner=False, max_entries=4)
@_imported
def _catalog(version: int) -> pd.DataFrame:
    return catalog.metric_catalog(loads.load_metric_definitions(engine()))


def metric_catalog() -> pd.DataFrame:
    return _catalog(import_version())


@st.cache_resource(show_spinner=False, max_entries=4)
def _metric_labels(version: int) -> dict[str, str]:
    cat = _catalog(version)
    return {metric: str(label) for metric, label in zip(cat.index, cat["label"], strict=True)}


@st.cache_resource(show_spinner=False, max_entries=4)
def _directions(version: int) -> dict[str, bool]:
    return {metric: bool(higher) for metric, higher in _catalog(version)["higher_is_better"].items()}


def higher_is_better() -> dict[str, bool]:
    """metric id -> whether a higher value is better, shared read-only (a metric missing from the catalogue
    counts as higher-is-better: look it up with ``.get(metric, True)``)."""
    return per_run("higher_is_better", lambda: _directions(import_version()))


def metric_labels() -> dict[str, str]:
    """metric id -> label, shared read-only (labels are looked up per table row: no catalog copy per call,
    and one cache lookup per run)."""
    return per_run("metric_labels", lambda: _metric_labels(import_version()))


@st.cache_data(show_spinner=False, max_entries=4)
@_imported
def _years(version: int) -> list[int]:
    return loads.available_years(engine())


def years() -> list[int]:
    return _years(import_version())


@st.cache_data(show_spinner=False, max_entries=4)
@_imported
def _metric_ids(version: int) -> list[str]:
    ids = loads.available_metrics(engine())
    if "suspension_rate" not in ids and loads.tables_present(engine())["discipline"]:
        ids.append("suspension_rate")
    order = {m.metric: i for i, m in enumerate(catalog.BUILTIN_METRICS)}
    return sorted(ids, key=lambda m: (order.get(m, len(order)), m))


def metric_ids() -> list[str]:
    return _metric_ids(import_version())


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


class ClusterParts(Mapping):
    """Every cluster's part of a result (a frame or series each, or a tuple of them, or None), kept as one frame
    per position, cluster after cluster, and read as the mapping it was made from: a cluster's part is a slice
    of it, with its own index, columns and types. Each of a few thousand small frames held apart costs 1-3 KiB
    of pandas' own objects beside its rows (DESIGN §8 memory bar). A part whose columns, types or index differ
    from the first one's is kept as it was. Shared and read-only."""

    def __init__(self, parts: Mapping[str, object]):
        self._names = list(parts)
        widths = {len(part) if isinstance(part, tuple) else None for part in parts.values()}
        self._width = widths.pop() if len(widths) == 1 else None  # tuples of one width: joined position by position
        if self._width:
            self._positions = [_Joined({name: part[i] for name, part in parts.items()}) for i in range(self._width)]
        else:
            self._width, self._positions = None, [_Joined(parts)]

    def __getitem__(self, cluster: str):
        if cluster not in self:
            raise KeyError(cluster)
        if self._width is None:
            return self._positions[0].part(cluster)
        return tuple(position.part(cluster) for position in self._positions)

    def __contains__(self, cluster) -> bool:
        return cluster in self._positions[0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class _Joined:
    """One position of :class:`ClusterParts`: the parts alike joined into one frame, each one's rows a slice."""

    def __init__(self, parts: Mapping[str, object]):
        first = next((part for part in parts.values() if isinstance(part, (pd.DataFrame, pd.Series))), None)
        joined = [name for name, part in parts.items() if first is not None and _alike(part, first)]
        kept = set(joined)
        self._apart = {name: part for name, part in parts.items() if name not in kept}
        # A part numbered by a range (most are: 0, 1, 2...) is given back with that range again.
        self._ranges = {name: (index.start, index.stop, index.step) for name in joined
                        if isinstance(index := parts[name].index, pd.RangeIndex)}
        self._joined = pd.concat([parts[name] for name in joined], ignore_index=len(self._ranges) == len(joined)) \
            if joined else None
        ends = np.cumsum([len(parts[name]) for name in joined], dtype=np.intp)
        self._rows = {name: slice(int(end) - len(parts[name]), int(end))
                      for name, end in zip(joined, ends, strict=True)}

    def __contains__(self, cluster: str) -> bool:
        return cluster in self._rows or cluster in self._apart

    def part(self, cluster: str):
        rows = self._rows.get(cluster)
        if rows is None:
            return self._apart[cluster]
        part, numbered = self._joined.iloc[rows], self._ranges.get(cluster)
        return part if numbered is None else part.set_axis(pd.RangeIndex(*numbered, name=part.index.name))


def _alike(part, first) -> bool:
    """Whether `part` joins `first` and comes back the same: the same kind, columns (or name), types and index."""
    if type(part) is not type(first):
        return False
    kind = _index_kind(part.index)
    if kind is None or kind != _index_kind(first.index) or part.index.name != first.index.name:
        return False
    if isinstance(part, pd.Series):
        return part.dtype == first.dtype and part.name == first.name
    return (part.columns.equals(first.columns) and part.columns.dtype == first.columns.dtype
            and part.columns.names == first.columns.names and part.dtypes.equals(first.dtypes))


def _index_kind(index: pd.Index):
    """Ranges and whole numbers are one kind (joined, a range is given back as a range); a MultiIndex joins none."""
    if isinstance(index, pd.MultiIndex):
        return None
    if isinstance(index, pd.RangeIndex) or type(index) is pd.Index and index.dtype == np.int64:
        return "whole numbers"
    return type(index), index.dtype


@st.cache_resource(show_spinner=False, max_entries=2)
def _cluster_members(version: int) -> ClusterParts:
    schools = _schools(version)
    labelled = schools.assign(school_name=catalog.school_labels(schools, within="cluster").to_numpy())
    made = ClusterParts({str(name): members for name, members in labelled.groupby("cluster", sort=False)})
    _made().add(("members", version))
    return made


@st.cache_resource(show_spinner=False, max_entries=64)
def _one_cluster_members(version: int, cluster: str) -> pd.DataFrame:
    """One cluster's schools labelled among themselves: the same rows and labels as its part of
    :func:`_cluster_members` (``school_labels(..., within="cluster")`` labels each cluster as if alone)."""
    schools = _schools(version)
    members = schools[schools["cluster"] == cluster]
    return members.assign(school_name=catalog.school_labels(members).to_numpy()) if len(members) else members


def cluster_members(cluster: str) -> pd.DataFrame:
    """A cluster's schools (the schools table's rows, in its order), two schools of one name in it told apart
    (by id) in every chart, table and link of its page: split once per data version (prepared with the map),
    read-only and shared. Until the preparer has split every cluster's, the cluster's own are labelled alone
    (the same rows: at 10,000 schools every cluster's took a second of a cluster's first view)."""
    version = import_version()
    if ("members", version) not in _made():
        return _one_cluster_members(version, cluster)
    found = _cluster_members(version).get(cluster)
    return found if found is not None else _schools(version).iloc[0:0]


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


@st.cache_resource(show_spinner=False, max_entries=16)
@_imported
def _school_rows(version: int, school_id: str) -> pd.DataFrame:
    """The school's metric rows as imported (read by its key)."""
    return loads.load_metrics(engine(), school_ids=[school_id])


@st.cache_resource(show_spinner=False, max_entries=16)
def _school_metrics(version: int, school_id: str) -> pd.DataFrame:
    # The school's discipline rows through their own cache: its page draws them too (one read, not two).
    return metrics_with_suspension(_school_rows(version, school_id), _discipline(version, (school_id,)))


def school_metrics(school_id: str) -> pd.DataFrame:
    """One school's metric rows, every year and group (suspension rate derived when not imported): read by
    the school's key (its unique index), never the district's rows."""
    return _school_metrics(import_version(), school_id)


PROFILE_BLOCK = 100  # schools per piece of the district's profiles (about half a second each)


class SchoolProfiles:
    """Every school's profile for one year (:func:`analytics.stats.summaries.school_profiles`), made a block
    of schools at a time: the preparer makes each block in a piece of its own, before the block's opening
    views (:class:`pages.ui.school_views.OpeningViews`), and a school's first view only slices its block
    (before the preparer has made it, the page makes the school's own profile, as fast as ever).
    Shared and read-only."""

    def __init__(self, version: int, year: int, school_ids: Sequence[str]):
        self.version, self.year = version, year
        ids = sorted(map(str, school_ids))
        self._blocks = [ids[i:i + PROFILE_BLOCK] for i in range(0, len(ids), PROFILE_BLOCK)]
        self._block_of = {school: i // PROFILE_BLOCK for i, school in enumerate(ids)}
        self._made: dict[int, tuple[pd.DataFrame, dict[str, tuple[int, int]], dict]] = {}
        self._lock = threading.Lock()

    def _make(self, block: int) -> tuple[pd.DataFrame, dict[str, tuple[int, int]], dict]:
        with self._lock:  # one block is made once, whoever asks first
            made = self._made.get(block)
            if made is None:
                made = self._made[block] = _then_release(self._read)(self._blocks[block])
            return made

    def _read(self, ids: list[str]) -> tuple[pd.DataFrame, dict[str, tuple[int, int]], dict]:
        eng, year = engine(), self.year
        derived = _suspension_derived(self.version, year)  # the district's year decides, not the block's rows
        rows = storage.read_at_version(eng, self.version, lambda: metrics_with_suspension(
            loads.load_metrics(eng, years=[year], school_ids=ids),
            loads.load_discipline(eng, years=[year], school_ids=ids), derived), storage.IMPORTS)
        ordered, where = profile_slices(school_profiles(rows, year, _district_figures(self.version, year)))
        compact, types = numbers_compact(ordered)
        return compact, where, types

    def block(self, block: int) -> tuple[list[str], pd.DataFrame, dict[str, tuple[int, int]], dict]:
        """A block's schools, and its profiles made (if not yet): the frame, each school's rows in it, the text
        columns' types (what each school's opening view is made from, :mod:`pages.ui.school_views`)."""
        return self._blocks[block], *self._make(block)

    def blocks(self) -> int:
        return len(self._blocks)

    def block_of(self, school_id: str) -> int | None:
        return self._block_of.get(school_id)

    def of(self, school_id: str) -> pd.DataFrame | None:
        """The school's profile (:func:`~analytics.stats.summaries.school_profile`'s rows and columns); None
        while its block is not made yet, or for a school the district did not have when this was made."""
        made = self._made.get(self._block_of.get(school_id, -1))
        if made is None:
            return None
        frame, where, texts = made
        if school_id not in where:
            return pd.DataFrame()
        start, stop = where[school_id]
        return rows_as_read(frame, slice(start, stop), texts)


def texts_as_categories(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """`frame` with its text columns as categories, and their own types: what is kept for every school (profiles,
    opening views) holds each school's, metric's and group's name once (a third of a profile's memory at 2,000
    schools; DESIGN §8 memory bar). A school's rows are given back in their own types (``.astype(types)``)."""
    texts = {col: dtype for col, dtype in frame.dtypes.items()  # "str" on pandas 3, object before
             if dtype == "str" or dtype == "object"}
    return frame.astype({col: "category" for col in texts}), texts


def numbers_compact(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """:func:`texts_as_categories`, and number columns held in fewer bytes that give back the very same values:
    a column of few distinct values (a block's one school year, the district's figure of each metric and group)
    as categories, whole counts as 32-bit integers. Every school's profile keeps 16 columns of 14,000 rows a
    block (DESIGN §8 memory bar); :func:`rows_as_read` gives a school's rows back in their own types."""
    kept, types = texts_as_categories(frame)
    narrowed = {}
    for col, dtype in frame.dtypes.items():
        if col in types or dtype not in (np.int64, np.float64) or not len(frame):
            continue
        values = frame[col].to_numpy()
        if dtype == np.float64 and (np.signbit(values) & (values == 0)).any():
            continue  # -0.0 would come back as 0.0 from categories
        if pd.unique(values).size <= len(values) // 16:
            narrowed[col] = "category"
        elif (dtype == np.int64 or not np.isnan(values).any() and (values == np.round(values)).all()) \
                and np.abs(values).max() < 2**31:
            narrowed[col] = np.int32
    return kept.astype(narrowed), types | {col: dtype for col, dtype in frame.dtypes.items() if col in narrowed}


def rows_as_read(frame: pd.DataFrame, rows: slice | np.ndarray, texts: dict) -> pd.DataFrame:
    """Rows of a frame of :func:`texts_as_categories` or :func:`numbers_compact` (a school's), with those columns
    given back in their own types (`texts`): ``frame.iloc[rows].reset_index(drop=True).astype(texts)``, made column
    by column from the categories and codes, several times faster on a school's rows (a school's first view reads
    a few of them)."""
    columns = {}
    for col in frame.columns:
        values = frame[col].array[rows]
        if col in texts:
            if isinstance(values, pd.Categorical) and values.categories.dtype == texts[col]:
                values = values.categories.array.take(values.codes, allow_fill=True)
            elif isinstance(values, pd.Categorical) or texts[col] not in (np.int64, np.float64):
                return frame.iloc[rows].reset_index(drop=True).astype(texts)
            else:  # narrowed numbers
                values = values.to_numpy().astype(texts[col])
        columns[col] = values
    return pd.DataFrame(columns, columns=frame.columns)


@st.cache_resource(show_spinner=False, max_entries=2)
def _school_profiles(version: int, year: int) -> SchoolProfiles:
    return SchoolProfiles(version, year, _schools(version)["school_id"].tolist())


@st.cache_data(show_spinner=False, max_entries=8)
@_imported
def _suspension_derived(version: int, year: int) -> bool:
    return aggregates.suspension_derived(engine(), [year])


def school_profile_of(school_id: str, year: int) -> pd.DataFrame:
    """A school's profile for a year against the district (:func:`analytics.stats.summaries.school_profile`).
    The latest year's is a slice of every school's, made in blocks after an import (the preparer); an earlier
    year's, or one whose block is not made yet, is made from the school's own rows (the same frame). Either
    way `suspension_rate` is derived from discipline exactly when no school imported it for the year (as the
    district figure it is set against), not as the block's or the school's own rows would say."""
    version = import_version()
    year = int(year)
    if year == max(_years(version), default=None):
        found = _school_profiles(version, year).of(school_id)
        if found is not None:
            return found
    metrics, discipline = _school_rows(version, school_id), _discipline(version, (school_id,))
    rows = metrics_with_suspension(metrics[metrics["school_year"] == year],
                                   discipline[discipline["school_year"] == year], _suspension_derived(version, year))
    return school_profile(rows, None, year, district=_district_figures(version, year))


@st.cache_resource(show_spinner=False, max_entries=16)
@_imported
def _discipline(version: int, school_ids: tuple[str, ...] | None) -> pd.DataFrame:
    return loads.load_discipline(engine(), school_ids=list(school_ids) if school_ids else None)


def discipline(school_ids: Sequence[str] | None = None) -> pd.DataFrame:
    return _discipline(import_version(), tuple(school_ids) if school_ids else None)


@st.cache_data(show_spinner=False, max_entries=16)
@_imported
def _discipline_sums(version: int, school_ids: tuple[str, ...] | None) -> pd.DataFrame:
    return aggregates.discipline_scope_sums(engine(), list(school_ids) if school_ids is not None else None)


# Every cluster's discipline sums and rates are made by the preparer and looked up once made: until then a
# cluster's view reads and pools its own schools' (the same rows), since every cluster's are over a thousand
# groups at state scale (10 s and more before a cold server's first view could draw anything).


@st.cache_resource(show_spinner=False)
def _made() -> set[tuple]:
    """Which every-cluster results are made so far: ("sums", version), ("rates", version, year),
    ("months", version, actions), ("run charts", version), ("year ratios", version, year) and the district's
    flagged rows ("flags", version), and every goal's progress ("goals", data version). Kept with the caches
    they flag, so clearing Streamlit's caches clears
    the flags too (a flag never outlives what it says is made)."""
    return set()


def _made_for_clusters(cluster: str | None, *flag) -> bool:
    """Whether a cluster's view can look its result up among every cluster's: a cluster is asked for and the
    preparer has made them (``flag``, one of :func:`_made`'s)."""
    return cluster is not None and flag in _made()


@st.cache_resource(show_spinner=False, max_entries=4)
@_imported
def _cluster_discipline_sums(version: int) -> ClusterParts:
    sums = aggregates.discipline_cluster_sums(engine())
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
    missing (:func:`analytics.data.aggregates.discipline_scope_sums`): summed by the database, so no view
    holds the schools' rows (the district's are 15 MiB at 2,000 schools).

    When the schools are those of `cluster`, its sums are looked up among every cluster's, summed in one
    read (:func:`analytics.data.aggregates.discipline_cluster_sums`) that the preparer makes after an
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
    return aggregates.discipline_years(eng), aggregates.discipline_groups(eng)


def discipline_choices() -> tuple[list[int], list[str]]:
    """The school years and student groups of the discipline table (``DISTINCT`` in the database; ``ALL``
    among the groups when race rows let it be derived)."""
    return _discipline_choices(import_version())


@st.cache_data(show_spinner=False, max_entries=2)
@_imported
def _data_quality(version: int) -> pd.DataFrame:
    labels = _metric_labels(version)
    return quality.data_quality(engine(), label=lambda metric: labels.get(metric, metric))


def data_quality() -> pd.DataFrame:
    """The Data page's data-quality table (``analytics.data.quality``): counted over every row of the district
    (seconds at 2,000 schools), so once per data version, and prepared after an import."""
    return _data_quality(import_version())


@st.cache_data(show_spinner=False, max_entries=4)
@_imported
def _district_risks(version: int) -> DistrictRisks:
    return aggregates.district_risks(engine())


@st.cache_data(show_spinner=False, max_entries=4)
@_imported
def _district_risks_of(version: int, years: tuple[int, ...]) -> DistrictRisks:
    return aggregates.district_risks(engine(), years)


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
    parts = aggregates.disproportionality_parts(engine(), school_ids, district=risks, years=years)
    for part in parts:  # a few hundred schools' rows at a time: the scope's whole table is never held
        flagged.append(part[part["flagged"]])
        ratios.append(part[part["outcome"] == RATIO_OUTCOME])
    # Every school's suspension rows (a hundred thousand and more at 2,000 schools) keep their texts (school, group,
    # outcome, ratio type) as categories: 7 of their 18 MiB (DESIGN §8 memory bar); read back by :func:`_as_read`.
    return pd.concat(flagged), texts_as_categories(pd.concat(ratios))[0]


def _as_read(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows kept with their text columns as categories (the district's suspension ratios), in pandas' text type
    again (the categories' own type: "str" on pandas 3, object before, where a missing text stays missing)."""
    return frame.astype({col: dtype.categories.dtype for col, dtype in frame.dtypes.items()
                         if isinstance(dtype, pd.CategoricalDtype)})


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


@st.cache_resource(show_spinner=False, max_entries=4)
@_imported
def _district_colours(version: int, then_year: int, now_year: int) -> pd.DataFrame:
    from analytics.workspace.views import district_colours

    made = district_colours(engine(), then_year, now_year)
    _made().add(("colours", version, then_year, now_year))
    return made


def colours_at(version: int, cluster: str | None, then_year: int) -> pd.DataFrame | None:
    """The district's worsened status colours from `then_year` to the latest year at this import version, which
    what changed slices for any scope and meeting date of that year (shared, read-only; a thread other than the
    run's may call this); made by the district's view (the preparer draws it after an import). None for a
    cluster before they are made (its own few schools cost less than the district's) and when there is no later
    year."""
    now_year = max(_years(version), default=then_year)
    if now_year <= then_year or (cluster is not None and ("colours", version, then_year, now_year) not in _made()):
        return None
    return _district_colours(version, then_year, now_year)


@st.cache_resource(show_spinner=False, max_entries=2)
@_imported
def _school_suspension_months(version: int) -> pd.DataFrame:
    from analytics.workspace.views import monthly_suspensions

    made = monthly_suspensions(engine(), None)
    _made().add(("school months", version))
    return made


def prepared_school_months() -> pd.DataFrame | None:
    """Every school's suspensions per month as what changed watches them, when the discipline step has made them
    (shared, read-only), else None: a scope's view then counts its own schools'."""
    version = import_version()
    return _school_suspension_months(version) if ("school months", version) in _made() else None


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


def ahead(name: str, make: Callable, *args) -> None:
    """Start `make(*args)`, a cached result given the run's versions among `args`, on a thread of its own: the
    run's later call of it reads the result, or waits for it (Streamlit makes each cached entry once), so what
    the database reads for it overlaps what the run draws meanwhile. A failure is left to that call to raise."""

    def run() -> None:
        with contextlib.suppress(Exception):
            make(*args)

    threading.Thread(target=run, name=name, daemon=True).start()


@st.cache_resource(show_spinner=False, max_entries=4)
@_imported
def _rp_schools(version: int) -> frozenset[str]:
    schools = _schools(version)
    return frozenset(schools.loc[schools["rp_start_year"].notna(), "school_id"])


def has_rp_start(school: str | None) -> bool:
    """Whether `school` has a restorative-practices start year (its own RP estimate)."""
    return school in _rp_schools(import_version())


def _rp_school(version: int, school: str | None) -> str | None:
    """`school` when it has a restorative-practices start year (its own estimate), else None."""
    return school if school in _rp_schools(version) else None


@st.cache_resource(show_spinner=False, max_entries=2)
@_imported
def _rp_rows(version: int) -> pd.DataFrame:
    return aggregates.rp_outcome_rows(engine())


@st.cache_resource(show_spinner=False, max_entries=2)
@_imported
def _rp_panel(version: int) -> DistrictPanel:
    """The district's RP outcome panel, which every cluster's and school's estimate slices."""
    return DistrictPanel.of(_schools(version), _rp_rows(version))


RP_SCOPES = 4096  # every cluster's estimates are kept (a few kB each): the preparer makes them all


@st.cache_resource(show_spinner=False, max_entries=RP_SCOPES)
@_imported
def _rp_impact(version: int, cluster: str, school: str | None) -> RPImpact:
    schools, data = _schools(version), _rp_rows(version)  # the rows the RP outcomes read, not the whole table
    if school is not None:
        made = rp_impact_for_school(schools, data, school, district=_rp_panel(version))
    elif cluster == "all":
        made = rp_impact(schools, data, district=_rp_panel(version))
    else:
        made = rp_impact_for_cluster(schools, data, cluster, district=_rp_panel(version))
    _rp_made_scopes(version).add(("impact", cluster, school))
    return made


def rp_impact_of(cluster: str = "all", school: str | None = None) -> RPImpact:
    """Restorative-practices impact on suspensions: the district's or a cluster's RP schools, or one RP school
    (`school` when it has a start year, else the cluster's), against never-treated schools (read-only, shared:
    randomization inference takes seconds at 2,000 schools, so the preparer computes the district's and every
    cluster's ahead)."""
    one = _rp_school(import_version(), school)
    return _rp_impact(import_version(), "all" if one else cluster, one)


def rp_ahead(cluster: str = "all", school: str | None = None) -> None:
    """Start the view's restorative-practices estimates on a thread of their own (:func:`ahead`): the cluster's
    (:func:`rp_impact_of`), `school`'s when it has a start year, then :func:`rp_beyond` of the scope drawn when
    there is an estimate to draw; and the reads of the outcomes beside suspensions on another. What the database
    reads for them overlaps the page's other reads and drawing. Once they are made (by the preparer, or by an
    earlier view of the scope), no thread is started: the page looks them up."""
    version = import_version()
    one = _rp_school(version, school)
    if _rp_made(version, cluster, one):  # the preparer's (or an earlier view's): nothing to start
        return
    ahead("rp-metrics", _rp_metric_panels, version)
    ahead("rp-estimates", _rp_estimates, version, cluster, one)


@st.cache_resource(show_spinner=False, max_entries=2)
def _rp_made_scopes(version: int) -> set[tuple]:
    """Which scopes' RP estimates of `version` are made so far: ("impact" or "beyond", cluster, school). Kept with
    the caches they flag, for the last two versions as the district's RP panels are (a server importing daily
    would otherwise keep every cluster's flags of every version)."""
    return set()


def _rp_made(version: int, cluster: str, school: str | None) -> bool:
    """Whether every RP estimate :func:`_rp_estimates` would make for the view is made: its impacts and, when the
    last is drawn, the estimates beside suspensions (the preparer makes the district's and every cluster's)."""
    made = _rp_made_scopes(version)
    scopes = [(cluster, None), *([("all", school)] if school is not None else [])]
    if not all(("impact", *scope) in made for scope in scopes):
        return False
    from pages.ui.rp_views import drawable

    return ("beyond", *scopes[-1]) in made or not drawable(_rp_impact(version, *scopes[-1]))


def _rp_estimates(version: int, cluster: str, school: str | None) -> None:
    """What :func:`rp_ahead` makes: the page's RP estimates, in the order it asks for them."""
    from pages.ui.rp_views import drawable

    impact = _rp_impact(version, cluster, None)
    if school is not None:
        impact = _rp_impact(version, "all", school)
    if drawable(impact):
        _rp_beyond(version, "all" if school else cluster, school)


@st.cache_resource(show_spinner=False, max_entries=RP_SCOPES)
@_imported
def _rp_beyond(version: int, cluster: str, school: str | None) -> pd.DataFrame:
    schools = _schools(version)
    members = schools if cluster == "all" else schools[schools["cluster"] == cluster]
    scope = schools if school or cluster == "all" else comparison_scope(schools, members["school_id"])
    made = rp_metric_impact(scope, None, school, panels=_rp_metric_panels(version))
    _rp_made_scopes(version).add(("beyond", cluster, school))
    return made


@st.cache_resource(show_spinner=False, max_entries=2)
@_imported
def _rp_metric_panels(version: int) -> dict[str, SchoolRows]:
    """The school x year panels of the outcomes beside suspensions, which every scope's estimate slices: made from
    the district's ALL rows of them, read here and not kept (every scope reads the panels alone; 4.5 MiB at 2,000
    schools, DESIGN §8 memory bar)."""
    metrics = loads.load_metrics(engine(), metrics=list(RP_METRIC_OUTCOMES), groups=["ALL"])
    return rp_metric_panels(metrics, _schools(version))


def rp_beyond(cluster: str = "all", school: str | None = None) -> pd.DataFrame:
    """RP impact beside suspensions, same scopes as :func:`rp_impact_of`: school climate (% favourable) and
    chronic absence, by the same estimator (read-only, shared)."""
    one = _rp_school(import_version(), school)
    return _rp_beyond(import_version(), "all" if one else cluster, one)


@st.cache_data(show_spinner=False, max_entries=16)
@_imported
def _incident_months(version: int, actions: tuple[str, ...] | None, school_ids: tuple[str, ...] | None) -> pd.Series:
    return aggregates.monthly_incident_counts(engine(), actions=list(actions) if actions else None,
                                              school_ids=list(school_ids) if school_ids is not None else None)


@st.cache_resource(show_spinner=False, max_entries=4)
@_imported
def _cluster_incident_months(version: int, actions: tuple[str, ...] | None) -> ClusterParts:
    counts = aggregates.monthly_incident_counts(engine(), actions=list(actions) if actions else None, by_cluster=True)
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


@st.cache_resource(show_spinner=False, max_entries=2)
@_consistent
def _goal_progress(version: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from analytics.workspace.views import goals_progress

    made = goals_progress(engine())
    _made().add(("goals", version))
    return made


@st.cache_resource(show_spinner=False, max_entries=64)
@_consistent
def _scope_goal_progress(version: int, cluster: str | None, school: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    from analytics.workspace.views import goals_progress

    return goals_progress(engine(), cluster=cluster, school=school)


def goal_progress_of(cluster: str | None = None, school: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(goals, progress rows) of a school, a cluster or the district (None, None): a slice of every goal's
    progress, computed in one pass per data version (a goal's rows depend on that goal and its school's
    data alone) and prepared after an import; the plans and what-changed pages read it (shared, read-only).
    Until the district's are made, a school's or a cluster's are computed from its own goals and rows (the
    same progress rows: a school's plan or a cluster's changes opened before the preparer reaches the goals
    waited seconds for every goal's progress at 10,000 schools)."""
    return goal_progress_at(data_version(), import_version(), cluster, school)


def goal_progress_at(version: int, imports: int, cluster: str | None = None,
                     school: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`goal_progress_of` at these data and import versions, which a thread other than the run's may call
    (it reads no session state)."""
    if (school is not None or cluster is not None) and ("goals", version) not in _made():
        return _scope_goal_progress(version, None if school is not None else cluster, school)
    goals, progress = _goal_progress(version)
    if school is None and cluster is None:
        return goals, progress
    in_scope = _schools(imports)
    ids = [school] if school is not None else in_scope.loc[in_scope["cluster"] == cluster, "school_id"]
    mine = goals["school_id"].isin(set(ids))
    return (goals[mine].reset_index(drop=True),
            progress[progress["goal_id"].isin(set(goals.loc[mine, "goal_id"]))].reset_index(drop=True))


@st.cache_resource(show_spinner=False, max_entries=2)
@_consistent
def _pl_practices(version: int) -> tuple[list[str], dict[str, list[str]]]:
    from analytics.learning import fidelity
    from analytics.workspace import records

    eng = engine()
    known = fidelity.practices_known(loads.load_table(eng, "implementation"), records.load(eng, "walkthroughs"))
    return loads.load_table(eng, "pl_programs")["program"].tolist(), known


def pl_practices() -> tuple[list[str], dict[str, list[str]]]:
    """Programme ids, and the practices each has been observed on (imported or tagged on the district's
    walkthroughs: seconds at 2,000 schools, so once per data version, prepared with the plans' goals). The
    walkthrough form of every plan offers them, each walkthrough's form on the page: looked up once per run and
    shared read-only (no copy per form)."""
    return per_run("pl_practices", lambda: _pl_practices(data_version()))


@st.cache_data(show_spinner=False, max_entries=32)
@_imported
def _metric_groups(version: int, metric: str) -> list[str]:
    return aggregates.metric_groups(engine(), metric)


def metric_groups(metric: str) -> list[str]:
    """Student groups that have rows for a metric."""
    return _metric_groups(import_version(), metric)


def _identity(fn: Callable) -> str:
    """A function's name and code, the same on every rerun of its page (Streamlit keeps a page's bytecode)
    and different once its code changes."""
    code = fn.__code__
    return f"{code.co_filename}:{code.co_firstlineno}:{fn.__qualname__}:{hash(code)}"


@st.cache_data(show_spinner=False, max_entries=256)
def _cached_call(identity: str, args: tuple, kwargs: dict, _fn: Callable):
    return _then_release(_fn)(*args, **kwargs)


@st.cache_resource(show_spinner=False, max_entries=24)  # large tables: the memory bar (DESIGN §8)
def _shared_call(identity: str, args: tuple, kwargs: dict, _fn: Callable):
    return _then_release(_fn)(*args, **kwargs)


def cached(fn: Callable, counter: int | None = None) -> Callable:
    """Cache a pure computation on its arguments (callers pass the data version among them).

    Pages define their cached functions anew on every rerun; wrapping each in ``st.cache_data`` again
    would read and hash its source every time, so every function shares one cache, keyed on the
    function's identity (:func:`_identity`) and its arguments; the function itself is passed along
    unhashed, so each session runs its own. With `counter`, the first argument is that data version and the
    result is checked to belong to it (:func:`cached_read`).
    """
    identity = _identity(fn)
    compute = fn if counter is None else _checked_against(fn, counter)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        return _cached_call(identity, args, kwargs, compute)

    return call


def cached_read(fn: Callable) -> Callable:
    """:func:`cached` for a page's function that reads the database itself (workspace records), called with the
    data version every write bumps first: a write landing while it reads raises `storage.DataChanged` and
    the page runs again on the new data, as with the loaders, instead of caching newer rows under the old
    version beside the run's other reads."""
    return cached(fn, storage.CHANGES)


def kept_read(name: str) -> Callable[[Callable], Callable]:
    """:func:`cached_read` whose result is also kept in the database as `name` under the run's data version
    (:mod:`analytics.data.kept`): a server started later, another process of the deployment, or the command line
    after an import (:mod:`analytics.workspace.ahead`) keeps it, and a first view reads it instead of computing it.
    For a district-wide result of seconds that stores small (What changed's list: 24,000 rows, under a megabyte,
    at 10,000 schools). Its arguments after the version are positional and read the same in every process
    (dates, strings, None)."""

    def decorate(fn: Callable) -> Callable:
        identity = _identity(fn)
        checked = _checked_against(fn, storage.CHANGES)

        def load_or_compute(version: int, *args):
            code = kept.app_fingerprint()
            found = kept.load(engine(), name, args, version, code)
            if found is not None:
                return found
            made = checked(version, *args)  # belongs to `version`, or DataChanged
            kept.keep(engine(), name, args, version, code, made)
            return made

        @functools.wraps(fn)
        def call(*args):
            return _cached_call(identity, args, {}, load_or_compute)

        return call

    return decorate


def shared(fn: Callable) -> Callable:
    """Like :func:`cached` but without copying the result on each use: for large read-only tables.

    `st.cache_data` unpickles a fresh copy on every rerun (about a second for district-wide
    disproportionality at 2,000 schools); callers must not modify what this returns.
    """
    identity = _identity(fn)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        return _shared_call(identity, args, kwargs, fn)

    return call


DRAWN_ENTRIES = 128  # small: what one view draws


@st.cache_resource(show_spinner=False, max_entries=DRAWN_ENTRIES)
def _drawn_call(identity: str, args: tuple, kwargs: dict, _fn: Callable):
    return _fn(*args, **kwargs)


class _DrawnIndex:
    """The drawn views by (function, arguments), found by Python's own hashing: Streamlit hashes every
    argument of a cached call on each lookup, which costs more than drawing a small view. Filled from
    :func:`_drawn_call` (which computes each entry once) and as bounded; shared by sessions."""

    def __init__(self):
        self._entries: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple):
        with self._lock:
            value = self._entries.get(key, _MISSING)
            if value is not _MISSING:
                self._entries.move_to_end(key)
            return value

    def put(self, key: tuple, value) -> None:
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > DRAWN_ENTRIES:
                self._entries.popitem(last=False)


_MISSING = object()


@st.cache_resource(show_spinner=False)
def _drawn_index() -> _DrawnIndex:
    """One index per cache generation: clearing Streamlit's caches empties it too."""
    return _DrawnIndex()


def drawn(fn: Callable, counter: int | None = None) -> Callable:
    """Like :func:`shared`, for what a page draws from its cached results: the tables people read (links,
    formatting, renamed columns), finished charts and their summaries, made once per data version and view
    so a warm rerun only draws them. Kept apart from the large shared tables so these small entries never
    push those out. Callers pass every view parameter (and the share token where the view depends on it)
    and must not modify what this returns. Arguments Python can hash are looked up without Streamlit's
    hashing (:class:`_DrawnIndex`). With `counter`, the first argument is that data version and the result
    is checked to belong to it (:func:`drawn_read`).
    """
    identity = _identity(fn)
    compute = fn if counter is None else _checked_against(fn, counter)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        key = (identity, args, tuple(sorted(kwargs.items())))
        try:
            hash(key)
        except TypeError:  # e.g. a DataFrame among the arguments
            return _drawn_call(identity, args, kwargs, compute)
        index = per_run("drawn_index", _drawn_index)
        value = index.get(key)
        if value is _MISSING:
            value = _drawn_call(identity, args, kwargs, compute)
            index.put(key, value)
        return value

    return call


def drawn_read(fn: Callable) -> Callable:
    """:func:`drawn` for a view that reads workspace records itself (a school's plan, its cycles), called with
    the data version every write bumps first: as :func:`cached_read`, a write landing while it reads makes
    the page run again instead of keeping newer rows under the run's version; the next version is made anew,
    so a colleague's edit shows on the next rerun."""
    return drawn(fn, storage.CHANGES)


@st.cache_resource(show_spinner=False, max_entries=8)
@_imported
def _year_rows(version: int, year: int) -> pd.DataFrame:
    eng = engine()
    return metrics_with_suspension(loads.load_metrics(eng, years=[year]), loads.load_discipline(eng, years=[year]))


def year_rows(year: int) -> pd.DataFrame:
    """Every metric and group of every school for one year (district comparisons)."""
    return _year_rows(import_version(), year)


@st.cache_data(show_spinner=False, max_entries=4)
@_consistent
def _table_counts(version: int) -> dict[str, int]:
    return loads.table_counts(engine())


def table_counts() -> dict[str, int]:
    """Rows per imported table at the current data version."""
    return _table_counts(data_version())


@st.cache_data(show_spinner=False, max_entries=4)
@_consistent
def _tables_present(version: int) -> dict[str, bool]:
    return loads.tables_present(engine())


def tables_present() -> dict[str, bool]:
    """Whether each imported table holds a row at the current data version (no count of its rows)."""
    return _tables_present(data_version())


def require_data(*sources: str) -> None:
    """Stop the page with what to import when the schools or every one of `sources` are still empty."""
    from analytics.outputs.views import missing_data, missing_text

    missing = missing_data(tables_present(), sources)
    if not missing:
        return
    st.info(f"Nothing to show yet: {missing_text(missing)}.", icon=":material/database:")
    from pages.ui.staff import ROLE_KEY

    if st.session_state.get(ROLE_KEY) == "editor":
        try:
            st.page_link("pages/data.py", label="Import files on the Data page", icon=":material/upload_file:")
        except Exception:  # noqa: BLE001 - page run on its own (no navigation): say where instead
            st.markdown("Import files on the **Data** page.")
    else:
        st.markdown("An editor can import the district's files on the Data page.")
    st.stop()

