"""tests/browser_settle.py against a run that draws its first element at once and its last seconds later."""

from __future__ import annotations

import os

import pytest

from tests.browser_settle import settle
from tests.conftest import stop_server, streamlit_server

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
    proc, base = streamlit_server(tmp_path / "slow.py", dict(os.environ), tmp_path, "the script's server")
    yield base
    stop_server(proc)


def test_settle_waits_for_the_run_to_end_not_for_the_first_elements_half_second(page, slow_app):
    """The run's status widget shows only after half a second of running: a settle that looked for it twice at
    the run's start returned while the run still had seconds to go. The app's run state says so at once."""
    page.goto(slow_app)
    settle(page, "text=Drawn first")
    assert "Drawn last" in page.inner_text("body")
