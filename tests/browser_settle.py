"""Waiting in a real browser until a Streamlit script run has drawn everything, not just its first element."""

from __future__ import annotations

# The app's root states the run at once (running, rerunRequested, notRunning…). The status widget is no signal:
# Streamlit shows it only once a run has gone on for half a second, so two looks at a run's start both missed it.
APP = "[data-testid=stApp]"
ENDED = ("notRunning", "compilationError")


def settle(page, selector: str, timeout: int = 60_000) -> None:
    """Wait for `selector`, then until the run has ended (ended in two looks 250 ms apart, so a rerun it asked
    for counts too), at most `timeout` ms in all: on a busy machine a page's later elements can follow its first
    by seconds."""
    page.wait_for_selector(selector, timeout=timeout)
    quiet = 0
    for _ in range(timeout // 250):
        quiet = quiet + 1 if page.locator(APP).get_attribute("data-test-script-state") in ENDED else 0
        if quiet >= 2:
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"the page's script run did not end within {timeout} ms of {selector!r}")
