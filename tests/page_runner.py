"""Running one page script with AppTest, as the page tests do."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

PAGES = Path(__file__).resolve().parent.parent / "pages"


def run_page(page: str, timeout: float = 120, **params) -> AppTest:
    """Run `pages/<page>.py` with URL parameters; fails the test on any exception on the page."""
    at = AppTest.from_file(str(PAGES / f"{page}.py"), default_timeout=timeout)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at
