"""The district's schools and clusters, its metric catalogue, years and groups, and which tables hold data (cached
per import or data version, :mod:`pages.ui.data_versions`)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics.data import aggregates, catalog, loads, quality
from pages.ui.caching import _made
from pages.ui.compact import ClusterParts
from pages.ui.data_versions import _consistent, _imported, data_version, engine, import_version
from pages.ui.state import per_run


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


@st.cache_data(show_spinner=False, max_entries=32)
@_imported
def _metric_groups(version: int, metric: str) -> list[str]:
    return aggregates.metric_groups(engine(), metric)


def metric_groups(metric: str) -> list[str]:
    """Student groups that have rows for a metric."""
    return _metric_groups(import_version(), metric)


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
