"""tests/browser_settle.py against a run that draws its first element at once and its last seconds later."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.browser_settle import settle
from tests.conftest import _free_port

pytestmark = pytest.mark.browser

SLOW_RUN = """
import time
import streamlit as st

st.title("Drawn first")
time.sleep(2.0)
st.write("Drawn last")
"""


@pytest.fixture
def slow_app(tmp_path):
    (tmp_path / "slow.py").write_text(SLOW_RUN)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(tmp_path / "slow.py"), "--server.headless",
                             "true", "--server.port", str(port), "--server.fileWatcherType", "none",
                             "--browser.gatherUsageStats", "false"],
                            cwd=tmp_path, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("the script's server did not start within 60 s")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_settle_waits_for_the_run_to_end_not_for_the_first_elements_half_second(page, slow_app):
    """The run's status widget shows only after half a second of running: a settle that looked for it twice at
    the run's start returned while the run still had seconds to go. The app's run state says so at once."""
    page.goto(slow_app)
    settle(page, "text=Drawn first")
    assert "Drawn last" in page.inner_text("body")
