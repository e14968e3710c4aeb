"""Real-browser editing of the workspace: a goal and a PDSA cycle created, edited and deleted; the goal still
there after the app restarts; two editors saving the same goal. Runs its own server on a private database
so the shared demo stays as it is."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from analytics.data import bulk_write, loads, storage
from analytics.data.demo import build_demo
from analytics.workspace import records
from tests.browser_settle import settle

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import load_harness  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def workspace_db(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('ws') / 'ws.db'}"
    engine = storage.get_engine(url)
    bulk_write.replace_all(engine, build_demo(schools=16, years=4, seed=5))
    return url


class Server:
    """The app on the private database; `restart()` stops it and starts a fresh process."""

    def __init__(self, db_url: str):
        self.db_url = db_url
        self.app = load_harness.start_app(db_url, timeout=60)

    @property
    def base(self) -> str:
        return self.app.base

    def restart(self) -> None:
        self.app.close()
        self.app = load_harness.start_app(self.db_url, timeout=60)


@pytest.fixture(scope="module")
def app(workspace_db):
    server = Server(workspace_db)
    yield server
    server.app.close()


def _until(check, timeout: float = 20.0):
    """Poll the database until `check()` is true (the browser's click is handled asynchronously)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.3)
    assert check()


def _params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def _ready(page, text: str):
    """Until `text` is drawn and the script run that draws it has finished."""
    settle(page, f"text={text}")


def _fill_form(page, fields: dict[str, str]) -> None:
    """Type into a form's fields and check they kept it before it is submitted. A field the browser draws before
    it has loaded that widget's code is drawn anew once the code arrives, and what was typed is lost; on a
    busy machine the code can arrive seconds after the page."""
    for _ in range(3):
        for label, value in fields.items():
            page.get_by_label(label, exact=True).fill(value)
        page.wait_for_timeout(500)
        kept = {label: page.get_by_label(label, exact=True).input_value() for label in fields}
        if all(_same(kept[label], value) for label, value in fields.items()):
            return
    assert kept == fields


def _same(shown: str, typed: str) -> bool:
    try:
        return float(shown) == float(typed)  # a number field shows 99 as 99.0
    except ValueError:
        return shown == typed


def _school(db_url: str) -> str:
    return loads.load_schools(storage.get_engine(db_url))["school_id"].iloc[0]


def test_goal_created_edited_kept_across_a_restart_and_deleted(page, app, workspace_db):
    engine = storage.get_engine(workspace_db)
    school = _school(workspace_db)
    page.goto(f"{app.base}/plans?school={school}")
    _ready(page, "School Performance Plan")
    page.get_by_text("New goal").click()
    _fill_form(page, {"Goal id": "G-BROWSER", "Target year": "2027", "Target value": "99"})
    page.get_by_role("button", name="Create goal").click()
    page.wait_for_url("**goal=G-BROWSER**", timeout=30_000)
    _ready(page, "Reading proficient, All students: 99.0% by 2027")
    shot = Path("/tmp/shots/workspace")
    shot.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot / "goal.png"), full_page=True)
    assert records.get(engine, "school_goals", "G-BROWSER")["target_value"] == 99.0

    page.get_by_label("Strategy", exact=True).fill("Guided reading every day")
    page.get_by_role("button", name="Save goal").click()
    _until(lambda: records.get(engine, "school_goals", "G-BROWSER")["version"] == 2)
    assert records.get(engine, "school_goals", "G-BROWSER")["strategy"] == "Guided reading every day"

    app.restart()  # a new server process reads the same database
    page.goto(f"{app.base}/plans?school={school}&goal=G-BROWSER")
    _ready(page, "Reading proficient, All students: 99.0% by 2027")
    assert page.get_by_text("Strategy: Guided reading every day").count() >= 1

    page.get_by_role("button", name="Delete this goal").click()
    page.wait_for_url(lambda u: "goal=" not in u, timeout=30_000)
    assert records.get(engine, "school_goals", "G-BROWSER") is None


def test_cycle_created_edited_ramped_and_deleted_in_the_browser(page, app, workspace_db):
    engine = storage.get_engine(workspace_db)
    school = _school(workspace_db)
    page.goto(f"{app.base}/cycles?school={school}")
    _ready(page, "PDSA cycles")
    page.get_by_text("New cycle").click()
    _fill_form(page, {"Cycle id": "C-BROWSER-1", "Change idea": "Greet students at the door",
                      "Prediction": "Referrals fall within four weeks"})
    page.get_by_role("button", name="Create cycle").click()
    page.wait_for_url("**cycle=C-BROWSER-1**", timeout=30_000)
    _ready(page, "decision: Not decided yet (running) · cycle C-BROWSER-1")
    assert records.get(engine, "pdsa_cycles", "C-BROWSER-1")["prediction"] == "Referrals fall within four weeks"

    page.get_by_label("What happened (Do)").fill("Ran on 18 of 20 days")
    page.get_by_role("button", name="Save cycle").click()
    _until(lambda: records.get(engine, "pdsa_cycles", "C-BROWSER-1")["do_notes"] == "Ran on 18 of 20 days")

    page.get_by_text("Start the next cycle of this ramp").click()
    page.get_by_label("New cycle id").fill("C-BROWSER-2")
    page.get_by_role("button", name="Create next cycle").click()
    page.wait_for_url("**cycle=C-BROWSER-2**", timeout=30_000)
    _ready(page, "Ramp of 2 cycles")
    assert records.get(engine, "pdsa_cycles", "C-BROWSER-2")["previous_cycle_id"] == "C-BROWSER-1"

    page.get_by_role("button", name="Delete this cycle").click()
    page.wait_for_url(lambda u: "cycle=" not in u, timeout=30_000)
    assert records.get(engine, "pdsa_cycles", "C-BROWSER-2") is None


def test_two_editors_save_the_same_goal(browser, app, workspace_db):
    engine = storage.get_engine(workspace_db)
    school = _school(workspace_db)
    records.create(engine, "school_goals", {
        "goal_id": "G-TWO", "school_id": school, "metric": "read_proficient", "student_group": "ALL",
        "baseline_year": 2023, "baseline_value": 40.0, "target_year": 2026, "target_value": 50.0,
        "status": "active"}, "setup")
    url = f"{app.base}/plans?school={school}&goal=G-TWO"
    ana = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    ben = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    for tab in (ana, ben):
        tab.goto(url)
        _ready(tab, "Reading proficient, All students: 50.0% by 2026")
    ana.get_by_label("Strategy", exact=True).fill("Ana's strategy")
    ana.get_by_role("button", name="Save goal").click()
    _until(lambda: records.get(engine, "school_goals", "G-TWO")["strategy"] == "Ana's strategy")

    ben.get_by_label("Strategy", exact=True).fill("Ben's strategy")
    ben.get_by_role("button", name="Save goal").click()
    _ready(ben, "while you were editing it")
    Path("/tmp/shots/workspace").mkdir(parents=True, exist_ok=True)
    ben.screenshot(path="/tmp/shots/workspace/conflict.png", full_page=True)
    assert records.get(engine, "school_goals", "G-TWO")["strategy"] == "Ana's strategy"  # not overwritten
    assert ben.get_by_label("Strategy", exact=True).input_value() == "Ben's strategy"  # nothing lost

    ben.get_by_role("button", name="Keep my values and save over the new version").click()
    _ready(ben, "Now press Save again")
    ben.get_by_role("button", name="Save goal").click()
    _until(lambda: records.get(engine, "school_goals", "G-TWO")["version"] == 3)
    final = records.get(engine, "school_goals", "G-TWO")
    assert final["strategy"] == "Ben's strategy" and final["version"] == 3
    ana.context.close()
    ben.context.close()


def test_director_follows_each_kind_of_change_link(page, app, workspace_db):
    from analytics.workspace import views as workspace

    engine = storage.get_engine(workspace_db)
    cluster = loads.load_schools(engine)["cluster"].iloc[0]
    expected = workspace.changes_view(engine, cluster=cluster)
    assert len(expected), "the demo cluster has changes since its last meeting"
    page.goto(f"{app.base}/changes?cluster={cluster}")
    _ready(page, "with changes:")
    assert _params(page.url)["since"] == expected["since"].iloc[0]
    targets = {"New year of data": "/school", "Goal now off track": "/plans", "Status worsened": "/school",
               "New risk-ratio flag": "/discipline", "New run-chart signal": None}
    followed = 0
    for label, path in targets.items():
        link = page.get_by_role("link", name=label).first
        if not link.count():
            continue
        href = link.get_attribute("href")  # markdown links open in a new tab: open the same address here
        target = page.context.new_page()
        target.goto(f"{app.base}/{href.removeprefix('./')}")
        settle(target, "h1")
        assert target.get_by_text("was not found").count() == 0, href
        if path:
            assert urlparse(target.url).path == path
        target.close()
        followed += 1
    assert followed >= 2
