"""Shared links on a phone (390 x 844): the read-only banner in the page, in-scope crumbs only, names not
codes, charts inside the screen and a schools table that starts with its key columns."""

from __future__ import annotations

import pytest

from analytics.access.sharing import create_share
from analytics.data import loads, storage
from tests.browser_settle import settle, steady_box

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    tab = context.new_page()
    yield tab
    context.close()


def _open(page, url: str) -> str:
    page.goto(url)
    settle(page, "[data-testid=stMain] h1", timeout=90_000)
    _charts_laid_out(page)
    return page.locator("[data-testid=stMain]").inner_text()


def _charts_laid_out(page) -> None:
    """Until every chart keeps its place and size (charts are laid out again once their container settles)."""
    charts = page.locator("[data-testid=stMain] .vega-embed")
    for i in range(charts.count()):
        steady_box(charts.nth(i))


def _chart_overflow(page) -> list[float]:
    """Right edges (px) of drawn charts that reach beyond the screen."""
    return page.locator("[data-testid=stMain] .vega-embed canvas, [data-testid=stMain] .vega-embed svg.marks"
                        ).evaluate_all(f"els => els.map(e => e.getBoundingClientRect().right)"
                                       f".filter(r => r > {PHONE['width']} + 1)")


def test_cluster_link_on_a_phone(phone, app_server, demo_db_url):
    engine = storage.get_engine(demo_db_url)
    cluster = sorted(loads.load_schools(engine)["cluster"].unique())[2]
    _, link = create_share(engine, f"/cluster?cluster={cluster}&year=2025&metric=read_proficient&group=ALL",
                           f"cluster:{cluster}", base_url=app_server)
    main = _open(phone, link)
    assert "Read-only shared view" in main and f"the {cluster} cluster" in main
    assert phone.get_by_text("Read-only shared view").first.is_visible()  # in the page, not the hidden sidebar
    assert phone.locator("[data-testid=stMain] a", has_text="District").count() == 0  # would only be refused
    assert not _chart_overflow(phone)
    # A widget is drawn once its code has arrived (a placeholder until then), which can follow the run's end.
    phone.get_by_text("Show level, intervals, n and targets").wait_for(state="visible", timeout=30_000)
    assert not phone.locator("[data-testid=stMain] input[type=checkbox]").last.is_checked()


def test_school_link_on_a_phone_names_the_school(phone, app_server, demo_db_url):
    engine = storage.get_engine(demo_db_url)
    school = loads.load_schools(engine).iloc[64]
    _, link = create_share(engine, f"/school?school={school.school_id}&year=2025", f"school:{school.school_id}",
                           base_url=app_server)
    main = _open(phone, link)
    assert f"Read-only shared view of {school.school_name} ({school.cluster})" in main
    assert f"school: {school.school_id}" not in main
    assert phone.locator("[data-testid=stMain] a", has_text=school.cluster).count() == 0  # no out-of-scope crumb
    phone.get_by_text("Trends").first.scroll_into_view_if_needed()
    _charts_laid_out(phone)
    assert not _chart_overflow(phone)
