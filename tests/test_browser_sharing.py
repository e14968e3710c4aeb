"""Real-browser attack list on read-only shared links: scope, tampering, expiry, revocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.access.sharing import create_share, revoke_share
from analytics.data import loads, storage
from tests.browser_settle import settle

pytestmark = pytest.mark.browser


@pytest.fixture
def demo(demo_db_url, app_server):
    engine = storage.get_engine(demo_db_url)
    schools = loads.load_schools(engine)
    clusters = sorted(schools["cluster"].unique())
    return engine, schools, clusters[0], clusters[1]


def _wait(page):
    settle(page, "[data-testid=stMetric], [data-testid=stAlert]")


def _link(engine, app_server, view, scope, **kwargs):
    _, link = create_share(engine, view, scope, base_url=app_server, **kwargs)
    return link


def test_cluster_link_is_read_only_with_suppression_and_nothing_else(page, app_server, demo):
    engine, schools, mine, other = demo
    link = _link(engine, app_server, f"/cluster?cluster={mine}&year=2025&metric=read_proficient&group=AM", f"cluster:{mine}")
    page.goto(link)
    _wait(page)
    body = page.inner_text("body")
    assert f"{mine} cluster" in body and "Read-only shared view" in body
    sidebar = page.locator("[data-testid=stSidebar]").inner_text()
    assert "Shared views" in sidebar and "Data" not in sidebar and "District overview" not in sidebar
    assert "Share a read-only link" not in body
    others = schools.loc[schools["cluster"] != mine, "school_name"]
    mine_names = set(schools.loc[schools["cluster"] == mine, "school_name"])
    assert not [n for n in others if n not in mine_names and n in body]
    # Small American Indian groups: the table shows suppression marks, never a count under 10.
    grid_text = page.locator("[data-testid=stDataFrame]").first.inner_text()
    assert "*" in grid_text or "*" in body


@pytest.mark.parametrize("target", ["other_cluster", "district", "data"])
def test_editing_the_url_out_of_scope_is_refused(page, app_server, demo, target):
    engine, schools, mine, other = demo
    link = _link(engine, app_server, f"/cluster?cluster={mine}", f"cluster:{mine}")
    token = link.split("share=")[1]
    url = {"other_cluster": f"{app_server}/cluster?cluster={other}&share={token}",
           "district": f"{app_server}/?share={token}",
           "data": f"{app_server}/data?share={token}"}[target]
    page.goto(url)
    _wait(page)
    body = page.inner_text("body")
    assert "This shared link" in body
    assert not page.locator("[data-testid=stMetric]").count()
    assert not any(name in body for name in schools.loc[schools["cluster"] == other, "school_name"]
                   if name not in set(schools.loc[schools["cluster"] == mine, "school_name"]))


def test_tampered_expired_and_revoked_links_show_no_data(page, app_server, demo):
    engine, _, mine, _ = demo
    link = _link(engine, app_server, f"/cluster?cluster={mine}", f"cluster:{mine}")
    payload, signature = link.split("share=")[1].split(".")
    page.goto(f"{app_server}/cluster?cluster={mine}&share={payload}.{signature[:-2]}xx")
    _wait(page)
    assert "altered" in page.inner_text("body") and not page.locator("[data-testid=stMetric]").count()

    past = datetime.now(UTC) - timedelta(days=3)
    expired = _link(engine, app_server, f"/cluster?cluster={mine}", f"cluster:{mine}", expires_days=1, now=past)
    page.goto(expired)
    _wait(page)
    assert "expired" in page.inner_text("body") and not page.locator("[data-testid=stMetric]").count()

    revoked = _link(engine, app_server, f"/cluster?cluster={mine}", f"cluster:{mine}")
    revoke_share(engine, revoked.split("share=")[1])
    page.goto(revoked)
    _wait(page)
    assert "revoked" in page.inner_text("body") and not page.locator("[data-testid=stMetric]").count()


def test_in_scope_navigation_keeps_the_token(page, app_server, demo):
    engine, schools, mine, _ = demo
    page.goto(_link(engine, app_server, f"/cluster?cluster={mine}", f"cluster:{mine}"))
    _wait(page)
    school_link = page.locator("a[href*='school?school=']").first
    assert "share=" in school_link.get_attribute("href")
    school_link.click()
    page.wait_for_selector("text=SSIF profile", timeout=30_000)
    assert "share=" in page.url and "Read-only shared view" in page.inner_text("body")


def test_filters_in_a_shared_view_offer_only_the_scope(page, app_server, demo):
    engine, _, mine, _ = demo
    page.goto(_link(engine, app_server, f"/gaps?cluster={mine}&metric=math_growth", f"cluster:{mine}"))
    page.wait_for_selector("text=Findings", timeout=30_000)
    page.locator("[data-testid=stSelectbox]").nth(3).click()  # Cluster
    options = page.get_by_role("option").all_inner_texts()
    assert options == [mine]
