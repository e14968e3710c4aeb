"""Waiting in a real browser until a Streamlit script run has drawn everything, not just its first element."""

from __future__ import annotations

RUNNING = "[data-testid=stStatusWidget]"  # shown while the script runs


def settle(page, selector: str, timeout: int = 60_000) -> None:
    """Wait for `selector`, then until the run has ended (no running indicator in two looks 250 ms apart), at
    most `timeout` ms in all: on a busy machine a page's later elements can follow its first by seconds."""
    page.wait_for_selector(selector, timeout=timeout)
    quiet = 0
    for _ in range(timeout // 250):
        quiet = 0 if page.locator(RUNNING).count() else quiet + 1
        if quiet >= 2:
            return
        page.wait_for_timeout(250)
