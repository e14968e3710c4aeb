"""Two data versions: a workspace edit leaves every result read from imported tables alone cached, an import
does not; the preparer after an edit computes only what reads the workspace (DESIGN §8)."""

from __future__ import annotations

import threading
import time
from datetime import date

import numpy as np
import pandas as pd
import pytest
import streamlit as st

from analytics.data import aggregates, aggregates_discipline, loads, storage
from analytics.data.importer import import_bytes
from analytics.data.prepare import Step
from analytics.workspace import changes as change_rules
from analytics.workspace import records
from analytics.workspace import views as workspace
from pages.ui import (
    caching,
    catalog_loaders,
    compact,
    data_versions,
    discipline_loaders,
    metric_loaders,
    prepare,
    workspace_loaders,
)
from tests.page_runner import run_page


def _counted(monkeypatch, module, name: str) -> list:
    """Calls of ``module.name`` from now on (each call's arguments), the function still doing its work."""
    calls, original = [], getattr(module, name)
    monkeypatch.setattr(module, name, lambda *args, **kwargs: calls.append(args) or original(*args, **kwargs))
    return calls


def _words(at) -> str:
    """Every piece of text a page put on screen, tables included."""
    parts = [e.value for kind in ("title", "header", "subheader", "markdown", "caption") for e in getattr(at, kind)]
    return "\n".join(parts + [table.value.to_string() for table in at.dataframe])


def _import_history(at) -> list[str]:
    """The files the data page's import history lists."""
    return [name for table in at.dataframe if "file_name" in table.value.columns for name in table.value["file_name"]]


def _import_one_metric_row(engine) -> None:
    """A real import: one metric row of the district again, its numerator one higher."""
    row = loads.load_metrics(engine, metrics=["read_proficient"], groups=["ALL"]).dropna(subset=["numerator"])
    row = row.iloc[[0]][["school_id", "school_year", "metric", "student_group", "numerator", "denominator"]]
    row["numerator"] += 1
    row["value"] = 100.0 * row["numerator"] / row["denominator"]
    report = import_bytes(engine, [("metrics.csv", row.to_csv(index=False).encode())], who="data-office")
    assert report.ok, report.problems


def test_an_edit_leaves_the_cluster_view_cached_and_shows_at_once_on_plans_and_cycles(own_district, monkeypatch):
    engine = own_district
    schools = loads.load_schools(engine)
    school, cluster = schools["school_id"].iloc[0], schools["cluster"].iloc[0]
    slices = _counted(monkeypatch, aggregates, "metric_slice")
    figures = _counted(monkeypatch, aggregates, "district_figures")
    run_page("cluster", cluster=cluster, metric="read_proficient", group="ALL")
    run_page("school", school=school)
    # The metric's district rows: every year (the cluster's slices) and the view's two years (the district's
    # tables); the district figures the school page compares with.
    assert len(slices) == 2 and len(figures) == 1
    assert "G-EDIT" not in _words(run_page("plans", school=school))

    before = storage.versions(engine)
    records.create(engine, "school_goals", {"goal_id": "G-EDIT", "school_id": school, "metric": "read_proficient",
                                            "student_group": "ALL", "baseline_year": 2023, "baseline_value": 40.0, "target_year": 2027,
                                            "target_value": 99.0, "status": "active"}, "ana")
    records.create(engine, "pdsa_cycles", {"cycle_id": "C-EDIT", "school_id": school, "change_idea": "Daily reads",
                                           "start_date": date(2025, 1, 6)}, "ana")
    assert storage.versions(engine) == (before.changes + 2, before.imports)

    run_page("cluster", cluster=cluster, metric="read_proficient", group="ALL")  # a new session after the edit
    run_page("school", school=school)
    assert len(slices) == 2 and len(figures) == 1  # nothing read from imported tables was made again
    assert "G-EDIT" in _words(run_page("plans", school=school))  # the plan, its goals and cycles: at once
    goals, _ = workspace_loaders.goal_progress_of(school=school)
    assert "G-EDIT" in set(goals["goal_id"])
    assert run_page("cycles", cycle="C-EDIT").title[0].value == "Daily reads"

    _import_one_metric_row(engine)  # an import moves both versions: the cluster's view is made again
    assert storage.versions(engine) == (before.changes + 3, before.imports + 1)
    run_page("cluster", cluster=cluster, metric="read_proficient", group="ALL")
    assert len(slices) == 4


def test_an_import_of_goals_alone_leaves_the_import_version_and_shows_at_once_on_plans(own_district, monkeypatch):
    engine = own_district
    schools = loads.load_schools(engine)
    school, cluster = schools["school_id"].iloc[0], schools["cluster"].iloc[0]
    slices = _counted(monkeypatch, aggregates, "metric_slice")
    run_page("cluster", cluster=cluster, metric="read_proficient", group="ALL")
    assert "G-IMPORT" not in _words(run_page("plans", school=school))
    assert _import_history(run_page("data", tab="Import history")) == []
    assert len(slices) == 2

    before = storage.versions(engine)
    goal = {"goal_id": "G-IMPORT", "school_id": school, "metric": "read_proficient", "student_group": "ALL",
            "baseline_year": 2023, "baseline_value": 40.0, "target_year": 2027, "target_value": 99.0,
            "status": "active"}
    report = import_bytes(engine, [("school_goals.csv", pd.DataFrame([goal]).to_csv(index=False).encode())],
                          who="data-office")
    assert report.ok, report.problems
    assert storage.versions(engine) == (before.changes + 1, before.imports)

    assert "G-IMPORT" in _words(run_page("plans", school=school))  # the imported goal: at once
    assert "G-IMPORT" in set(workspace_loaders.goal_progress_of(school=school)[0]["goal_id"])
    assert _import_history(run_page("data", tab="Import history")) == ["school_goals.csv"]  # and in the import history
    run_page("cluster", cluster=cluster, metric="read_proficient", group="ALL")
    assert len(slices) == 2  # nothing read from imported tables was made again


def test_data_changed_fires_when_an_import_lands_during_a_metric_read_but_not_an_edit(own_district, monkeypatch):
    engine, original = own_district, aggregates.metric_slice
    st.session_state.pop(data_versions._PIN, None)  # no script run: each loader reads the versions when called

    def landing(write):
        def slice_then_write(*args, **kwargs):  # the loader's read, and a write landing before its check
            rows = original(*args, **kwargs)
            write()
            return rows
        monkeypatch.setattr(aggregates, "metric_slice", slice_then_write)

    landing(lambda: records.add_meeting(engine, "district", date(2025, 3, 4), "ana"))
    rows = metric_loaders.metric_slice("read_proficient", "ALL")  # a meeting recorded meanwhile: the rows still hold
    assert len(rows) and set(rows["student_group"]) == {"ALL"}
    landing(lambda: _import_one_metric_row(engine))
    with pytest.raises(storage.DataChanged, match="while it was being read"):
        metric_loaders.metric_slice("read_proficient", "BL")


def test_the_preparer_after_an_edit_computes_only_what_reads_the_workspace(own_district, monkeypatch):
    engine = own_district
    prepare.prepare_now(storage.versions(engine))  # every result of the imported data, made once
    goal = records.load(engine, "school_goals").iloc[0].to_dict()
    records.save(engine, "school_goals", {**goal, "status": "met"}, goal["version"], "ana")

    reads = _counted(monkeypatch, storage, "read_at_version")  # every cache miss of a checked loader is one
    progress = _counted(monkeypatch, workspace, "goals_progress")
    slices = _counted(monkeypatch, aggregates, "metric_slice")
    after_edit = storage.versions(engine)
    prepare.prepare_now(after_edit)
    counters = [args[3] if len(args) > 3 else storage.CHANGES for args in reads]
    assert storage.IMPORTS not in counters  # no result of the imported data was made again
    assert len(progress) == 1 and slices == []  # every goal's progress once (its step); no metric read
    goals, _ = workspace_loaders._goal_progress(after_edit.changes)
    assert goals.set_index("goal_id").loc[goal["goal_id"], "status"] == "met"


class _Versions:
    """Both counters, bumped by hand as an edit (`edit`) or an import (`load`) would."""

    def __init__(self):
        self.value = storage.Versions(1, 1)

    def __call__(self) -> storage.Versions:
        return self.value

    def edit(self) -> None:
        self.value = storage.Versions(self.value.changes + 1, self.value.imports)

    def load(self) -> None:
        self.value = storage.Versions(self.value.changes + 1, self.value.imports + 1)


def test_no_progress_is_shown_while_an_edit_is_prepared_and_it_is_after_an_import():
    versions, seen, gate, ran = _Versions(), [], threading.Event(), []

    def run(step: Step, version) -> None:
        ran.append(version)
        gate.wait(10)

    worker = prepare.Preparer(versions, lambda version: [Step("a", "A"), Step("b", "B")], run, poll_s=30,
                              quiet=prepare.same_imports)
    try:
        for change in (None, versions.edit, versions.load):
            if change is not None:
                change()
            gate.clear()
            worker.notice(versions())
            while not ran or ran[-1] != versions():  # the thread has taken up the new version
                threading.Event().wait(0.01)
            seen.append(worker.progress(versions()))
            gate.set()
            assert worker.wait_idle(10)
    finally:
        worker.stop()
        gate.set()
    first, after_edit, after_import = seen
    assert (first.done, first.total) == (0, 2)  # the server's first version: shown
    assert after_edit is None  # an edit: the list runs with no note
    assert (after_import.version, after_import.total) == (storage.Versions(3, 2), 2)


def test_a_run_that_wakes_the_preparer_holds_the_note_before_the_thread_begins_but_not_for_an_edit():
    """The run that first sees a new import only wakes the thread; without a note slot filled in that run the
    progress would show only after the user's next click. An edit's run holds no note at all."""
    versions, gate, begun = _Versions(), threading.Event(), threading.Event()

    def run(step: Step, version) -> None:
        begun.set()
        gate.wait(10)

    worker = prepare.Preparer(versions, lambda version: [Step("a", "A")], run, poll_s=30,
                              quiet=prepare.same_imports)
    try:
        worker.notice(versions())  # as a page run does, before it asks
        assert worker.shows_progress(versions())  # new, the thread woken but perhaps not begun
        assert begun.wait(10) and worker.shows_progress(versions())  # begun, with progress to show
        gate.set()
        assert worker.wait_idle(10)
        assert not worker.shows_progress(versions())  # prepared
        versions.edit()
        worker.notice(versions())
        assert not worker.shows_progress(versions())  # an edit: quiet
        gate.clear()
        versions.load()
        worker.notice(versions())
        assert worker.shows_progress(versions())  # an import: shown from the run that sees it
    finally:
        gate.set()
        worker.stop()


def test_the_note_shows_while_the_list_is_made_and_stops_after_the_shown_steps_or_for_a_replaced_version():
    """The note's timer stops when `shows_progress` turns false, so it must stay true while the thread makes the
    version's list (no step has progress yet) and turn false for good once only background steps are left, or
    once a newer import replaced the version the note was drawn for."""
    versions, planning, plan_gate, step_gate, in_background = _Versions(), threading.Event(), threading.Event(), \
        threading.Event(), threading.Event()

    def plan(version) -> list[Step]:
        planning.set()
        plan_gate.wait(10)
        return [Step("a", "A"), Step("b", "B", background=True)]

    def run(step: Step, version) -> None:
        if step.background:
            in_background.set()
        step_gate.wait(10)

    worker = prepare.Preparer(versions, plan, run, poll_s=30, quiet=prepare.same_imports)
    try:
        first = versions()
        worker.notice(first)
        assert planning.wait(10) and worker.progress(first) is None
        assert worker.shows_progress(first)  # the list is being made: no progress yet, still shown
        plan_gate.set()
        step_gate.set()
        assert in_background.wait(10)
        assert not worker.shows_progress(first)  # only background steps left
        assert worker.wait_idle(10) and not worker.shows_progress(first)

        step_gate.clear()
        versions.load()
        second = versions()
        worker.notice(second)
        assert _until(lambda: worker.progress(second) is not None)
        versions.load()  # a newer import lands while the second is prepared
        third = versions()
        worker.notice(third)
        assert worker.shows_progress(third)  # noticed, not begun yet
        step_gate.set()  # the thread finds the second replaced and prepares the third
        assert worker.wait_idle(10) and worker.prepared == third
        assert not worker.shows_progress(second)  # replaced: its note stops
    finally:
        plan_gate.set()
        step_gate.set()
        worker.stop()


def _until(check, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not check():
        time.sleep(0.01)
    return check()


def test_a_run_reporting_an_older_version_late_leaves_the_newer_versions_note_shown():
    """A page run reads its version, then reports it: one that read it just before an import can report it after a
    run that saw the import did. The newer version's note must go on showing while its list is made (its timer
    stops once `shows_progress` turns false)."""
    versions, planning, gate = _Versions(), threading.Event(), threading.Event()

    def plan(version) -> list[Step]:
        planning.set()
        gate.wait(10)
        return [Step("a", "A")]

    worker = prepare.Preparer(versions, plan, lambda step, version: None, poll_s=30, quiet=prepare.same_imports)
    try:
        older = versions()
        versions.load()
        newer = versions()
        worker.notice(newer)
        assert planning.wait(10) and worker.progress(newer) is None  # the thread makes the newer version's list
        worker.notice(older)  # the late report of a run that read its version before the import
        assert worker.shows_progress(newer)
        assert not worker.shows_progress(older)  # replaced
        gate.set()
        assert worker.wait_idle(10) and not worker.shows_progress(newer)
    finally:
        gate.set()
        worker.stop()


def test_the_note_stops_when_the_list_of_work_cannot_be_made():
    """A version whose list fails (logged; retried at the next poll) has nothing being prepared: its note clears and
    its timer stops rather than say "Preparing the new data" until the user's next click."""
    versions, planned = _Versions(), threading.Event()

    def plan(version) -> list[Step]:
        planned.set()
        raise RuntimeError("no list")

    worker = prepare.Preparer(versions, plan, lambda step, version: None, poll_s=30, quiet=prepare.same_imports)
    try:
        first = versions()
        worker.notice(first)
        assert worker.shows_progress(first)  # woken, not begun
        assert planned.wait(10)
        assert _until(lambda: not worker.shows_progress(first))
        assert worker.prepared is None
    finally:
        worker.stop()


def test_a_page_function_that_reads_records_is_checked_against_its_data_version(sqlite_engine, monkeypatch):
    """A page's own cached read (`ui.cached_read`) keyed on the data version: a write landing while it reads
    raises `DataChanged` (the page runs again) and caches nothing, rather than keeping newer rows under the
    version the run pinned; a read with no write meanwhile is cached as `ui.cached` caches."""
    monkeypatch.setattr(data_versions, "engine", lambda: sqlite_engine)  # what checks the version reads
    st.cache_data.clear()
    calls = []

    def goals(version: int, write: bool) -> int:
        calls.append(version)
        if write:  # someone saves a record while this reads
            with sqlite_engine.begin() as conn:
                storage.bump_version(conn)
        return len(calls)

    read = caching.cached_read(goals)
    version = storage.data_version(sqlite_engine)
    with pytest.raises(storage.DataChanged):
        read(version, True)
    with pytest.raises(storage.DataChanged):  # nothing was cached for it: the old version is not read again
        read(version, True)
    assert calls == [version]
    now = storage.data_version(sqlite_engine)
    assert read(now, False) == read(now, False) == 2  # computed once, then a cache hit
    assert calls == [version, now]


def test_an_edit_while_an_import_is_prepared_keeps_the_import_s_note_going():
    """A colleague saves a goal while an import is being prepared: the list starts again under the new data
    version, which differs only by the edit. A page opened on the import's version follows that preparation
    (its progress, then no note once it is done) instead of going blank and stopping its timer mid-way."""
    versions, permits = _Versions(), threading.Semaphore(0)

    def run(step: Step, version) -> None:
        permits.acquire(timeout=10)

    worker = prepare.Preparer(versions, lambda version: [Step("a", "A"), Step("b", "B")], run, poll_s=30,
                              quiet=prepare.same_imports)
    try:
        for _ in range(2):
            permits.release()
        worker.notice(versions())
        assert worker.wait_idle(10)
        versions.load()
        imported = versions()
        worker.notice(imported)
        assert _until(lambda: worker.progress(imported) is not None)  # in the import's first step
        versions.edit()
        edited = versions()
        worker.notice(edited)
        permits.release()  # the first step ends; the thread finds the edit and starts the list again under it
        assert _until(lambda: worker.progress(edited) is not None and worker.progress(edited).version == edited)
        assert worker.progress(imported) == worker.progress(edited)  # the import's page shows the same progress
        assert worker.shows_progress(imported) and worker.shows_progress(edited)
        for _ in range(4):
            permits.release()
        assert worker.wait_idle(10) and worker.prepared == edited
        assert not worker.shows_progress(imported) and not worker.shows_progress(edited)
    finally:
        for _ in range(8):
            permits.release()
        worker.stop()


def test_rows_kept_with_their_texts_as_categories_read_back_as_they_were_missing_texts_included():
    """The district's suspension rows are kept with their texts as categories (memory) and read back for the
    pages: the same frame, a missing text still missing (not the text "nan")."""
    rows = pd.DataFrame({"school_id": ["A-1", "B'2", None], "outcome": ["oss", "iss", "oss"], "ratio": [1.5, 2.0, 3.25]})
    kept, _ = compact.texts_as_categories(rows)
    assert isinstance(kept["school_id"].dtype, pd.CategoricalDtype)
    read = compact._as_read(kept)
    pd.testing.assert_frame_equal(read, rows)
    assert read["school_id"].isna().tolist() == [False, False, True]


def test_profile_numbers_kept_narrowed_read_back_as_they_were():
    """Every school's profile keeps a block's one year and the district's few figures as categories and whole counts
    as 32-bit integers (memory); a school's rows read back are the very same frame, missing values and -0.0 kept."""
    n = 64
    rows = pd.DataFrame({"school_id": [f"S{i // 4}" for i in range(n)], "school_year": [2025] * n,
                         "denominator": [float(10 * i) for i in range(n)],
                         "district_value": [np.nan if i % 8 == 0 else 50.5 for i in range(n)],
                         "vs_district": [-0.0 if i == 3 else i / 7 for i in range(n)]})
    kept, types = compact.numbers_compact(rows)
    assert isinstance(kept["school_year"].dtype, pd.CategoricalDtype) and kept["denominator"].dtype == np.int32
    assert isinstance(kept["district_value"].dtype, pd.CategoricalDtype) and kept["vs_district"].dtype == np.float64
    pd.testing.assert_frame_equal(compact.rows_as_read(kept, slice(0, n), types), rows)
    pd.testing.assert_frame_equal(compact.rows_as_read(kept, slice(8, 12), types),
                                  rows.iloc[8:12].reset_index(drop=True))
    assert np.signbit(compact.rows_as_read(kept, slice(3, 4), types)["vs_district"].iloc[0])


_PINNED_PAGE = """\
from pages import ui
from pages.ui.prepare import page_code

ui.pin_data_version()
exec(page_code({path!r}), {{"__name__": "__main__", "__file__": {path!r}}})
"""


def _pinned_app(tmp_path, page: str, **params):
    """A page run as app.py runs it: the data versions pinned first (one SELECT), then the page's code."""
    from streamlit.testing.v1 import AppTest

    from tests.page_runner import PAGES

    script = tmp_path / f"pinned_{page}.py"
    script.write_text(_PINNED_PAGE.format(path=str(PAGES / f"{page}.py")))
    at = AppTest.from_file(str(script), default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    return at


def test_a_warm_rerun_of_a_plan_and_of_a_school_s_cycles_reads_the_data_versions_alone(own_district, tmp_path,
                                                                                      monkeypatch):
    """What the plans and cycles pages show of one school is made once per data version: a warm rerun sends the
    database one statement (the run's data versions) and makes no goals list again; a colleague's edit
    bumps the version, so the next rerun shows it."""
    from sqlalchemy import event

    from analytics.workspace import goals as goal_rules

    engine = own_district
    school = "100008"  # three cycles, and goals and walkthroughs of its own
    assert len(records.load(engine, "pdsa_cycles", school_id=[school])) == 3
    listed = _counted(monkeypatch, goal_rules, "latest_progress")
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda conn, cursor, statement, *rest: statements.append(statement))
    plans, cycles = _pinned_app(tmp_path, "plans", school=school), _pinned_app(tmp_path, "cycles", school=school)
    for at in (plans, cycles):
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        statements.clear()
        at.run()
        assert len(statements) == 1 and "data_version" in statements[0], statements
    assert len(listed) == 1  # the plan's goals list: on the first run alone

    records.create(engine, "pdsa_cycles", {"cycle_id": "C-COLLEAGUE", "school_id": school,
                                           "change_idea": "Morning check-ins", "start_date": date(2025, 2, 3)}, "ana")
    records.create(engine, "school_goals", {"goal_id": "G-COLLEAGUE", "school_id": school, "metric": "read_proficient",
                                            "student_group": "ALL", "baseline_year": 2023, "baseline_value": 40.0,
                                            "target_year": 2027, "target_value": 99.0, "status": "active"}, "ana")
    assert "C-COLLEAGUE" in _words(cycles.run())
    assert "G-COLLEAGUE" in _words(plans.run())
    assert len(listed) == 2


def test_a_plan_s_walkthrough_forms_look_up_the_programme_practices_once_per_run(own_district, tmp_path, monkeypatch):
    """Each of the latest walkthroughs has its own form, and each form offers the programme practices: they are
    looked up once per run and shared, not copied out of Streamlit's cache for every form."""
    school = "100001"  # 56 walkthroughs: the latest five have their forms, and there is the new one's
    assert len(records.load(own_district, "walkthroughs", school_id=[school])) > 5
    lookups = _counted(monkeypatch, workspace_loaders, "_pl_practices")
    at = _pinned_app(tmp_path, "plans", school=school)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert sum(1 for b in at.button if b.label == "Save changes to this walkthrough") == 5
    assert len(lookups) == 1
    at.run()
    assert len(lookups) == 2


def test_a_schools_goals_before_the_districts_are_made_are_computed_from_its_own_and_equal_their_slice(on_demo,
                                                                                                    monkeypatch):
    every_goal = _counted(monkeypatch, workspace_loaders, "_goal_progress")
    all_goals, all_progress = workspace.goals_progress(on_demo)
    school = all_goals["school_id"].value_counts().index[0]  # the school with the most goals
    goals, progress = workspace_loaders.goal_progress_of(school=school)
    assert every_goal == []  # one school's plan computed no other school's progress
    mine = all_goals["school_id"] == school
    assert mine.sum() >= 2 and len(progress) > mine.sum()
    pd.testing.assert_frame_equal(goals, all_goals[mine].reset_index(drop=True))
    pd.testing.assert_frame_equal(progress, all_progress[all_progress["goal_id"].isin(set(goals["goal_id"]))]
                                  .reset_index(drop=True))
    workspace_loaders._goal_progress(data_versions.data_version())  # the preparer makes every goal's: then a slice of them
    sliced_goals, sliced_progress = workspace_loaders.goal_progress_of(school=school)
    assert len(every_goal) == 2
    pd.testing.assert_frame_equal(sliced_goals, goals)
    pd.testing.assert_frame_equal(sliced_progress, progress)


def test_a_clusters_ratios_before_the_districts_are_made_are_computed_from_its_schools_and_equal_their_slice(on_demo,
                                                                                                        monkeypatch):
    every_school = _counted(monkeypatch, discipline_loaders, "_district_flags_and_ratios")
    schools = loads.load_table(on_demo, "schools")
    cluster = schools["cluster"].value_counts().index[0]
    ids = catalog_loaders.cluster_members(cluster)["school_id"].tolist()
    year = discipline_loaders.discipline_choices()[0][-1]
    scoped = discipline_loaders.flags_and_ratios(ids, cluster)
    scoped_year = discipline_loaders.year_flags_and_ratios(year, ids, cluster)
    assert every_school == []  # one cluster's first view computed no other school's ratios
    district = discipline_loaders.flags_and_ratios()  # the preparer makes every school's: then the cluster's are a slice
    assert len(every_school) == 1
    for mine, every, of_cluster in zip(scoped, district, discipline_loaders.flags_and_ratios(ids, cluster), strict=True):
        sliced = every[every["school_id"].isin(set(ids))].reset_index(drop=True)
        assert len(sliced) and set(sliced["school_id"]) <= set(ids)
        pd.testing.assert_frame_equal(mine.reset_index(drop=True), sliced)
        pd.testing.assert_frame_equal(of_cluster.reset_index(drop=True), sliced)
    for mine, every in zip(scoped_year, discipline_loaders.year_flags_and_ratios(year, ids, cluster), strict=True):
        pd.testing.assert_frame_equal(mine.reset_index(drop=True), every.reset_index(drop=True))


def test_a_clusters_year_before_the_districts_are_made_reads_the_years_its_flags_span_and_equals_their_slice(
        on_demo, monkeypatch):
    """A cluster's flagged and suspension rows of one year before every school's are made: read from its rows and
    the district's risks of that year and the two before it alone (every year's risks were 3 s of the database's
    time at 10,000 schools), the same rows as that year's of every school's, flags included."""
    from analytics.stats.disproportionality import disproportionality

    risks, rows = [], []
    original_risks, original_rows = aggregates_discipline.district_risks, loads.load_discipline
    monkeypatch.setattr(aggregates_discipline, "district_risks",
                        lambda *a, **k: risks.append(a[1:]) or original_risks(*a, **k))
    monkeypatch.setattr(loads, "load_discipline", lambda *a, **k: rows.append(k.get("years")) or original_rows(*a, **k))
    schools = loads.load_schools(on_demo)
    every = disproportionality(original_rows(on_demo))  # a cluster with a flagged school, to compare flags too
    cluster = schools.set_index("school_id")["cluster"][every.loc[every["flagged"], "school_id"]].value_counts().index[0]
    ids = catalog_loaders.cluster_members(cluster)["school_id"].tolist()
    years = discipline_loaders.discipline_choices()[0]
    own = {year: discipline_loaders.year_flags_and_ratios(year, ids, cluster) for year in years[-2:]}
    assert sorted(risks) == [(tuple(range(year - 2, year + 1)),) for year in years[-2:]]
    assert rows and all(read in [tuple(range(year - 2, year + 1)) for year in years[-2:]] for read in rows)
    assert ("flags", data_versions.import_version()) not in caching._made()
    discipline_loaders.flags_and_ratios()  # the preparer makes every school's: then the cluster's year is a slice of them
    assert any(len(flagged) for flagged, _ in own.values())
    for year, mine in own.items():
        for got, sliced in zip(mine, discipline_loaders.year_flags_and_ratios(year, ids, cluster), strict=True):
            assert set(sliced["school_id"]) <= set(ids)
            pd.testing.assert_frame_equal(got.reset_index(drop=True), sliced.reset_index(drop=True))


@pytest.mark.parametrize("metric", ["read_proficient", "suspension_rate"])
def test_a_clusters_rows_and_schools_before_the_districts_are_split_are_its_own_and_equal_their_slice(on_demo,
                                                                                                    monkeypatch,
                                                                                                    metric):
    every_slice = _counted(monkeypatch, metric_loaders, "_cluster_slices")
    every_member = _counted(monkeypatch, catalog_loaders, "_cluster_members")
    schools = loads.load_schools(on_demo)
    cluster = schools["cluster"].value_counts().index[0]
    members = catalog_loaders.cluster_members(cluster)
    rows, sums = metric_loaders.cluster_slice(metric, "ALL", cluster)
    assert every_slice == [] and every_member == []  # one cluster's first view split no other cluster's
    version = data_versions.import_version()
    assert not {("slices", version, metric, "ALL"), ("members", version)} & caching._made()
    ids = set(schools.loc[schools["cluster"] == cluster, "school_id"])
    assert set(members["school_id"]) == ids and set(rows["school_id"]) == ids
    assert sums["n_rows"].sum() == len(rows) and sums["numerator"].sum() == rows["numerator"].sum()
    catalog_loaders._cluster_members(version)  # the preparer splits every cluster's: then the cluster's are a slice
    metric_loaders._cluster_slices(version, metric, "ALL")
    assert len(every_slice) == 1 and len(every_member) == 1
    pd.testing.assert_frame_equal(catalog_loaders.cluster_members(cluster), members)
    for mine, sliced in zip((rows, sums), metric_loaders.cluster_slice(metric, "ALL", cluster), strict=True):
        pd.testing.assert_frame_equal(mine, sliced)


def test_a_clusters_changes_before_the_districts_goals_are_made_count_its_own_and_list_what_the_district_s_give(
        on_demo, monkeypatch):
    every_goal = _counted(monkeypatch, workspace_loaders, "_goal_progress")
    schools = loads.load_schools(on_demo)
    all_goals, all_progress = workspace.goals_progress(on_demo)
    cluster = schools.loc[schools["school_id"].isin(set(all_goals["school_id"])), "cluster"].value_counts().index[0]
    goals, progress = workspace_loaders.goal_progress_of(cluster)
    cold = run_page("changes", cluster=cluster)
    assert every_goal == []  # neither the cluster's goals nor its list computed another school's progress
    ids = set(schools.loc[schools["cluster"] == cluster, "school_id"])
    mine = all_goals[all_goals["school_id"].isin(ids)]
    assert len(mine) >= 2 and len(progress) > len(mine)
    pd.testing.assert_frame_equal(goals.sort_values("goal_id", ignore_index=True),
                                  mine.sort_values("goal_id", ignore_index=True))
    pd.testing.assert_frame_equal(progress, all_progress[all_progress["goal_id"].isin(set(mine["goal_id"]))]
                                  .reset_index(drop=True))
    workspace_loaders._goal_progress(data_versions.data_version())  # the preparer makes every goal's: then a slice of them
    pd.testing.assert_frame_equal(workspace_loaders.goal_progress_of(cluster)[1], progress)
    assert len(every_goal) == 2
    since = workspace.last_meeting(on_demo, cluster)
    listed = workspace.changes_view(on_demo, cluster=cluster, since=since,
                                    progress=workspace_loaders.goal_progress_of(cluster)[1])  # the district's, sliced
    assert (listed["change"] == "goal_off_track").any()
    names = catalog_loaders.cluster_members(cluster).set_index("school_id")["school_name"]
    assert change_rules.summary(listed, names) in " ".join(m.value for m in cold.markdown)
    assert cold.dataframe[0].value["detail"].tolist() == listed["detail"].tolist()
