"""Warm rerun of every page against the rerun of an empty Streamlit script (DESIGN §8).

Each page is run once with AppTest with every cache emptied first (the cold first view after an
import), then rerun `REPEAT` times; the median rerun is compared with the median rerun of an empty
script measured in the same process. Also the first
paint of a deep link in Chromium. Goals: <= 5x the empty rerun at 200 schools, <= 15x at 2,000;
first paint <= 3 s. Writes benchmarks/results/pages.json.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, demo_database, write_results

REPEAT = 7
# (page file, URL parameters); add new pages here.
PAGES = [
    ("overview", {}),
    ("cluster", {"cluster": "Northwood"}),
    ("school", {"school": None}),
    ("gaps", {}),
    ("discipline", {"cluster": "Northwood"}),
    ("learning", {}),
    ("meeting", {}),
    ("changes", {}),
    ("plans", {"school": None}),
    ("cycles", {"school": None}),
    ("data", {}),
]


def _run_seconds(script: Path, params: dict, *, cold: bool = False) -> tuple[float, float]:
    """(first run, median warm rerun) of a page; with `cold` every cache is emptied first, as after an import."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    if cold:
        st.cache_data.clear()
        st.cache_resource.clear()
    at = AppTest.from_file(str(script), default_timeout=300)
    for key, value in params.items():
        at.query_params[key] = value
    start = time.perf_counter()
    at.run()
    first = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"{script.name}: {at.exception[0].value}")
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def _rerun_seconds(script: Path, params: dict) -> float:
    return _run_seconds(script, params)[1]


def measure(url: str, empty: Path) -> dict:
    import streamlit as st

    from analytics.data import loads, storage

    os.environ["DATABASE_URL"] = url
    st.cache_data.clear()
    st.cache_resource.clear()
    first_school = loads.load_schools(storage.get_engine(url))["school_id"].iloc[0]
    floor = _rerun_seconds(empty, {})
    pages = {}
    for name, params in PAGES:
        params = {k: (first_school if v is None else v) for k, v in params.items()}
        cold, seconds = _run_seconds(ROOT / "pages" / f"{name}.py", params, cold=True)
        pages[name] = {"cold_first_view_s": round(cold, 3), "warm_rerun_s": round(seconds, 4),
                       "ratio_to_empty": round(seconds / floor, 1), "cold_to_warm": round(cold / seconds, 1)}
    return {"empty_script_rerun_s": round(floor, 4), "pages": pages}


def _rss_mib(pid: int) -> float:
    """Resident memory of a process in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def first_paint(url: str) -> tuple[float | None, float | None]:
    """Seconds from navigation to the first KPI of a deep link in Debian's Chromium, and the server's
    resident memory after every page has been opened once (None when Chromium is absent)."""
    if not Path("/usr/bin/chromium").exists():
        return None, None
    from playwright.sync_api import sync_playwright

    port = 8650
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
                             str(port), "--server.headless", "true"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(6)
        args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            deep = f"http://127.0.0.1:{port}/cluster?cluster=Northwood&year=2024&metric=math_proficient&group=BL"
            page.goto(deep)  # warm the server's caches once, as a running deployment has them
            page.wait_for_selector("[data-testid=stMetric]", timeout=60_000)
            timings = []
            for _ in range(3):
                start = time.perf_counter()
                page.goto(deep)
                page.wait_for_selector("[data-testid=stMetric]", timeout=60_000)
                timings.append(time.perf_counter() - start)
            for path in ("", "school?school=100000", "gaps", "discipline", "meeting", "data"):
                page.goto(f"http://127.0.0.1:{port}/{path}")
                page.wait_for_selector("h1", timeout=120_000)
                page.wait_for_timeout(3000)
            browser.close()
        return round(min(timings), 3), _rss_mib(proc.pid)
    finally:
        proc.terminate()


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, nargs="+", default=[200, 2000], help="district sizes to measure")
    parser.add_argument("--no-browser", action="store_true", help="skip the first paint in Chromium")
    parser.add_argument("--database", type=Path, help="demo SQLite file to reuse for one size (built when missing)")
    parser.add_argument("--name", default="pages", help="name of the JSON file written")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.py"
        empty.write_text("import streamlit as st\n")
        results = {}
        for n in args.schools:
            url = demo_database(args.database or Path(tmp) / f"demo-{n}.db", n)
            results[f"{n}_schools"] = measure(url, empty)
            if not args.no_browser:
                paint, memory = first_paint(url)
                results[f"{n}_schools"]["first_paint_deep_link_s"] = paint
                results[f"{n}_schools"]["server_memory_after_all_pages_mib"] = memory
    write_results(args.name, {"goal": "<= 5x empty rerun at 200 schools, <= 15x at 2,000; first paint <= 3 s; "
                                      "cold first view (every cache emptied, as after an import) <= 3 s and <= 5x "
                                      "the warm rerun at 2,000 schools; memory: benchmarks/bench_memory.py",
                              "results": results})


if __name__ == "__main__":
    main()
