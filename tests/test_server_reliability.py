"""The dashboard on PostgreSQL under concurrent sessions, imports and a database restart.

Small versions of `benchmarks/load_test.py`: a few browser sessions click through every shared view while
imports land (0 errors), and the app explains a database restart instead of failing, then recovers.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from analytics.data import loads, storage
from analytics.data.importer import import_bytes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import load_harness  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


@pytest.fixture(scope="module")
def pg_app(tmp_path_factory):
    bindir = load_harness.pg_bindir()
    if bindir is None or not os.path.exists(load_harness.CHROMIUM):
        if os.environ.get("SSIF_REQUIRE_POSTGRES") or os.environ.get("SSIF_REQUIRE_BROWSER"):
            pytest.fail("PostgreSQL server binaries or Debian's chromium are missing")
        pytest.skip("needs PostgreSQL server binaries and Debian's chromium")
    from analytics.data.demo import load_demo

    server = load_harness.PostgresServer(bindir).init()
    engine = storage.get_engine(server.url)
    load_demo(engine, schools=30, years=3)
    app = load_harness.start_app(server.url, log_path=str(tmp_path_factory.mktemp("app") / "server.log"))
    try:
        yield server, engine, app
    finally:
        app.close()
        engine.dispose()
        server.destroy()


def _discipline_file(engine) -> list[tuple[str, bytes]]:
    rows = loads.load_discipline(engine)
    some = rows[rows["school_id"].isin(sorted(rows["school_id"].unique())[:10])]
    return [("discipline.csv", some.to_csv(index=False).encode())]


def test_sessions_clicking_through_while_imports_land_see_no_error(pg_app):
    server, engine, app = pg_app
    version = storage.data_version(engine)
    result = load_harness.load_run(engine, app, sessions=3, rounds=1, files=_discipline_file(engine), deadline_s=240)
    assert result["views"] == 3 * 5
    assert result["errors"] == 0, (result["error_samples"], app.log_tail())
    assert set(result["errors_by_kind"]) == {"app_error", "navigation_timeout", "render_timeout", "browser_error"}
    assert result["cpu_cores_used"]["server"] > 0  # the meter saw the server work
    assert result["imports_during_run"] >= 1 and not result["import_failures"]
    assert storage.data_version(engine) >= version + result["imports_during_run"]


def test_two_imports_at_once_are_serialised(pg_app):
    import threading

    _, engine, _ = pg_app
    files = _discipline_file(engine)
    before = storage.data_version(engine)
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(import_bytes(engine, files))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [r.ok and r.written for r in reports] == [True, True, True]
    assert storage.data_version(engine) == before + 3  # each import bumped the version once, none lost


def test_a_read_overlapping_an_import_is_detected(pg_app):
    _, engine, _ = pg_app
    version = storage.data_version(engine)
    assert storage.read_at_version(engine, version, lambda: "fine") == "fine"
    with pytest.raises(storage.DataChanged):
        storage.read_at_version(engine, version, lambda: import_bytes(engine, _discipline_file(engine)))


def test_the_app_explains_a_database_restart_and_recovers(pg_app, browser):
    server, engine, app = pg_app
    url = load_harness.shared_views(engine, app.base)[0]
    page = browser.new_page()
    try:
        page.goto(url)
        page.wait_for_selector("[data-testid=stMetric]", timeout=60_000)
        engine.dispose()
        server.stop()
        try:
            page.goto(url)
            page.wait_for_selector("text=The database is not reachable right now", timeout=60_000)
            assert page.locator("[data-testid=stException]").count() == 0
        finally:
            server.start()
        page.goto(url)
        page.wait_for_selector("[data-testid=stMetric]", timeout=60_000)
        assert "not reachable" not in page.inner_text("body")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        page.close()
