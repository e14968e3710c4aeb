"""Restorative-practices impact: the district's, a cluster's or one RP school's estimates on suspensions and
on the outcomes beside them, made ahead by the preparer or started on threads as a view opens."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics.data import aggregates_discipline, loads
from analytics.learning.outcomes import RP_METRIC_OUTCOMES, rp_metric_impact, rp_metric_panels
from analytics.stats.rp_impact import (
    DistrictPanel,
    RPImpact,
    SchoolRows,
    comparison_scope,
    rp_impact,
    rp_impact_for_cluster,
    rp_impact_for_school,
)
from pages.ui.caching import ahead
from pages.ui.catalog_loaders import _schools
from pages.ui.data_versions import _imported, engine, import_version


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
    return aggregates_discipline.rp_outcome_rows(engine())


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
