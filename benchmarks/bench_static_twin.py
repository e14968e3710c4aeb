"""Warm rerun of every page beside the rerun of its static twin (DESIGN §8, issue 16).

For each page of `bench_pages.PAGES`, AppTest runs the page once (cold), captures every element it
drew, then reruns it `REPEAT` times (warm). The page's *static twin* is a script that draws exactly
those elements from the captured file, computing nothing (`benchmarks/_twin.py`); it is rerun the same
way in the same process. Goal: warm rerun <= 2x its twin at 200 and at 2,000 schools x 6 years.

The twin replays finished messages (Arrow tables and Vega-Lite specs already serialised), so it is the
strictest floor: a page that builds its DataFrames and Altair charts from cached results still pays their
serialisation, which the twin does not. Widgets are replayed as messages and the twin reruns with no
widget states. The JSON lists each page's cold first run, warm rerun, twin rerun, ratio, and `missed`.

    python benchmarks/bench_static_twin.py            # 200 and 2,000 schools -> results/static_twin.json
    python benchmarks/bench_static_twin.py --quick    # 200 schools only
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from _common import ROOT, demo_database, write_results
from _twin import TWIN_SCRIPT, capture, drawn_count
from bench_pages import PAGES

GOAL_RATIO = 2.0


def _warm_median(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _page_app(name: str, params: dict):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=300)
    for key, value in params.items():
        at.query_params[key] = value
    return at


def measure_page(name: str, params: dict, workdir: Path, repeat: int) -> dict:
    """Cold run, warm rerun and the twin's warm rerun of one page."""
    from streamlit.testing.v1 import AppTest

    at = _page_app(name, params)
    start = time.perf_counter()
    at.run()
    cold = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"{name}: {at.exception[0].value}")
    warm = _warm_median(at.run, repeat)
    drawn = workdir / f"{name}.pickle"
    elements = capture(at, drawn)
    os.environ["SSIF_TWIN_FILE"] = str(drawn)
    twin = AppTest.from_file(str(workdir / "twin.py"), default_timeout=300)
    # The twin's widgets are drawn messages, not registered widgets: rerun it with no widget states.
    twin._run()
    if twin.exception:
        raise RuntimeError(f"{name} twin: {twin.exception[0].value}")
    if drawn_count(twin) != elements:
        raise RuntimeError(f"{name} twin drew {drawn_count(twin)} blocks and elements, the page {elements}")
    twin_s = _warm_median(twin._run, repeat)
    ratio = warm / twin_s
    return {"elements": elements, "cold_first_run_s": round(cold, 4), "warm_rerun_s": round(warm, 4),
            "twin_rerun_s": round(twin_s, 4), "ratio_to_twin": round(ratio, 2), "meets_goal": ratio <= GOAL_RATIO}


def measure(url: str, workdir: Path, repeat: int) -> dict:
    import streamlit as st

    from analytics.data import storage

    os.environ["DATABASE_URL"] = url
    st.cache_data.clear()
    st.cache_resource.clear()
    first_school = storage.load_schools(storage.get_engine(url))["school_id"].iloc[0]
    pages = {}
    for name, params in PAGES:
        params = {k: (first_school if v is None else v) for k, v in params.items()}
        pages[name] = measure_page(name, params, workdir, repeat)
        print(name, pages[name], flush=True)
    return {"pages": pages, "missed": sorted(n for n, p in pages.items() if not p["meets_goal"])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 schools only, 3 reruns")
    parser.add_argument("--repeat", type=int, default=None, help="warm reruns per page (median; default 7)")
    args = parser.parse_args(argv)
    sizes = (200,) if args.quick else (200, 2000)
    repeat = args.repeat or (3 if args.quick else 7)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "twin.py").write_text(TWIN_SCRIPT)
        os.environ["SSIF_TWIN_DIR"] = str(Path(__file__).resolve().parent)
        results = {f"{n}_schools": measure(demo_database(workdir / f"demo-{n}.db", n), workdir, repeat)
                   for n in sizes}
    write_results("static_twin" + ("_quick" if args.quick else ""),
                  {"goal": f"warm rerun <= {GOAL_RATIO}x its static twin at 200 and 2,000 schools x 6 years",
                   "repeat": repeat, "results": results})


if __name__ == "__main__":
    main()
