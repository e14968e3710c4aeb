"""Real browser on /learning: a deep link renders the five levels and the nexus; choosing a programme
updates the URL."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = pytest.mark.browser


def test_learning_deep_link_and_programme_choice(page, app_server):
    page.goto(f"{app_server}/learning?program=RP&metric=climate_relationships")
    page.wait_for_selector("text=Nexus: implementation and change", timeout=90_000)
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
