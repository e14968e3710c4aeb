"""Real-browser click-through on /gaps: a status-grid cell lists its school groups with links to schools."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

from tests.browser_settle import run_ended, settle, steady_box

pytestmark = pytest.mark.browser


def test_grid_cell_click_lists_schools_and_links_open_them(page, app_server):
    page.goto(f"{app_server}/gaps?metric=math_growth&year=2025")
    page.wait_for_selector("text=Findings", timeout=30_000)
    chart = page.locator("[data-testid=stVegaLiteChart]").first
    chart.locator("svg, canvas").first.wait_for()
    run_ended(page)
    box = steady_box(chart)
    # The middle of the plot: the Medium status / Maintained change cell.
    page.mouse.click(box["x"] + box["width"] * 0.47, box["y"] + box["height"] * 0.52)
    link = page.locator("a[href*='school?school=']").first
    link.wait_for(timeout=20_000)
    assert re.search(r"— [\d,]+ groups?\b", page.inner_text("body"))  # "— 1 group", "— 12 groups"
    school = parse_qs(urlparse(link.get_attribute("href")).query)["school"][0]
    link.click()
    page.wait_for_selector("text=SSIF profile", timeout=30_000)
    assert parse_qs(urlparse(page.url).query)["school"] == [school]


def test_discipline_page_shows_event_study_and_flags(page, app_server):
    page.goto(f"{app_server}/discipline?year=2025")
    settle(page, "text=Restorative-practices impact")  # the heading comes before the estimate under it
    body = page.inner_text("body")
    assert "Callaway-Sant'Anna" in body and "95% CI" in body
    page.locator("[data-testid=stVegaLiteChart]").nth(1).wait_for(timeout=30_000)  # ratios and event study
