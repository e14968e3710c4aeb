"""What the workspace pages read beside imported data: every goal's progress, what changed's worsened colours
and suspensions per month, and the professional-learning practices (cached per data version)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics.data import loads
from pages.ui.caching import _made
from pages.ui.catalog_loaders import _schools, _years
from pages.ui.data_versions import _consistent, _imported, data_version, engine, import_version
from pages.ui.state import per_run


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
