"""Real-browser drill-down: clicks on a cluster bar, a map point and links; breadcrumbs; deep links."""

from __future__ import annotations

import math
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from analytics.data import loads, storage
from analytics.outputs.charts_district import _zoom
from analytics.stats.summaries import cluster_table
from tests.browser_settle import run_ended, steady_box

pytestmark = pytest.mark.browser


def _open(page, url: str):
    page.goto(url)
    page.wait_for_selector("[data-testid=stMetric], [data-testid=stAlert]", timeout=30_000)
    return page


def _params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def test_click_cluster_bar_then_school_link_then_breadcrumbs_back(page, app_server, demo_db_url):
    engine = storage.get_engine(demo_db_url)
    rows = loads.load_metrics(engine, metrics=["math_proficient"])
    top = cluster_table(rows, loads.load_schools(engine), 2024, "BL").sort_values("value").iloc[-1]["cluster"]

    _open(page, f"{app_server}/?year=2024&metric=math_proficient&group=BL")
    chart = page.locator("[data-testid=stVegaLiteChart]").first
    chart.locator("svg, canvas").first.wait_for()
    run_ended(page)
    box = steady_box(chart)
    page.mouse.click(box["x"] + box["width"] * 0.6, box["y"] + 75)  # the first (best) bar
    page.wait_for_url("**/cluster?**", timeout=20_000)
    assert _params(page.url) == {"cluster": top, "year": "2024", "metric": "math_proficient", "group": "BL"}
    page.wait_for_selector("text=Rank among clusters")

    school_link = page.locator("a[href*='school?school=']").first
    school_id = _params(school_link.get_attribute("href"))["school"]
    school_link.click()
    page.wait_for_selector("text=SSIF profile", timeout=30_000)
    assert _params(page.url)["school"] == school_id
    assert urlparse(page.url).path == "/school"

    page.get_by_role("link", name=top).first.click()
    page.wait_for_url("**/cluster?**", timeout=20_000)
    assert _params(page.url)["cluster"] == top
    page.get_by_role("link", name="District").first.click()
    page.wait_for_url(lambda u: urlparse(u).path == "/", timeout=20_000)
    page.wait_for_selector("text=District overview")


def test_click_map_point_opens_school(page, app_server, demo_db_url):
    schools = loads.load_schools(storage.get_engine(demo_db_url)).dropna(subset=["latitude"])
    target = schools.iloc[17]
    _open(page, f"{app_server}/")
    deck = page.locator("[data-testid=stDeckGlJsonChart]").first
    deck.locator("canvas").first.wait_for(timeout=30_000)
    run_ended(page)
    # Web-mercator projection of the school's position at the map's initial view (512 px world at zoom 0).
    scale = 512 * 2 ** _zoom(schools)

    def merc(lat):
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    def point() -> tuple[float, float]:
        box = deck.bounding_box()  # measured at each click: the preparer's progress note above it comes and goes
        return (box["x"] + box["width"] / 2 + (target.longitude - schools.longitude.mean()) / 360 * scale,
                box["y"] + box["height"] / 2
                - (merc(target.latitude) - merc(schools.latitude.mean())) * scale / (2 * math.pi))

    # The deck draws its points a moment after its canvas appears; a click before that selects nothing. The
    # rerun it starts can wait behind the server's preparer (a shared test server imports as other tests run).
    for attempt in range(4):
        page.mouse.click(*point())
        try:
            page.wait_for_url("**/school?**", timeout=30_000)
            break
        except PlaywrightTimeout:
            if attempt == 3:
                raise
            run_ended(page)
    assert _params(page.url)["school"] == target.school_id


@pytest.mark.parametrize(
    ("path", "message"),
    [("cluster?cluster=Atlantis", "Cluster “Atlantis” was not found."),
     ("school?school=nope", "School “nope” was not found."),
     ("?metric=shoe_size", "Metric “shoe_size” was not found.")],
)
def test_nonsense_urls_say_not_found_without_traceback(page, app_server, path, message):
    _open(page, f"{app_server}/{path}")
    page.wait_for_selector(f"text={message}")
    assert "Traceback" not in page.content()
    page.get_by_role("link", name="Back to the district overview").wait_for(timeout=15_000)


def test_deep_link_restores_every_filter(page, app_server, demo_db_url):
    cluster = loads.load_schools(storage.get_engine(demo_db_url))["cluster"].iloc[0]
    _open(page, f"{app_server}/cluster?cluster={cluster}&year=2023&metric=chronic_absence&group=SWD")
    page.wait_for_selector("text=Rank among clusters")
    shown = page.locator("[data-testid=stSelectbox] input").evaluate_all("els => els.map(e => e.value)")
    assert shown == ["2022-23", "Chronic absence", "Students with disabilities"]
    assert _params(page.url) == {"cluster": cluster, "year": "2023", "metric": "chronic_absence", "group": "SWD"}


def test_selecting_a_table_row_opens_that_cluster(page, app_server, demo_db_url):
    engine = storage.get_engine(demo_db_url)
    rows = loads.load_metrics(engine, metrics=["read_proficient"])
    first = cluster_table(rows, loads.load_schools(engine), 2025, "ALL").sort_values("value").iloc[-1]["cluster"]
    _open(page, f"{app_server}/?year=2025&metric=read_proficient&group=ALL")
    grid = page.locator("xpath=//h3[normalize-space()='Clusters']/following::*[@data-testid='stDataFrame'][1]")
    run_ended(page)
    # The grid moves as the preparer's progress note above it comes and goes, so its place is measured at each
    # click. A click is tried again only once the run has ended without leaving the page: the click missed.
    for attempt in range(3):
        grid.scroll_into_view_if_needed()
        box = steady_box(grid)
        page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)  # the selection cell of the first row
        try:
            page.wait_for_url("**/cluster?**", timeout=20_000)
            break
        except PlaywrightTimeout:
            run_ended(page)
            if "/cluster?" in page.url or attempt == 2:
                break
    assert "/cluster?" in page.url, "three clicks on the first row did not open its cluster"
    assert _params(page.url)["cluster"] == first


def test_changing_a_filter_in_the_browser_updates_the_url(page, app_server):
    _open(page, f"{app_server}/?year=2025&metric=read_proficient&group=ALL")
    page.locator("[data-testid=stSelectbox]").nth(2).click()
    page.get_by_role("option", name="Students with disabilities").click()
    page.wait_for_url("**group=SWD**", timeout=20_000)
    # The URL changes as the rerun starts; the cards are redrawn when it has run.
    expect(page.locator("[data-testid=stMetric]").first).to_contain_text("Students with disabilities", timeout=30_000)


def test_click_a_school_dot_opens_that_school(page, app_server, demo_db_url):
    """The dot plot's click selection (declared on the chart's top level) opens the school clicked."""
    schools = loads.load_schools(storage.get_engine(demo_db_url))
    cluster = schools["cluster"].iloc[0]
    _open(page, f"{app_server}/cluster?cluster={cluster}&year=2025&metric=read_proficient&group=ALL")
    chart = page.locator("[data-testid=stVegaLiteChart]").first
    chart.locator("canvas, svg").first.wait_for()
    run_ended(page)
    box = steady_box(chart)
    # Find a dot by its tooltip (only the dots carry one): hover a grid over the top rows, 4 px apart.
    shown = "() => !!document.querySelector('#vg-tooltip-element.visible')"
    spot = None
    for y in range(int(box["y"]) + 30, int(box["y"] + min(box["height"], 200)), 4):
        for x in range(int(box["x"] + box["width"]) - 4, int(box["x"]) + 60, -4):
            page.mouse.move(x, y)
            if page.evaluate(shown):
                spot = (x, y)
                break
        if spot:
            break
    tooltip = page.locator("#vg-tooltip-element")
    assert spot, "no dot found"
    name = tooltip.inner_text().split("School")[1].split("%")[0].strip()
    page.mouse.click(*spot)
    page.wait_for_url("**/school?**", timeout=20_000)
    chosen = _params(page.url)["school"]
    assert schools.set_index("school_id").loc[chosen, "cluster"] == cluster
    assert name.startswith(schools.set_index("school_id").loc[chosen, "school_name"])
