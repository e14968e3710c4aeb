"""Real browser on /learning: a deep link renders the five levels and the nexus; choosing a programme
updates the URL."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from tests.browser_settle import settle

pytestmark = pytest.mark.browser


def test_learning_deep_link_and_programme_choice(page, app_server):
    page.goto(f"{app_server}/learning?program=RP&metric=climate_relationships")
    settle(page, "text=Nexus: implementation and change", timeout=90_000)  # its caption and fits follow it
    body = page.inner_text("body")
    for level in ("Level 1", "Level 2", "Level 3", "Level 4", "Level 5"):
        assert level in body
    assert "not a cause" in body or "association" in body
    page.locator("[data-testid=stVegaLiteChart]").nth(6).wait_for(timeout=60_000)
    page.locator("[data-testid=stSelectbox]").first.click()
    page.get_by_role("option", name="Math talk").click()
    page.wait_for_function("() => window.location.search.includes('program=MATH-TALK')", timeout=60_000)
    page.wait_for_selector("text=Math proficient", timeout=90_000)
    assert parse_qs(urlparse(page.url).query)["program"] == ["MATH-TALK"]


def test_school_link_to_learning_stays_in_its_school_with_summaries_only(page, app_server, demo_db_url):
    from analytics.access.sharing import create_share
    from analytics.data import loads, storage

    engine = storage.get_engine(demo_db_url)
    sessions = loads.load_table(engine, "pl_sessions", programs=["RP"])
    school, other = sorted(sessions["school_id"].dropna().unique())[:2]
    _, link = create_share(engine, f"/learning?program=RP&school={school}", f"school:{school}", base_url=app_server)
    page.goto(link)
    settle(page, "text=Nexus: implementation and change", timeout=90_000)  # its caption and fits follow it
    body = page.inner_text("body")
    assert "Read-only shared view" in body and "Level 5" in body
    assert "Assessment scores before and after" not in body  # built from single participants: editors only
    sidebar = page.locator("[data-testid=stSidebar]").inner_text()
    assert "Professional learning" in sidebar and "Data" not in sidebar
    page.goto(link.replace(f"school={school}", f"school={other}"))
    page.wait_for_selector("text=only covers one school", timeout=60_000)
