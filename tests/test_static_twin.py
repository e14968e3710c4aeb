"""The static-twin benchmark's twin draws exactly the elements of its page (fast version of
benchmarks/bench_static_twin.py: one page, one rerun, no timing goal)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_static_twin  # noqa: E402
from _twin import TWIN_SCRIPT  # noqa: E402


def test_twin_of_the_gaps_page_draws_the_same_elements(on_demo, tmp_path, monkeypatch):
    (tmp_path / "twin.py").write_text(TWIN_SCRIPT)
    monkeypatch.setenv("SSIF_TWIN_DIR", str(BENCHMARKS))
    monkeypatch.setenv("SSIF_TWIN_FILE", "")
    result = bench_static_twin.measure_page("gaps", {}, tmp_path, repeat=1)  # raises if the counts differ
    assert result["elements"] > 10
    assert result["twin_rerun_s"] > 0 and result["ratio_to_twin"] > 0
