"""Real sign-in: OpenID Connect through `st.login` against a real provider (oidc-provider-mock), in Chromium.

A dashboard in server mode is started with `[auth]` pointing at the provider and `[roles]` naming one
editor and a staff domain. Each test signs in through the provider's own authorisation form (the e-mail
address is the subject the mock returns as the `email` claim), checks what that role may do, and signs
out. A second dashboard in server mode without `[auth]` shows that no URL reaches staff data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from analytics.access import audit
from analytics.access.sharing import list_shares
from analytics.data import storage
from tests.browser_settle import run_ended, settle
from tests.conftest import _free_port, stop_server

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent
EDITOR, VIEWER, STRANGER = "editor@district.org", "teacher@district.org", "someone@example.com"
SHOTS = Path(os.environ.get("SSIF_SHOTS_DIR", "/tmp/shots/security"))  # screenshots to look at, never in the repo
SHOTS.mkdir(parents=True, exist_ok=True)


def _start_dashboard(db_url: str, port: int, secrets: Path | None, address: str | None = None) -> subprocess.Popen:
    """A dashboard in server mode: `SSIF_SERVER_MODE=1`, or (with `address`) a non-local listen address."""
    env = {**os.environ, "DATABASE_URL": db_url, "PYTHONPATH": str(ROOT), "SSIF_SHARE_SECRET": "browser-signin-secret"}
    env.pop("SSIF_SERVER_MODE", None)
    args = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
            "--server.port", str(port), "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
    if address:
        args += ["--server.address", address]
    else:
        env["SSIF_SERVER_MODE"] = "1"
    if secrets is not None:
        args += ["--secrets.files", str(secrets)]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2).read() == b"ok":
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    pytest.fail("the dashboard did not start within 60 s")


@pytest.fixture(scope="module")
def database(demo_db_url, tmp_path_factory) -> str:
    """A copy of the demo district, so this module's audit rows and links stay its own."""
    path = tmp_path_factory.mktemp("signin") / "ssif.db"
    shutil.copy(demo_db_url.split("///", 1)[1], path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def provider():
    """A real OpenID Connect provider on a free port (discovery, authorisation form, tokens, userinfo)."""
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def signin_server(database, provider, tmp_path_factory):
    port = _free_port()
    secrets = tmp_path_factory.mktemp("secrets") / "secrets.toml"
    secrets.write_text(f"""
[auth]
redirect_uri = "http://localhost:{port}/oauth2callback"
cookie_secret = "a-long-random-cookie-secret-for-the-browser-tests"
client_id = "ssif-dashboard"
client_secret = "any-secret-the-mock-accepts"
server_metadata_url = "{provider}/.well-known/openid-configuration"

[roles]
editors = ["{EDITOR}"]
allowed_domains = ["district.org"]
""")
    proc = _start_dashboard(database, port, secrets)
    yield f"http://localhost:{port}"
    stop_server(proc)


def _settle(page, selector="[data-testid=stMain] h1", timeout=60_000):
    settle(page, selector, timeout)


def _sign_in(page, base: str, email: str, path: str = "", start: str = "") -> None:
    """Sign in from `start` (a page's URL), then open `path`."""
    page.goto(f"{base}/{start}")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("input[name=sub]", timeout=30_000)  # the provider's own authorisation form
    page.fill("input[name=sub]", email)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{base}/**", timeout=30_000)
    _settle(page)
    if path:  # st.login comes back to the app's root; the session cookie now opens any page
        page.goto(f"{base}/{path}")
        _settle(page)


def _sign_out(page, where=None) -> None:
    """Sign out, through the provider's end-session page (RP-initiated logout) back to the sign-in page."""
    (where or page.locator("[data-testid=stSidebar]")).get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="End session").click(timeout=30_000)
    page.wait_for_selector("text=Sign in with your district account", timeout=30_000)


def _sidebar(page) -> str:
    return page.locator("[data-testid=stSidebar]").inner_text()


def test_editor_signs_in_imports_shares_sees_the_audit_log_and_signs_out(page, signin_server, database):
    engine = storage.get_engine(database)
    page.goto(f"{signin_server}/school?school=E001")  # a deep link before signing in: the sign-in page only
    _settle(page, "text=Sign in with your district account")
    assert not page.locator("[data-testid=stDataFrame], [data-testid=stMetric]").count()

    _sign_in(page, signin_server, EDITOR, start="school?school=E001")
    assert f"Signed in as {EDITOR} (editor)" in _sidebar(page)
    assert "Data" in _sidebar(page)  # the Manage section is there for editors

    page.locator("[data-testid=stSidebar]").get_by_text("Share a read-only link").click()
    page.get_by_role("button", name="Create link").click()
    page.wait_for_selector("text=share=", timeout=90_000)  # a fresh server is still preparing its data
    shares = list_shares(engine)
    assert shares["created_by"].iloc[0] == EDITOR

    page.goto(f"{signin_server}/data")
    _settle(page)
    page.get_by_role("tab", name="Audit log").click()
    page.wait_for_selector("text=events recorded", timeout=30_000)
    page.wait_for_function("location.search.includes('tab=Audit')", timeout=30_000)  # the tab is in the URL
    run_ended(page)
    page.screenshot(path=str(SHOTS / "data-audit-log-editor.png"), full_page=True)
    assert page.get_by_role("tab", name="Import").count()

    _sign_out(page)
    events = audit.load(engine, who=EDITOR)
    assert {"sign_in", "share_created", "sign_out"} <= set(events["action"])
    assert (events["action"] == "sign_in").sum() == 1  # opening more pages with the same sign-in is not another


def test_staff_viewer_reads_but_cannot_import_or_share_then_signs_out(page, signin_server, database):
    _sign_in(page, signin_server, VIEWER, "gaps?metric=math_growth")
    assert f"Signed in as {VIEWER} (staff viewer)" in _sidebar(page)
    page.wait_for_selector("[data-testid=stDataFrame]", state="attached", timeout=60_000)  # a staff view
    assert "Share a read-only link" not in _sidebar(page)
    assert "Data" not in _sidebar(page).split("Signed in")[0].split()
    page.screenshot(path=str(SHOTS / "gaps-staff-viewer.png"), full_page=True)

    page.goto(f"{signin_server}/data")
    _settle(page)
    page.screenshot(path=str(SHOTS / "data-as-staff-viewer.png"), full_page=True)
    body = page.inner_text("body")
    assert "Editors only" in body and "Page not found" not in body  # a clear refusal, with a way back
    assert page.get_by_role("link", name="Back to the district overview").count()
    assert "Audit log" not in body and "Import history" not in body
    assert not page.locator("[data-testid=stFileUploader]").count()
    page.keyboard.press("Escape")
    _sign_out(page)
    assert audit.load(storage.get_engine(database), who=VIEWER, actions=["sign_in"])["detail"].iloc[0] == "viewer"


def test_someone_not_on_the_staff_list_is_refused(page, signin_server):
    _sign_in(page, signin_server, STRANGER)
    assert "not on this dashboard's staff list" in page.inner_text("body")
    assert not page.locator("[data-testid=stDataFrame], [data-testid=stMetric]").count()
    _sign_out(page, page.locator("[data-testid=stMain]"))


@pytest.fixture(scope="module")
def unconfigured_server(database):
    """Server mode by its listen address alone (no SSIF_SERVER_MODE, SQLite), and no `[auth]`."""
    port = _free_port()
    proc = _start_dashboard(database, port, None, address="0.0.0.0")
    yield f"http://localhost:{port}"
    stop_server(proc)


# Every staff page with and without parameters, an unknown page, and empty or bogus share tokens.
STAFF_URLS = ["?year=2025&metric=math_growth", "cluster?cluster=North", "school?school=E001",
              "gaps?metric=math_growth&level=ES", "discipline", "plans", "meeting", "data", "no-such-page",
              "data?share=forged.token"]


def test_without_sign_in_configured_no_url_reaches_staff_data(page, unconfigured_server, database):
    for path in STAFF_URLS:
        page.goto(f"{unconfigured_server}/{path}")
        page.wait_for_selector("[data-testid=stMain] h1", timeout=60_000)
        page.wait_for_selector("[data-testid=stMain] [data-testid=stAlert]", timeout=60_000)  # drawn after the title
        main = page.inner_text("[data-testid=stMain]")
        assert ("Sign-in is not configured" in main and "listens on 0.0.0.0" in main) or "cannot be opened" in main, \
            (path, main[:200])
        assert not page.locator("[data-testid=stDataFrame], [data-testid=stMetric], [data-testid=stVegaLiteChart],"
                                " [data-testid=stDeckGlJsonChart], [data-testid=stFileUploader]").count(), path
    page.screenshot(path=str(SHOTS / "sign-in-not-configured.png"), full_page=True)


def test_without_sign_in_configured_shared_links_still_work(page, unconfigured_server, database, monkeypatch):
    from analytics.access.sharing import create_share

    monkeypatch.setenv("SSIF_SHARE_SECRET", "browser-signin-secret")  # the server's secret
    _, link = create_share(storage.get_engine(database), "/gaps?metric=math_growth", "district", 1, who="ana",
                           base_url=unconfigured_server)
    page.goto(link)
    _settle(page, "text=Read-only shared view")
    assert [t.strip() for t in page.locator("[data-testid=stMain] h1").all_inner_texts()][0] == "Growth gaps"
    assert "Sign-in is not configured" not in page.inner_text("body")
