"""benchmarks/load_harness.py's browsers on the server's cores take only the CPU the server leaves."""

from __future__ import annotations

import concurrent.futures
import os
import sys
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import load_harness  # noqa: E402

pytestmark = pytest.mark.browser


def _placed(proc: psutil.Process, how: str) -> bool:
    if how.startswith("cgroup "):
        group = Path(how.split()[1])
        return str(proc.pid) in (group / "cgroup.procs").read_text().split()
    return proc.nice() == 19


def test_every_chromium_process_is_placed_below_the_server_even_those_started_later():
    if not os.path.exists(load_harness.CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    # Playwright's sync API refuses to start in a thread whose event loop is taken, as the session's browser
    # (tests/conftest.py) takes this one once a browser test has run in this process: a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as own_thread:
        own_thread.submit(_place_a_browser_and_its_later_renderer).result()


def _place_a_browser_and_its_later_renderer() -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=load_harness.CHROMIUM, args=load_harness.BROWSER_ARGS)
        try:
            how = load_harness.lower_browser_priority()
            page = browser.new_context().new_page()  # a renderer started after the placement
            page.set_content("<p>a page</p>")
            load_harness.lower_browser_priority()  # the harness looks again every second
            chromium = [proc for proc in psutil.Process().children(recursive=True) if load_harness._is_chromium(proc)]
            assert len(chromium) >= 2
            assert all(_placed(proc, how) for proc in chromium), how
            assert not _placed(psutil.Process(), how)  # the test process itself, as the server, is not
        finally:
            browser.close()
            load_harness._remove_browser_group()
