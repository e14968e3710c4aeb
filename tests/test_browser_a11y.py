"""Real browser: charts are announced by their title and finding, and their data is a click away."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_charts_have_text_alternatives_in_the_browser(page, app_server):
    page.goto(f"{app_server}/discipline?year=2025")
    # The first view of a new server may wait for the data it prepares after start-up.
    page.wait_for_selector("text=Risk ratios (suspension)", timeout=90_000)
    chart = page.locator("[data-testid=stVegaLiteChart]").first
    chart.locator("svg, canvas").first.wait_for(timeout=30_000)
    # The page may be redrawn once while new data is being prepared: wait until the risk-ratio chart is drawn.
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid=stVegaLiteChart] [aria-label]')]
        .some(e => (e.getAttribute('aria-label') || '').toLowerCase().includes('risk ratio'))""", timeout=30_000)
    labels = page.eval_on_selector_all("[data-testid=stVegaLiteChart] [aria-label]",
                                       "els => els.map(e => e.getAttribute('aria-label'))")
    described = [label for label in labels if label and "risk ratio" in label.lower()]
    assert described, labels  # the screen reader hears the chart's title and finding
    assert not any(label == "Vega visualization" for label in labels)
    page.get_by_text("Data table").first.click()
    page.locator("[data-testid=stExpander] [data-testid=stDataFrame]").first.wait_for(timeout=20_000)
