"""Computing ahead after an import: the work list, the background preparer and the progress on pages."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.data import loads, storage
from analytics.data.prepare import OPENING_VIEWS, Step, gaps_opening_metric, opening_metrics, work_list
from pages.ui import prepare
from tests.page_runner import run_page

ROOT = Path(__file__).resolve().parent.parent


# --- what to prepare ------------------------------------------------------------------------------


def test_work_list_puts_the_release_first_then_the_data_then_the_opening_views_drawn_from_it():
    steps = work_list(["math_growth", "read_proficient", "attendance"], [2023, 2025, 2024], has_discipline=True,
                      has_learning=True)
    assert [(s.kind, s.arg) for s in steps] == [("release", None), ("metric", "read_proficient"),
                                               ("metric", "math_growth"), ("gaps", "math_growth"), ("year", 2025),
                                               ("view", "changes"), ("discipline", None), ("rp", None), ("map", None),
                                               ("quality", None), ("view", "overview"), ("view", "gaps"), ("view", "discipline"),
                                               ("view", "learning"), ("view", "meeting"),
                                               ("profiles", 2025), ("rp_clusters", None)]
    # the per-school and per-cluster tables are made in the background, after every district view
    assert [s.kind for s in steps if s.background] == ["profiles", "rp_clusters"]
    assert all(s.label for s in steps)
    with_goals = work_list(["read_proficient"], [2025], has_discipline=False, has_live_shares=False, has_goals=True)
    # every goal's progress before the view that slices it (what changed), both before the other district
    # results; no discipline: no clusters' RP
    assert [(s.kind, s.arg) for s in with_goals] == [
        ("metric", "read_proficient"), ("gaps", "read_proficient"), ("year", 2025), ("goals", None),
        ("view", "changes"), ("map", None), ("quality", None), ("view", "overview"), ("view", "gaps"),
        ("view", "meeting"), ("profiles", 2025)]


def test_work_list_follows_the_data_present():
    assert work_list([], [], has_discipline=False) == []  # nothing imported yet: nothing to prepare
    only_discipline = work_list([], [2025], has_discipline=True)
    assert [(s.kind, s.arg) for s in only_discipline] == [  # no metrics: no gaps; no programmes: no learning
        ("release", None), ("year", 2025), ("view", "changes"), ("discipline", None), ("rp", None), ("map", None),
        ("quality", None), ("view", "overview"), ("view", "discipline"), ("view", "meeting"), ("profiles", 2025),
        ("rp_clusters", None)]
    assert opening_metrics(["attendance", "chronic_absence"]) == ["attendance"]  # none of the openers: the first
    assert gaps_opening_metric(["attendance", "math_growth"]) == "math_growth"
    assert gaps_opening_metric(["attendance", "chronic_absence"]) == "attendance"
    assert gaps_opening_metric([]) is None


def test_work_list_leaves_the_privacy_release_out_while_no_shared_link_can_be_opened():
    steps = work_list(["read_proficient"], [2025], has_discipline=True, has_live_shares=False)
    assert [s.kind for s in steps if s.kind != "view"] == ["metric", "gaps", "year", "discipline", "rp", "map",
                                                                   "quality", "profiles", "rp_clusters"]


def test_live_shares_are_neither_revoked_nor_expired(tmp_path, monkeypatch):
    from datetime import UTC, datetime, timedelta

    from analytics.access.sharing import create_share, has_live_shares, revoke_share
    from analytics.data import storage

    monkeypatch.setenv("SSIF_SHARE_SECRET", "test-secret-for-live-shares")
    engine = storage.get_engine(f"sqlite:///{tmp_path / 'live.db'}")
    storage.create_schema(engine)
    assert not has_live_shares(engine)
    token, _ = create_share(engine, "/", "district", expires_days=1)
    assert has_live_shares(engine)
    assert not has_live_shares(engine, now=datetime.now(UTC) + timedelta(days=2))  # expired
    revoke_share(engine, token)
    assert not has_live_shares(engine)


# --- the background preparer ------------------------------------------------------------------------


class Versions:
    """A data version that tests bump by hand, standing in for the database's."""

    def __init__(self):
        self.value = 1

    def __call__(self) -> int:
        return self.value


def _steps(version: int) -> list[Step]:
    return [Step("a", "first"), Step("b", "second"), Step("c", "third")]


def test_preparer_prepares_a_new_version_in_the_background_and_reports_progress():
    versions, ran, gate = Versions(), [], threading.Event()

    def run(step: Step, version: int) -> None:
        if step.kind == "b":
            gate.wait(5)  # hold the second step until the test has looked at the progress
        ran.append((version, step.kind))

    worker = prepare.Preparer(versions, _steps, run, poll_s=30)
    try:
        worker.notice(1)
        assert (1, "b") not in ran  # notice returned while the second step was still held: it never waits
        deadline = time.monotonic() + 60  # a time-out, not a timing: a loaded machine may be slow
        while worker.progress(1) is None or worker.progress(1).done < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        progress = worker.progress(1)
        assert (progress.done, progress.total, progress.label) == (1, 3, "second")
        assert prepare._progress_text(progress) == "Preparing the new data: 2 of 3"
        assert worker.progress(2) is None  # nothing is being prepared for another version
        gate.set()
        assert worker.wait_idle(60)
        assert ran == [(1, "a"), (1, "b"), (1, "c")] and worker.prepared == 1
        assert worker.progress(1) is None
        worker.notice(1)  # the same version again: nothing to do
        time.sleep(0.1)
        assert len(ran) == 3
    finally:
        worker.stop()


def test_a_background_step_runs_last_with_no_progress_shown():
    versions, ran, gate = Versions(), [], threading.Event()
    steps = [Step("a", "first"), Step("b", "second"), Step("warm", "each cluster", background=True)]

    def run(step: Step, version: int) -> None:
        if step.kind == "warm":
            gate.wait(60)  # held until the test has looked
        ran.append(step.kind)

    worker = prepare.Preparer(versions, lambda version: steps, run, poll_s=30)
    try:
        worker.notice(1)
        deadline = time.monotonic() + 60  # a time-out, not a timing
        while ran != ["a", "b"]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        while worker.progress(1) is not None:  # open pages see the district ready (and rerun once) ...
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert worker.prepared is None and "warm" not in ran  # ... while the background step still runs
        gate.set()
        assert worker.wait_idle(60) and ran == ["a", "b", "warm"] and worker.prepared == 1
    finally:
        gate.set()
        worker.stop()


def test_preparer_drops_a_replaced_version_and_prepares_the_newer_one():
    versions, ran = Versions(), []

    def run(step: Step, version: int) -> None:
        ran.append((version, step.kind))
        if (version, step.kind) == (1, "a"):
            versions.value = 2  # an import lands while version 1 is being prepared

    worker = prepare.Preparer(versions, _steps, run, poll_s=30)
    try:
        worker.notice(1)
        assert worker.wait_idle(60)
        assert ran == [(1, "a"), (2, "a"), (2, "b"), (2, "c")] and worker.prepared == 2
    finally:
        worker.stop()


def _in_pieces(ran: list):
    def run(step: Step, version: int):
        ran.append((step.kind, 1))
        yield
        ran.append((step.kind, 2))
    return run


def test_preparer_starts_no_piece_while_a_page_is_drawn_and_goes_on_after_it():
    versions, ran = Versions(), []
    worker = prepare.Preparer(versions, _steps, _in_pieces(ran), poll_s=30, pause_s=0.01)
    try:
        with worker.page_run():
            worker.notice(1)
            deadline = time.monotonic() + 60  # a time-out, not a timing: a loaded machine may be slow
            while worker.progress(1) is None:  # the thread has taken up version 1 ...
                assert time.monotonic() < deadline
                time.sleep(0.01)
            time.sleep(0.2)
            assert ran == [] and worker.pauses == 0  # ... and waits for the page before its first piece
        assert worker.wait_idle(60)
        assert ran == [("a", 1), ("a", 2), ("b", 1), ("b", 2), ("c", 1), ("c", 2)]
        assert worker.pauses == 1  # only the first piece met a page run
    finally:
        worker.stop()


def test_no_piece_starts_within_the_grace_after_a_page_run():
    """The first view after a start is drawn alone, and a page drawn during a piece is not followed by the next
    at once: its browser still fetches what the page drew from the server."""
    versions, started, ended = Versions(), [], []

    def run(step: Step, version: int):
        started.append((step.kind, 1, time.monotonic()))
        if step.kind == "b":
            with worker.page_run():  # a page drawn while this piece runs
                pass
            ended.append(time.monotonic())
        yield
        started.append((step.kind, 2, time.monotonic()))

    worker = prepare.Preparer(versions, _steps, run, poll_s=30, pause_s=0.01, grace_s=0.5)
    try:
        with worker.page_run():  # the first view after a start: the run reports its version, then draws
            worker.notice(1)
        ended.insert(0, time.monotonic())
        assert worker.wait_idle(60)
        starts = {(kind, piece): at for kind, piece, at in started}
        assert starts["a", 1] - ended[0] >= 0.5  # the browser had the server to itself for the grace
        assert starts["b", 2] - ended[1] >= 0.5
        pieces = {label: len(seconds) for label, seconds in worker.piece_seconds[1].items()}
        assert pieces == {"first": 2, "second": 2, "third": 2}  # each step's pieces are timed
    finally:
        worker.stop()


def test_preparer_waits_for_a_long_page_run_only_so_long(monkeypatch):
    monkeypatch.setattr(prepare, "MAX_WAIT_S", 0.05)
    versions, ran = Versions(), []
    worker = prepare.Preparer(versions, _steps, _in_pieces(ran), poll_s=30, pause_s=0.01)
    try:
        with worker.page_run():  # a page that never ends (stuck on a slow query)
            worker.notice(1)
            assert worker.wait_idle(10)
        assert len(ran) == 6 and worker.pauses == 6  # 3 steps x 2 pieces, each after a bounded wait
    finally:
        worker.stop()


def test_what_is_imported_ahead_waits_for_the_page_being_drawn_and_the_grace_after_it():
    worker = prepare.Preparer(Versions(), _steps, _in_pieces([]), poll_s=30, pause_s=0.01, grace_s=0.3)
    done = []
    waiting = threading.Thread(target=lambda: (worker.wait_for_pages(60), done.append(time.monotonic())))
    try:
        with worker.page_run():  # app.py asks for the imports inside the first page's run
            waiting.start()
            time.sleep(0.2)
            assert not done
            ended = time.monotonic()  # before the run's end is noted: the grace is measured from that
        waiting.join(60)
        assert done and done[0] - ended >= 0.3  # the browser had the server to itself for the grace
    finally:
        worker.stop()


def test_preparer_notices_an_import_made_elsewhere_by_polling():
    versions, ran = Versions(), []
    worker = prepare.Preparer(versions, _steps, lambda step, v: ran.append(v), poll_s=0.05)
    try:
        assert worker.wait_idle(60) and worker.prepared == 1
        versions.value = 7  # e.g. `python -m analytics import` on another machine: no script run reports it
        deadline = time.monotonic() + 60  # a time-out, not a timing: a loaded machine may be slow
        while worker.prepared != 7:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert ran.count(7) == 3
    finally:
        worker.stop()


def test_preparer_survives_a_failing_step_and_a_database_restart():
    from sqlalchemy import exc as sa_exc

    versions, calls = Versions(), []

    def run(step: Step, version: int) -> None:
        calls.append(version)
        if len(calls) == 1:
            raise ValueError("a bug in one step")

    def current() -> int:
        if len(calls) == 1 and versions.value == 1:
            versions.value = 2
            raise sa_exc.OperationalError("SELECT", {}, Exception("database restarting"))
        return versions()

    worker = prepare.Preparer(current, _steps, run, poll_s=0.05)
    try:
        assert worker.wait_idle(60) and worker.prepared == 2
    finally:
        worker.stop()


def test_a_failing_step_is_logged_and_skipped_and_the_version_still_counts_as_prepared(caplog):
    versions, ran = Versions(), []

    def run(step: Step, version: int) -> None:
        if step.kind == "b":
            raise ValueError("a bug in one step")
        ran.append((version, step.kind))

    worker = prepare.Preparer(versions, _steps, run, poll_s=0.05)
    try:
        assert worker.wait_idle(60)
        assert ran == [(1, "a"), (1, "c")]  # the step after the failing one was still prepared
        assert worker.prepared == 1 and worker.failed == {1: ["second"]}
        time.sleep(0.3)  # several polls: the failing step is not run again for the same version
        assert ran == [(1, "a"), (1, "c")] and worker.failed == {1: ["second"]}
        assert "preparing 'second' failed" in caplog.text
    finally:
        worker.stop()


def test_preparer_fills_the_same_caches_the_pages_read(sqlite_engine, monkeypatch, use_engine):
    """On a real database: after one preparation, the district-wide results are served from the cache."""
    import pandas as pd
    import streamlit as st

    from analytics.access.sharing import create_share
    from analytics.data import aggregates_discipline
    from analytics.data.demo import load_demo
    from analytics.stats.disproportionality import group_rates
    from pages.ui import (
        catalog_loaders,
        compact,
        discipline_loaders,
        metric_loaders,
        rp_loaders,
        school_loaders,
        viewer,
        workspace_loaders,
    )

    load_demo(sqlite_engine, schools=12)
    monkeypatch.setenv("SSIF_SHARE_SECRET", "test-secret-for-the-preparer")
    create_share(sqlite_engine, "/", "district")  # a live link: the privacy release is prepared too
    use_engine(lambda: sqlite_engine)
    monkeypatch.setattr(viewer, "engine", lambda: sqlite_engine)
    monkeypatch.setenv("DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))  # opening views
    monkeypatch.setattr(discipline_loaders, "CLUSTER_BLOCK", 1)  # every cluster's rates and run charts a block of its own
    st.cache_data.clear()
    st.cache_resource.clear()
    versions = storage.versions(sqlite_engine)
    version = versions.imports  # what the district-wide results are keyed on
    steps = prepare._plan(versions)
    worker = prepare.Preparer(lambda: storage.versions(sqlite_engine), prepare._plan, prepare._run, poll_s=30)
    try:
        worker.notice(versions)
        assert worker.wait_idle(300)  # the whole list, clusters included, on a busy machine
        assert worker.seconds[versions] >= 0 and len(steps) >= 5
        assert list(worker.step_seconds[versions]) == [s.label for s in steps]  # each step's seconds kept
        latest = max(catalog_loaders._years(version))
        schools = catalog_loaders._schools(version)
        clusters = sorted(schools["cluster"].unique())
        members = tuple(sorted(schools.loc[schools["cluster"] == clusters[0], "school_id"]))
        # A cluster's disproportionality is a slice of the district's, equal to the cluster's own computation.
        parts = list(aggregates_discipline.disproportionality_parts(sqlite_engine, list(members)))
        kept_flags, kept_ratios = discipline_loaders._flags_and_ratios(version, members)
        sliced = kept_flags, compact._as_read(kept_ratios)  # the suspension rows' texts are kept as categories
        for got, own in zip(sliced, (pd.concat([p[p["flagged"]] for p in parts]),
                                     pd.concat([p[p["outcome"] == "suspension"] for p in parts])), strict=True):
            pd.testing.assert_frame_equal(got.reset_index(drop=True), own.reset_index(drop=True))
        assert len(sliced[1]) and set(sliced[1]["school_id"]) <= set(members)
        for got, own in zip(discipline_loaders.flags_and_ratios(members, clusters[0]), sliced, strict=True):  # by position
            pd.testing.assert_frame_equal(got, own)
        # A cache hit never touches the database; a recomputation would, and fails here.
        use_engine(_no_database)
        monkeypatch.setattr(viewer, "engine", _no_database)
        for cluster in clusters:  # any one cluster's discipline view: its RP estimates were made ahead
            rp_loaders._rp_impact(version, cluster, None)
            rp_loaders._rp_beyond(version, cluster, None)
        profiles = school_loaders._school_profiles(version, latest)  # every school's first view slices its profile
        assert all(len(profiles.of(school)) for school in schools["school_id"])
        from pages.ui import school_views  # and what its opening view reads: findings, trend, discipline rows

        opening = school_views._opening_views(version, latest)
        assert all(opening.of(school).findings and opening.trend_rows(school) is not None
                   for school in schools["school_id"])
        by_cluster = discipline_loaders._cluster_discipline_sums(version)  # and its sums, sliced from every cluster's read
        assert sorted(by_cluster) == clusters and len(by_cluster[clusters[0]])
        opening_year = discipline_loaders._discipline_choices(version)[0][-1]  # and its rates by group, as its own
        blocks = discipline_loaders.cluster_blocks(list(by_cluster))
        assert len(blocks) > 1 and sum(blocks, ()) == tuple(by_cluster)
        pieces = worker.piece_seconds[versions]["discipline and disproportionality"]
        assert len(pieces) >= 2 * len(blocks)  # the rates and run charts were made a block per piece
        rates = discipline_loaders._cluster_group_rates(version, opening_year)
        assert list(rates) == list(by_cluster)  # in the order of the clusters' sums, as made in one go
        for cluster, (wide, shares) in rates.items():
            own = group_rates(aggregates_discipline.discipline_scope_sums(sqlite_engine, list(
                schools.loc[schools["cluster"] == cluster, "school_id"])), opening_year)
            pd.testing.assert_frame_equal(wide, own[0], check_exact=True)
            pd.testing.assert_frame_equal(shares, own[1], check_exact=True)
        for actions in (None, ("ISS", "OSS")):  # and its incidents per month
            assert set(discipline_loaders._cluster_incident_months(version, actions)) <= set(clusters)
        every, suspensions = (discipline_loaders._cluster_incident_months(version, a) for a in (None, ("ISS", "OSS")))
        charts = discipline_loaders._cluster_run_charts(version)  # and its run chart, as made from its own months
        assert list(charts) == list(every) and len(every) > discipline_loaders.CLUSTER_BLOCK
        for cluster, chart in charts.items():
            own = discipline_loaders._suspension_run_chart(every[cluster], suspensions.get(cluster, discipline_loaders._NO_MONTHS))
            pd.testing.assert_frame_equal(chart, own, check_exact=True)
        goals, progress = workspace_loaders._goal_progress(versions.changes)  # read from the workspace too
        assert len(goals) and set(progress["goal_id"]) == set(goals["goal_id"])
        workspace_loaders._pl_practices(versions.changes)
        for cached, args in [(viewer._release, (version,)), (discipline_loaders._flags_and_ratios, (version, None)),
                             (prepare._cluster_areas, (version,)), (catalog_loaders._cluster_members, (version,)),
                             (metric_loaders._district_figures, (version, latest)),
                             (catalog_loaders._data_quality, (version,)),
                             (metric_loaders._metric_slice, (version, "read_proficient", "ALL", None)),
                             (metric_loaders._gap_year_views, (version, "math_growth", latest, "others", "all", "all")),
                             (metric_loaders._gap_trend, (version, "math_growth", "all", "all")),
                             (rp_loaders._rp_impact, (version, "all", None)), (rp_loaders._rp_beyond, (version, "all", None)),
                             (discipline_loaders._incident_months, (version, ("ISS", "OSS"),
                                                         tuple(catalog_loaders._schools(version)["school_id"])))]:
            cached(*args)
    finally:
        worker.stop()
        st.cache_resource.clear()


def _no_database():
    raise AssertionError("recomputed: the preparer left this cache empty")


def _shown(at) -> dict:
    """What a page put on screen: its figures, tables, charts and text."""
    return {"metrics": [(m.label, m.value, m.proto.delta) for m in at.metric],
            "tables": [table.value.to_json(date_format="iso") for table in at.dataframe],
            "charts": [chart.proto.spec for chart in at.get("arrow_vega_lite_chart")],
            "text": [m.value for m in at.markdown] + [c.value for c in at.caption]}


@pytest.mark.usefixtures("on_demo")
def test_prepared_opening_views_show_what_unprepared_ones_show_and_build_nothing_more(monkeypatch, caplog):
    """Every opening view drawn ahead (with nobody watching) fills the caches the page then only reads: a new
    session's first view builds no chart, and shows the same figures as a first view that prepared nothing."""
    import logging

    import streamlit as st

    from pages.ui import (
        charts,
        data_versions,
    )

    unprepared = {page: _shown(run_page(page)) for page in OPENING_VIEWS}
    st.cache_data.clear()
    st.cache_resource.clear()
    version = storage.versions(data_versions.engine())
    steps = prepare._plan(version)
    assert sorted(s.arg for s in steps if s.kind == "view") == sorted(OPENING_VIEWS)  # the demo has every kind of data
    with caplog.at_level(logging.DEBUG, logger=prepare.log.name):
        timed = prepare.prepare_now(version)
    assert list(timed) == [s.label for s in steps] and all(t >= 0 for t in timed.values())  # each step timed
    assert not [r for r in caplog.records if "not prepared" in r.getMessage()]  # every view ran to its end
    built = []
    original = charts._build
    monkeypatch.setattr(charts, "_build", lambda *args: built.append(args[0]) or original(*args))
    for page in OPENING_VIEWS:
        assert _shown(run_page(page)) == unprepared[page], page
    assert built == []  # every chart of every opening view was made ahead


# --- on the page ------------------------------------------------------------------------------------


class HalfWay:
    """A preparer caught in the middle of version `version`'s list (or, `done`, with nothing left to do)."""

    def __init__(self, done: bool = False):
        self.noticed = []
        self.page_runs = 0
        self.in_run = self.noticed_in_run = False
        self.done = done

    def notice(self, version: int) -> None:
        self.noticed.append(version)
        self.noticed_in_run = self.in_run

    def progress(self, version: int):
        return None if self.done else prepare.Progress(version, 2, 6, "district rates: math_growth")

    def shows_progress(self, version: int) -> bool:
        return self.progress(version) is not None

    def wait_for_pages(self, timeout: float) -> bool:
        return False

    @contextlib.contextmanager
    def page_run(self):
        self.page_runs += 1
        self.in_run = True
        try:
            yield
        finally:
            self.in_run = False


def _served_app(monkeypatch, fake) -> AppTest:
    """app.py run as a server runs it, with `fake` as the server's preparer."""
    from streamlit.runtime.pages_manager import PagesManager

    original_init = PagesManager.__init__

    def v2_only(self, *args, **kwargs):  # as a server does once app.py has run (see tests/test_security.py)
        original_init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", v2_only)
    monkeypatch.setattr(prepare, "serving", lambda: True)
    monkeypatch.setattr(prepare, "preparer", lambda: fake)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception
    return at


@pytest.mark.usefixtures("on_demo")
def test_pages_show_how_far_the_preparation_is_and_still_draw(monkeypatch):
    fake = HalfWay()
    at = _served_app(monkeypatch, fake)
    assert fake.noticed  # the run reported the version it pinned
    assert fake.page_runs == 1  # the page was drawn with the preparer told to give way
    assert fake.noticed_in_run  # from before the run told it of the version: the shell's reads are not raced
    bars = at.sidebar.get("progress")
    assert bars and "Preparing the new data: 3 of 6" in bars[0].proto.text
    assert at.metric  # the page itself is drawn meanwhile


def _paths(node, path=()) -> list[tuple]:
    """Every element's position in the tree with its type: Streamlit draws an element anew when it moves."""
    children = getattr(node, "children", {})
    return [(path, getattr(node, "type", None))] + [p for i, child in children.items()
                                                     for p in _paths(child, path + (i,))]


@pytest.mark.usefixtures("on_demo")
def test_the_progress_note_moves_no_element_when_it_comes_or_goes(monkeypatch):
    """A note that came or went before other elements would shift them, and an open popover or form would
    close under the user's hands (a page rerun during the preparation, or the one after it)."""
    during = _served_app(monkeypatch, HalfWay())
    after = _served_app(monkeypatch, HalfWay(done=True))
    assert during.sidebar.get("progress") and not after.sidebar.get("progress")
    assert _paths(during.main) == _paths(after.main)
    assert len(during.sidebar.children) == len(after.sidebar.children)  # the note's slot is there either way


def test_apptest_is_not_a_server():
    """AppTest's runtime is a stand-in (``runtime.exists()`` is true under it): no preparer is told of its runs
    and app.py starts no background imports there; a bare run has no runtime at all."""
    at = AppTest.from_string("import streamlit as st\nfrom pages.ui.prepare import serving\nst.write(str(serving()))")
    at.run()
    assert not at.exception
    assert [m.value for m in at.markdown] == ["False"]
    assert prepare.serving() is False


@pytest.mark.usefixtures("on_demo")
def test_what_changed_is_drawn_ahead_under_its_page_key_from_the_prepared_goal_progress(monkeypatch):
    """The opening view of what changed is drawn right after every goal's progress, from that progress (no
    second computation), under the cache key its page reads: the page then computes neither."""
    from analytics.workspace import goals as goal_rules
    from analytics.workspace import views
    from pages.ui import (
        data_versions,
    )

    version = storage.versions(data_versions.engine())
    made = []
    view, progress = views.changes_view, goal_rules.goal_progress
    monkeypatch.setattr(views, "changes_view", lambda *a, **k: made.append("list") or view(*a, **k))
    monkeypatch.setattr(goal_rules, "goal_progress", lambda *a, **k: made.append("progress") or progress(*a, **k))
    for step in prepare._plan(version):
        if step.kind == "goals" or (step.kind == "view" and step.arg == "changes"):
            for _ in prepare._run(step, version):
                pass
    assert made == ["progress", "list"]
    at = run_page("changes")
    assert made == ["progress", "list"]  # the page read both
    assert any("with changes" in m.value for m in at.markdown)

@pytest.mark.usefixtures("on_demo")
def test_the_data_pages_first_view_finds_its_history_counts_and_audit_log_made_by_the_quality_step(monkeypatch):
    """After the data-quality step an editor's first view of the Data page reads nothing again from the database
    (quality counts, import history, row counts, the audit log as it opens) and shows what a first view that
    prepared nothing shows."""
    import streamlit as st

    from analytics.access import audit
    from analytics.data import quality
    from pages.ui import (
        data_versions,
    )

    tabs = ("Data quality", "Import history", "Audit log")
    unprepared = [_shown(run_page("data", tab=tab)) for tab in tabs]
    st.cache_data.clear()
    st.cache_resource.clear()
    version = storage.versions(data_versions.engine())
    steps = [step for step in prepare._plan(version) if step.kind == "quality"]
    assert len(steps) == 1
    for _ in prepare._run(steps[0], version):
        pass

    def fail(*_, **__):
        pytest.fail("read again on the page's first view")

    for module, name in ((loads, "load_imports"), (loads, "table_counts"), (audit, "load"),
                         (quality, "data_quality")):
        monkeypatch.setattr(module, name, fail)
    assert [_shown(run_page("data", tab=tab)) for tab in tabs] == unprepared


@pytest.mark.usefixtures("on_demo")
def test_the_data_pages_first_view_draws_its_import_form_and_reads_no_other_tab(monkeypatch):
    """The page opens on its Import tab and draws only that one: before the preparer has made them, its first
    view counts no rows and reads no import history or audit log (at 10,000 schools, seconds of counting over
    every row for tabs nobody has opened yet)."""
    import streamlit as st

    from analytics.access import audit
    from analytics.data import quality

    st.cache_data.clear()
    st.cache_resource.clear()
    read = []
    for module, name in ((loads, "load_imports"), (loads, "table_counts"), (audit, "load"),
                         (quality, "data_quality")):
        monkeypatch.setattr(module, name, lambda *_, name=name, **__: read.append(name))
    at = run_page("data")
    assert read == []
    assert len(at.get("file_uploader")) == 1 and at.selectbox(key="import_table").value
    assert not at.dataframe


@pytest.mark.usefixtures("on_demo")
def test_what_changed_reads_its_new_flags_from_the_prepared_discipline_flags(monkeypatch):
    """Once the discipline step has made the district's flagged rows, what changed (a date its first view did not
    draw) finds its new risk-ratio flags among them: no risk ratio is computed for it."""
    from datetime import date

    from analytics.workspace import changes as change_rules
    from analytics.workspace import views
    from pages.ui import (
        catalog_loaders,
        data_versions,
    )

    version = storage.versions(data_versions.engine())
    for step in prepare._plan(version):
        if step.kind == "discipline":
            for _ in prepare._run(step, version):
                pass
    expected = views.changes_view(data_versions.engine(), since=date(2024, 9, 1))
    assert (expected["change"] == "new_rr_flag").any()
    monkeypatch.setattr(views, "_dispro", lambda *a, **k: pytest.fail("risk ratios computed again"))
    at = run_page("changes", since="2024-09-01")
    assert change_rules.summary(expected, catalog_loaders.school_names()) in " ".join(m.value for m in at.markdown)


@pytest.mark.usefixtures("on_demo")
def test_what_changed_slices_the_districts_colours_and_the_prepared_monthly_suspensions(monkeypatch):
    """Once the district's list has coloured a meeting's year and the discipline step has counted every school's
    suspensions per month, another date of that year and a cluster's list colour and count nothing again: they
    slice the district's (the same list as their own)."""
    from datetime import date

    from analytics.data import aggregates_status
    from analytics.workspace import changes as change_rules
    from analytics.workspace import views
    from pages.ui import (
        catalog_loaders,
        data_versions,
    )

    version = storage.versions(data_versions.engine())
    for step in prepare._plan(version):
        if step.kind == "discipline":
            for _ in prepare._run(step, version):
                pass
    run_page("changes", since="2024-09-01")  # the district's list colours 2024 to the latest year
    cluster = sorted(catalog_loaders.schools()["cluster"].unique())[0]
    expected = {scope: views.changes_view(data_versions.engine(), cluster=None if scope == "all" else scope,
                                          since=date(2025, 3, 1)) for scope in ("all", cluster)}
    assert (expected["all"]["change"] == "status_worsened").any()

    def fail(*_, **__):
        pytest.fail("colours or monthly suspensions read again")

    monkeypatch.setattr(aggregates_status, "worsened_colours", fail)
    monkeypatch.setattr(views, "monthly_suspensions", fail)
    for scope, want in expected.items():
        at = run_page("changes", cluster=scope, since="2025-03-01")  # the meeting's year is 2024 again
        names = (catalog_loaders.school_names() if scope == "all"
                 else catalog_loaders.cluster_members(scope).set_index("school_id")["school_name"])
        assert change_rules.summary(want, names) in " ".join(m.value for m in at.markdown)

def test_a_failing_opening_view_is_logged_with_its_exception_and_counted_as_failed(monkeypatch, caplog):
    """A view that raises is not a view prepared in a fraction of a second: a warning with the exception, and
    the step among the version's failed ones."""
    import logging

    monkeypatch.setattr(prepare, "page_code", lambda path: compile("1 / 0", path, "exec"))
    with caplog.at_level(logging.WARNING, logger=prepare.log.name), pytest.raises(prepare.ViewNotPrepared):
        prepare._draw_opening_view("changes", storage.Versions(1, 1))
    record = next(r for r in caplog.records if "first view of changes not prepared" in r.getMessage())
    assert record.levelno == logging.WARNING and record.exc_info[0] is ZeroDivisionError

    def run(step: Step, version: int) -> None:
        if step.kind == "b":
            prepare._draw_opening_view("changes", storage.Versions(version, version))

    worker = prepare.Preparer(Versions(), _steps, run, poll_s=0.05)
    try:
        assert worker.wait_idle(60)
        assert worker.failed == {1: ["second"]} and "second" in worker.step_seconds[1]
    finally:
        worker.stop()
