"""Waiting in a real browser until a Streamlit script run has drawn everything, not just its first element."""

from __future__ import annotations

# The app's root states the run at once (running, rerunRequested, notRunning…). The status widget is no signal:
# Streamlit shows it only once a run has gone on for half a second, so two looks at a run's start both missed it.
APP = "[data-testid=stApp]"
ENDED = ("notRunning", "compilationError")
LOOK_MS = 250


def settle(page, selector: str, timeout: int = 60_000) -> None:
    """Wait for `selector`, then until the run has ended (:func:`run_ended`), at most `timeout` ms in all: on a
    busy machine a page's later elements can follow its first by seconds."""
    page.wait_for_selector(selector, timeout=timeout)
    run_ended(page, timeout)


def run_ended(page, timeout: int = 60_000) -> None:
    """Until the script run has ended in two looks 250 ms apart (so a rerun it asked for counts too)."""
    quiet = 0
    for _ in range(timeout // LOOK_MS):
        quiet = quiet + 1 if page.locator(APP).get_attribute("data-test-script-state") in ENDED else 0
        if quiet >= 2:
            return
        page.wait_for_timeout(LOOK_MS)
    raise AssertionError(f"the page's script run did not end within {timeout} ms")


def steady_box(locator, timeout: int = 30_000) -> dict:
    """The element's box once it has kept one place and size for two looks 250 ms apart: a chart is drawn, then
    laid out again as its container settles, so a click aimed from its first box can miss the mark."""
    last, same = None, 0
    for _ in range(timeout // LOOK_MS):
        box = locator.bounding_box()
        same = same + 1 if box and box == last else 0
        if same >= 2:
            return box
        last = box
        locator.page.wait_for_timeout(LOOK_MS)
    raise AssertionError(f"{locator} did not keep its place within {timeout} ms")
