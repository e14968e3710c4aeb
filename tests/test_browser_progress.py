"""Real-browser check of the progress note's timer: a page opened while a new import is prepared shows the note,
and once the data is ready the note's timer is cancelled in the browser (no more fragment runs), with the page
left as it was. Runs its own server on a private database: a fresh server prepares its data once."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from analytics.data import bulk_write, storage
from analytics.data.demo import build_demo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import load_harness  # noqa: E402

pytestmark = pytest.mark.browser


class Frames:
    """The websocket's messages, decoded: what the server sent and which reruns the browser asked for."""

    def __init__(self, page):
        self.received: list[tuple[float, object]] = []
        self.sent: list[tuple[float, object]] = []
        page.on("websocket", self._watch)

    def _watch(self, socket) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        def decode(kind, payload):
            message = kind()
            message.ParseFromString(payload)
            return time.monotonic(), message

        socket.on("framereceived", lambda p: isinstance(p, bytes) and self.received.append(decode(ForwardMsg, p)))
        socket.on("framesent", lambda p: isinstance(p, bytes) and self.sent.append(decode(BackMsg, p)))

    def timers_started(self) -> set[str]:
        return {m.auto_rerun.fragment_id for _, m in self.received if m.WhichOneof("type") == "auto_rerun"}

    def timers_stopped(self) -> set[str]:
        return {f for _, m in self.received if m.WhichOneof("type") == "stop_auto_rerun"
                for f in m.stop_auto_rerun.fragment_ids}

    def fragment_reruns_after(self, moment: float) -> int:
        return sum(1 for at, m in self.sent if at > moment and m.WhichOneof("type") == "rerun_script"
                   and m.rerun_script.fragment_id)


def _until(page, check, timeout: float) -> bool:
    """Poll `check` while the browser's events are handled (Playwright delivers them only inside its calls)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        page.wait_for_timeout(200)
    return check()


def test_the_progress_note_stops_its_timer_once_the_data_is_ready(page, tmp_path):
    url = f"sqlite:///{tmp_path / 'progress.db'}"
    bulk_write.replace_all(storage.get_engine(url), build_demo(schools=16, years=4, seed=5))
    app = load_harness.start_app(url, timeout=60)
    try:
        frames = Frames(page)
        page.goto(f"{app.base}/")
        page.wait_for_selector("[data-testid=stMetric]", timeout=60_000)
        assert _until(page, lambda: frames.timers_started(), 30), "a fresh server's first page holds the progress note"
        note = next(iter(frames.timers_started()))
        assert _until(page, lambda: note in frames.timers_stopped(), 120), "the note's timer was never cancelled"
        stopped_at = time.monotonic()
        page.wait_for_timeout(5_000)  # two and a half periods of the timer
        assert frames.fragment_reruns_after(stopped_at + 0.5) == 0
        assert page.get_by_text("Preparing the new data").count() == 0
        assert page.locator("[data-testid=stMetric]").count() > 0  # the page is still the overview, drawn
    finally:
        app.close()
