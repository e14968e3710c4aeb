"""Secure defaults, roles and the audit log: the pure core, then the app shell through AppTest.

The shell (app.py) is the one gate every staff page passes; these tests open it as a local run, as a
server without sign-in, and as a server with sign-in for an editor, a staff viewer and a stranger.
"""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest

from analytics import cli
from analytics.access import audit, deployment
from analytics.access.sharing import create_share, record_open, revoke_share, verify_share
from analytics.data.demo import build_demo
from analytics.data.importer import import_bytes

ROOT = Path(__file__).resolve().parent.parent
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32, "client_id": "ssif",
        "client_secret": "s", "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
ROLES = {"editors": ["Editor@District.org"], "viewers": ["liaison@board.org"], "allowed_domains": ["district.org"]}
# Every staff page and a deep link into each (the URL contract of DESIGN §4).
STAFF_PAGES = [("pages/overview.py", {"year": "2025"}), ("pages/cluster.py", {"cluster": "North"}),
               ("pages/school.py", {}), ("pages/gaps.py", {"metric": "math_growth"}),
               ("pages/discipline.py", {"year": "2025"}), ("pages/learning.py", {}), ("pages/plans.py", {}),
               ("pages/cycles.py", {}), ("pages/changes.py", {}), ("pages/meeting.py", {}), ("pages/data.py", {})]


# --- local run or server ------------------------------------------------------------------------


@pytest.mark.parametrize(("address", "local"), [("localhost", True), ("127.0.0.1", True), ("127.8.0.1", True),
                                                ("::1", True), ("[::1]", True), ("LOCALHOST", True),
                                                ("0.0.0.0", False), ("::", False), ("", False), (None, False),
                                                ("10.1.2.3", False), ("dashboard.district.org", False)])
def test_only_loopback_addresses_are_local(address, local):
    assert deployment.is_local_address(address) is local


def test_server_mode_reasons(monkeypatch):
    monkeypatch.delenv("SSIF_SERVER_MODE", raising=False)
    sqlite = sa.create_engine("sqlite://")
    postgres = sa.create_engine("postgresql+psycopg://u@127.0.0.1:1/x")  # never connects
    assert deployment.server_mode_reasons(sqlite, "localhost") == []
    assert deployment.server_mode_reasons(postgres, "localhost") == ["the database is PostgreSQL"]
    assert "every network interface" in deployment.server_mode_reasons(sqlite, "")[0]
    assert "0.0.0.0" in deployment.server_mode_reasons(sqlite, "0.0.0.0")[0]
    monkeypatch.setenv("SSIF_SERVER_MODE", "1")
    assert deployment.server_mode_reasons(sqlite, "localhost") == ["SSIF_SERVER_MODE=1 is set"]
    assert deployment.server_mode(None)


def test_a_server_by_listen_address_never_signs_links_with_a_generated_secret(monkeypatch):
    from analytics.access import sharing

    monkeypatch.delenv("SSIF_SERVER_MODE", raising=False)
    monkeypatch.delenv("SSIF_SHARE_SECRET", raising=False)
    monkeypatch.setattr(sharing, "secrets_section", lambda *_: {})
    monkeypatch.setattr(deployment, "_listen_address", "0.0.0.0")
    with pytest.raises(sharing.MissingSecret):
        sharing.signing_secret(sa.create_engine("sqlite://"))


def test_roles_from_secrets():
    roles = deployment.Roles.from_section(ROLES)
    assert roles.role_for("editor@district.org") == "editor"  # case-insensitive
    assert roles.role_for(" EDITOR@district.ORG ") == "editor"
    assert roles.role_for("liaison@board.org") == "viewer"
    assert roles.role_for("teacher@district.org") == "viewer"  # allowed domain
    assert roles.role_for("teacher@district.org.evil.com") is None
    assert roles.role_for("someone@gmail.com") is None
    assert roles.role_for("") is None and roles.role_for(None) is None and roles.role_for("not-an-email") is None
    single = deployment.Roles.from_section({"editors": "a@b.org", "allowed_domains": "@c.org"})
    assert single.role_for("a@b.org") == "editor" and single.role_for("x@c.org") == "viewer"
    assert deployment.Roles.from_section(None).role_for("a@b.org") is None  # nobody by default


# --- audit log -----------------------------------------------------------------------------------


def test_audit_records_filters_and_counts(engine):
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    audit.record(engine, "ana@district.org", audit.SIGN_IN, detail="editor", at=t0)
    audit.record(engine, "ben@district.org", audit.SIGN_IN, detail="viewer", at=t0 + timedelta(hours=1))
    audit.record(engine, "ana@district.org", audit.EDIT, "school_goals", "goal G1 target 60 -> 65",
                 at=t0 + timedelta(days=2))
    events = audit.load(engine)
    assert list(events.columns) == audit.COLUMNS
    assert list(events["action"]) == ["edit", "sign_in", "sign_in"]  # newest first
    assert events["at"].iloc[0] == t0 + timedelta(days=2)
    assert list(audit.load(engine, who="ANA")["action"]) == ["edit", "sign_in"]
    assert list(audit.load(engine, actions=[audit.EDIT])["target"]) == ["school_goals"]
    assert len(audit.load(engine, since=t0 + timedelta(minutes=30), until=t0 + timedelta(days=1))) == 1
    assert len(audit.load(engine, who="%")) == 0  # the filter is a plain substring, not a pattern
    counts = audit.counts(engine)
    assert counts["sign_in"] == 2 and counts["edit"] == 1 and counts["import"] == 0 and counts["total"] == 3
    assert audit.seen(engine, "ana@district.org", audit.EDIT, "school_goals")
    assert not audit.seen(engine, "ben@district.org", audit.EDIT, "school_goals")
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(engine, "ana", "delete_everything")


def test_an_event_rolls_back_with_the_change_it_describes(sqlite_engine):
    with contextlib.suppress(RuntimeError), sqlite_engine.begin() as conn:
        audit.record(conn, "ana", audit.EDIT, "school_goals")
        raise RuntimeError("the edit failed")
    assert audit.counts(sqlite_engine)["total"] == 0


def test_shared_links_and_imports_are_audited(sqlite_engine, monkeypatch):
    monkeypatch.setenv("SSIF_SHARE_SECRET", "test-secret")
    frames = build_demo(schools=6, years=2, seed=5)
    report = import_bytes(sqlite_engine, [("schools.csv", frames["schools"].to_csv(index=False).encode())],
                          who="ana@district.org")
    assert report.ok
    token, _ = create_share(sqlite_engine, "/gaps?metric=math_growth", "district", 7, "board", who="ana@district.org")
    record_open(sqlite_engine, verify_share(sqlite_engine, token))
    assert revoke_share(sqlite_engine, token, who="ben@district.org")
    events = audit.load(sqlite_engine).set_index("action")
    assert events.loc["import", "who"] == "ana@district.org" and events.loc["import", "target"] == "schools"
    assert "6 rows" in events.loc["import", "detail"]
    assert events.loc["share_created", "who"] == "ana@district.org"
    assert "scope district" in events.loc["share_created", "detail"] and "note: board" in events.loc["share_created",
                                                                                                    "detail"]
    assert events.loc["share_opened", "who"] == "shared-link viewer"
    assert events.loc["share_revoked", "who"] == "ben@district.org"
    assert len({events.loc[a, "target"] for a in ("share_created", "share_opened", "share_revoked")}) == 1


def test_info_json_counts_audit_events(sqlite_engine, monkeypatch):
    audit.record(sqlite_engine, "ana", audit.SIGN_IN)
    monkeypatch.setenv("DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["info", "--json"]) == 0
    payload = json.loads(out.getvalue())
    assert payload["audit"]["sign_in"] == 1 and payload["audit"]["total"] == 1
    assert set(audit.ACTIONS) < set(payload["audit"])


# --- the app shell -------------------------------------------------------------------------------


@pytest.fixture
def shell(on_demo, monkeypatch):
    """A function opening app.py at a page with URL parameters, secrets and a signed-in user."""
    from streamlit.runtime.pages_manager import PagesManager

    monkeypatch.delenv("SSIF_SERVER_MODE", raising=False)
    # AppTest resets Streamlit's legacy `pages/` folder mode before every run; a real server leaves it off
    # once app.py has run (pages.ui switches it off), so every request runs app.py first. Do the same here.
    original_init = PagesManager.__init__

    def v2_only(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", v2_only)

    def open_app(page: str | None = None, params: dict | None = None, secrets: dict | None = None,
                 user: dict | None = None, server: bool = False) -> AppTest:
        """A session that knows every page's address (its first run is a local editor's), then asks for
        `page` with `params` under the given configuration."""
        monkeypatch.delenv("SSIF_SERVER_MODE", raising=False)
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.run()
        if page:
            at.switch_page(page)
        if server:
            monkeypatch.setenv("SSIF_SERVER_MODE", "1")
        for key, value in (secrets or {}).items():
            at.secrets[key] = value
        if user is not None:
            at.user = user
        for key, value in (params or {}).items():
            at.query_params[key] = value
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_app


def _shows_data(at: AppTest) -> bool:
    return bool(at.dataframe or at.metric or at.get("vega_lite_chart") or at.get("deck_gl_json_chart")
                or at.selectbox or at.get("file_uploader"))


def test_local_run_is_one_editor(shell):
    at = shell("pages/data.py")
    assert [t.value for t in at.title] == ["Data"]
    assert at.get("file_uploader")


@pytest.mark.parametrize(("page", "params"), STAFF_PAGES)
def test_server_without_sign_in_serves_no_staff_data(shell, monkeypatch, page, params):
    at = shell(page, params, server=True)
    assert [t.value for t in at.title] == ["Sign-in is not configured"]
    assert "[auth]" in at.markdown[0].value and "SSIF_SERVER_MODE=1" in at.warning[0].value
    assert not _shows_data(at)


def test_server_without_sign_in_still_opens_shared_links(shell, monkeypatch, on_demo):
    monkeypatch.setenv("SSIF_SHARE_SECRET", "test-secret")
    token, _ = create_share(on_demo, "/gaps?metric=math_growth", "district", 1, who="ana")
    at = shell(None, {"metric": "math_growth", "share": token}, server=True)
    assert "Sign-in is not configured" not in [t.value for t in at.title]
    assert at.dataframe  # the district overview, read-only and suppressed


def test_a_shared_view_says_why_every_number_is_withheld(shell, on_demo, monkeypatch):
    from analytics.access import release, release_store
    from analytics.data import loads

    def undecided(engine, *args, **kwargs):
        return release.withheld_release(loads.load_schools(engine), loads.load_metrics(engine),
                                        loads.load_discipline(engine), "the decision ran past 3600 s")

    monkeypatch.setattr(release_store, "release_for", undecided)
    monkeypatch.setenv("SSIF_SHARE_SECRET", "test-secret")
    st.cache_resource.clear()
    token, _ = create_share(on_demo, "/", "district", 1, who="ana")
    at = shell(None, {"share": token}, server=True)
    assert any("withheld" in w.value and "ran past 3600 s" in w.value for w in at.warning)
    assert at.dataframe and (at.dataframe[0].value.astype(str) == "*").any().any()
    st.cache_resource.clear()


def test_a_shared_link_opened_as_an_import_lands_shows_the_new_data_not_an_error(shell, on_demo, monkeypatch):
    """The shell checks a link's scope against the district's schools before the page runs: an import that
    lands after the run read its data version and before that check (three Board members opening a link as
    the nightly import commits) runs the script again on the new data, as the page's own reads do."""
    from analytics.data import storage

    monkeypatch.setenv("SSIF_SHARE_SECRET", "test-secret")
    token, _ = create_share(on_demo, "/", "district", 1, who="ana")
    read_versions, landed = storage.versions, []

    def versions_then_an_import_lands(engine):
        found = read_versions(engine)
        if len(landed) == 1:  # the shared view's first run: the import commits just after its versions are read
            with engine.begin() as conn:
                storage.bump_version(conn, imported=True)
            st.cache_data.clear()  # the district's schools are read anew, as on a server's first view
        landed.append(found)
        return found

    monkeypatch.setattr(storage, "versions", versions_then_an_import_lands)
    at = shell(None, {"share": token}, server=True)  # no exception (the shell asserts it)
    assert [t.value for t in at.title] == ["District overview"] and at.metric
    assert landed[2].imports == landed[1].imports + 1  # the run that drew it read the import's version


def test_a_shared_link_opened_while_the_database_is_down_says_so_not_that_links_are_unconfigured(shell, on_demo,
                                                                                                   monkeypatch):
    from analytics.access import sharing

    monkeypatch.setenv("SSIF_SHARE_SECRET", "test-secret")
    token, _ = create_share(on_demo, "/", "district", 1, who="ana")

    def database_down(*args, **kwargs):
        raise sa.exc.OperationalError("SELECT revoked_at FROM shares", {}, ConnectionRefusedError("restarting"))

    monkeypatch.setattr(sharing, "verify_share", database_down)
    at = shell(None, {"share": token}, server=True)
    assert [e.value for e in at.error] == [
        "The database is not reachable right now (it may be restarting). Nothing was changed; reload the page in a "
        "minute. If this lasts, tell the data team."]


def test_with_sign_in_configured_visitors_must_sign_in(shell, monkeypatch):
    at = shell("pages/school.py", {"school": "E001"}, secrets={"auth": AUTH, "roles": ROLES},
               user={"is_logged_in": False}, server=True)
    assert [b.label for b in at.button] == ["Sign in"]
    assert not _shows_data(at)


def test_signed_in_editor_imports_and_sees_the_audit_log(shell, monkeypatch, on_demo):
    at = shell("pages/data.py", secrets={"auth": AUTH, "roles": ROLES},
               user={"is_logged_in": True, "email": "editor@district.org"}, server=True)
    assert [t.value for t in at.title] == ["Data"]
    assert {"Import", "Import history", "Audit log"} <= {t.label for t in at.tabs}
    assert any("Signed in as **editor@district.org** (editor)" in c.value for c in at.sidebar.caption)
    log = audit.load(on_demo, actions=[audit.SIGN_IN])
    assert log["who"].iloc[0] == "editor@district.org" and log["detail"].iloc[0] == "editor"


def test_signed_in_viewer_reads_but_cannot_import_or_share(shell):
    viewer = {"is_logged_in": True, "email": "teacher@district.org"}
    signed_in = {"secrets": {"auth": AUTH, "roles": ROLES}, "user": viewer, "server": True}
    at = shell("pages/gaps.py", {"metric": "math_growth"}, **signed_in)
    assert at.dataframe and [t.value for t in at.title] == ["Growth gaps"]
    assert any("(staff viewer)" in c.value for c in at.sidebar.caption)
    assert not at.sidebar.get("popover")  # no Share action
    at = shell("pages/data.py", **signed_in)  # a session that knew /data asks for it as a viewer
    assert not at.get("file_uploader") and not at.dataframe
    assert "Editors only" in at.error[0].value  # a clear refusal with a way back, not "page not found"
    assert any(link.label == "Back to the district overview" for link in at.get("page_link"))


def test_a_shared_link_viewer_at_data_is_told_it_is_for_editors(shell, monkeypatch, on_demo):
    monkeypatch.setenv("SSIF_SHARE_SECRET", "test-secret")
    token, _ = create_share(on_demo, "/", "district", 1, who="ana")
    at = shell("pages/data.py", {"share": token})
    assert "editors only" in at.error[0].value and not at.get("file_uploader")
    assert any("Back to the shared view" in m.value for m in at.main.markdown)


@pytest.mark.parametrize("page", ["pages/meeting.py", "pages/changes.py", "pages/cycles.py"])
def test_a_shared_link_at_a_page_it_does_not_include_gets_the_apps_refusal(shell, monkeypatch, on_demo, page):
    monkeypatch.setenv("SSIF_SHARE_SECRET", "test-secret")
    token, _ = create_share(on_demo, "/", "district", 1, who="ana")
    at = shell(page, {"share": token})
    assert [t.value for t in at.title] == ["Shared link"]  # not the overview under a "Page not found" pop-up
    assert "does not include that page" in at.error[0].value and not _shows_data(at)
    assert any("Back to the shared view" in m.value for m in at.main.markdown)


@pytest.mark.parametrize(("claims", "refused"), [
    ({"email": "a@district.org"}, False),  # no claim: the address as sent
    ({"email": "a@district.org", "email_verified": True}, False),
    ({"email": "a@district.org", "email_verified": "true"}, False),
    ({"email": "a@district.org", "email_verified": False}, True),
    ({"email": "a@district.org", "email_verified": "false"}, True),  # some providers send a string
    ({"email": "a@district.org", "email_verified": "False"}, True),
])
def test_an_unverified_email_is_refused_only_when_the_provider_says_so(claims, refused):
    assert (deployment.email_refusal(claims) is not None) is refused


def test_a_signed_in_editor_with_an_unverified_address_is_refused_and_logged(shell, on_demo):
    at = shell("pages/overview.py", secrets={"auth": AUTH, "roles": ROLES}, server=True,
               user={"is_logged_in": True, "email": "editor@district.org", "email_verified": False})
    assert "not verified" in at.error[0].value
    assert not _shows_data(at)
    refused = audit.load(on_demo, actions=[audit.SIGN_IN_REFUSED])
    assert refused["who"].iloc[0] == "editor@district.org" and "not verified" in refused["detail"].iloc[0]


def test_audit_log_filters_open_from_the_url(shell, on_demo):
    audit.record(on_demo, "ana@district.org", audit.IMPORT, "metrics", "metrics.csv: 10 rows")
    audit.record(on_demo, "ben@district.org", audit.SHARE_CREATED, "/gaps")
    at = shell("pages/data.py", {"tab": "Audit log", "audit_what": "imported", "audit_who": "ana",
                                 "audit_dates": f"{datetime.now(UTC).date() - timedelta(days=1):%Y-%m-%d}"})
    assert at.multiselect(key="audit_what").value == ["import"]
    assert at.text_input(key="audit_who").value == "ana"
    assert at.date_input(key="audit_dates").value[0] == datetime.now(UTC).date() - timedelta(days=1)
    log = next(d.value for d in at.dataframe if "who" in d.value)
    assert set(log["who"]) == {"ana@district.org"} and set(log["action"]) == {"imported"}


def test_a_stranger_is_refused_and_logged(shell, monkeypatch, on_demo):
    at = shell("pages/overview.py", secrets={"auth": AUTH, "roles": ROLES},
               user={"is_logged_in": True, "email": "someone@gmail.com"}, server=True)
    assert "not on this dashboard's staff list" in at.error[0].value
    assert not _shows_data(at)
    assert audit.load(on_demo, actions=[audit.SIGN_IN_REFUSED])["who"].iloc[0] == "someone@gmail.com"
