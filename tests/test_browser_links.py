"""Real-browser navigation keeps the view: filters are changed first, then every kind of link is followed.

Each step checks the landed URL against the link's href and the filter widgets against the URL.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from analytics.access.sharing import create_share
from analytics.data import loads, storage
from tests.browser_settle import run_ended, steady_box

pytestmark = pytest.mark.browser

VIEW = {"year": "2023", "metric": "math_proficient", "group": "FARMS"}
SHOWN = ["2022-23", "Math proficient", "Free and reduced-price meals"]


def _params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def _settle(page, text: str | None = None) -> None:
    page.wait_for_selector("[data-testid=stMain] h1", timeout=30_000)
    if text:
        page.wait_for_selector(f"text={text}", timeout=30_000)
    _idle(page)


def _idle(page) -> None:
    """Wait until the script run is over and no element is stale (links carry the current filters)."""
    run_ended(page, timeout=90_000)
    page.wait_for_function("() => !document.querySelector('[data-stale=true]')", timeout=30_000)


def _widgets(page) -> list[str]:
    return page.locator("[data-testid=stMain] [data-testid=stSelectbox] input").evaluate_all(
        "els => els.map(e => e.value)")


def _choose(page, index: int, option: str, param: str) -> None:
    page.locator("[data-testid=stMain] [data-testid=stSelectbox]").nth(index).click()
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_url(f"**{param}**", timeout=20_000)
    _idle(page)


def _follow(page, link, path: str, text: str) -> dict[str, str]:
    """Click a link and check that the page landed on exactly its href (path and every parameter)."""
    href = link.get_attribute("href")
    link.click()
    page.wait_for_url(lambda u: urlparse(u).path == path, timeout=20_000)
    _settle(page, text)
    landed = _params(page.url)
    assert {k: v for k, v in landed.items() if k in _params(href)} == _params(href), (href, page.url)
    return landed


def test_links_keep_year_metric_and_group_after_the_filters_changed(page, app_server):
    page.goto(f"{app_server}/?year=2025&metric=read_proficient&group=ALL")
    _settle(page, "Open a cluster")
    _choose(page, 0, "2022-23", "year=2023")
    _choose(page, 1, "Math proficient", "metric=math_proficient")
    _choose(page, 2, "Free and reduced-price meals", "group=FARMS")
    assert _widgets(page) == SHOWN

    # A bar of the clusters chart, then "Open a school", the cluster breadcrumb and the District breadcrumb
    chart = page.locator("[data-testid=stVegaLiteChart]").first
    chart.scroll_into_view_if_needed()
    box = steady_box(chart)
    page.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + 75)  # the first (best) bar
    page.wait_for_url("**/cluster?**", timeout=20_000)
    _settle(page, "Rank among clusters")
    landed = _params(page.url)
    assert {k: landed[k] for k in VIEW} == VIEW and _widgets(page) == SHOWN
    cluster = landed["cluster"]
    landed = _follow(page, page.locator("a[href*='school?school=']").first, "/school", "SSIF profile")
    assert {k: landed[k] for k in VIEW} == VIEW
    landed = _follow(page, page.get_by_role("link", name=cluster, exact=True).first, "/cluster", "Rank among clusters")
    assert landed == {"cluster": cluster, **VIEW} and _widgets(page) == SHOWN
    landed = _follow(page, page.get_by_role("link", name="District", exact=True).first, "/", "Open a cluster")
    assert landed == VIEW and _widgets(page) == SHOWN

    # "Open a cluster" link row
    landed = _follow(page, page.locator("a[href*='cluster?cluster=']").first, "/cluster", "Rank among clusters")
    assert {k: landed[k] for k in VIEW} == VIEW and _widgets(page) == SHOWN

    # Sidebar navigation: the page opened from the sidebar keeps the filters it shares with the view.
    page.locator("[data-testid=stSidebarNav] a[href$='/gaps']").click()
    page.wait_for_url("**/gaps**", timeout=20_000)
    _settle(page)
    assert _params(page.url)["year"] == "2023" and _params(page.url)["metric"] == "math_proficient"
    page.locator("[data-testid=stSidebarNav] a[href$='/cluster']").click()
    page.wait_for_url("**/cluster**", timeout=20_000)
    _settle(page)
    page.locator("a[href*='cluster?cluster=']").first.click()
    page.wait_for_url("**cluster=**", timeout=20_000)
    _settle(page, "Rank among clusters")
    assert {k: _params(page.url)[k] for k in VIEW} == VIEW and _widgets(page) == SHOWN


def test_links_inside_a_shared_link_keep_the_view_and_the_token(page, app_server, demo_db_url):
    engine = storage.get_engine(demo_db_url)
    cluster = sorted(loads.load_schools(engine)["cluster"].unique())[2]
    _, link = create_share(engine, f"/cluster?cluster={cluster}&year=2025&metric=read_proficient&group=ALL",
                           f"cluster:{cluster}", base_url=app_server)
    token = _params(link)["share"]
    page.goto(link)
    _settle(page, f"{cluster} cluster")
    _choose(page, 0, "2022-23", "year=2023")
    _choose(page, 1, "Math proficient", "metric=math_proficient")

    landed = _follow(page, page.locator("a[href*='school?school=']").first, "/school", "SSIF profile")
    assert landed["share"] == token and landed["year"] == "2023" and landed["metric"] == "math_proficient"
    landed = _follow(page, page.get_by_role("link", name=cluster, exact=True).first, "/cluster", f"{cluster} cluster")
    assert landed["share"] == token and landed["year"] == "2023" and landed["metric"] == "math_proficient"
    assert _widgets(page)[:2] == ["2022-23", "Math proficient"]

    # The viewer's sidebar link to Discipline carries the token and the year.
    page.locator("[data-testid=stSidebar] a[href*='discipline']").first.click()
    page.wait_for_url("**/discipline**", timeout=20_000)
    _settle(page)
    assert _params(page.url)["share"] == token and _params(page.url)["year"] == "2023"
