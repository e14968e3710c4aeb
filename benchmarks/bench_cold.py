"""First view of each page after an import, with and without computing ahead (DESIGN §8, issue 16).

For each page, in one warm process (modules imported, as in a running server): every cache is emptied, as
an import leaves them, and the page's first view is timed (`cold_s`); the caches are emptied again, the
preparer's work list (`pages/ui/prepare.py`) is run as the server runs it after an import (`prepare_s`,
measured once), and the first view is timed again (`prepared_s`); then a warm rerun (`warm_s`). Goals:
first view <= 3 s and <= 5x the warm rerun at 2,000 schools. Staff views (no privacy release on screen);
the release the shared links need is part of `prepare_s`.

    python benchmarks/bench_cold.py [--schools 2000] [--quick] [-o FILE]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from _common import ROOT, demo_database, write_results

PAGES = [("overview", {}), ("cluster", {"cluster": None}), ("school", {"school": None}), ("gaps", {}),
         ("discipline", {})]


def _first_view(page: str, params: dict) -> tuple[object, float]:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=600)
    for key, value in params.items():
        at.query_params[key] = value
    started = time.perf_counter()
    at.run()
    if at.exception:
        raise RuntimeError(f"{page}: {at.exception[0].value}")
    return at, time.perf_counter() - started


def _empty_caches() -> None:
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def _prepare() -> float:
    from pages.ui import loaders, prepare

    started = time.perf_counter()
    version = loaders.data_version()
    for step in prepare._plan(version):
        prepare._run(step, version)
    return time.perf_counter() - started


def measure(url: str) -> dict:
    from analytics.data import storage

    os.environ["DATABASE_URL"] = url
    schools = storage.load_schools(storage.get_engine(url))
    fill = {"cluster": sorted(schools["cluster"].unique())[0], "school": schools["school_id"].iloc[0]}
    pages = [(name, {k: v or fill[k] for k, v in params.items()}) for name, params in PAGES]
    for name, params in pages:  # a warm process: every module imported, as in a running server
        _first_view(name, params)
    _empty_caches()
    prepare_s = _prepare()
    out = {}
    for name, params in pages:
        _empty_caches()
        _, cold = _first_view(name, params)
        _empty_caches()
        _prepare()
        at, prepared = _first_view(name, params)
        started = time.perf_counter()
        at.run()
        warm = time.perf_counter() - started
        out[name] = {"cold_s": round(cold, 3), "prepared_s": round(prepared, 3), "warm_s": round(warm, 3),
                     "prepared_ratio_to_warm": round(prepared / warm, 1),
                     "meets_goal": prepared <= 3.0 and prepared <= 5 * warm}
    _empty_caches()
    return {"prepare_s": round(prepare_s, 2), "pages": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="200 schools")
    parser.add_argument("--db", type=Path, help="reuse (or build) the demo database at this path")
    parser.add_argument("-o", "--output", default="cold_after_import")
    args = parser.parse_args()
    schools = 200 if args.quick else args.schools
    db = args.db or Path(os.environ.get("TMPDIR", "/tmp")) / f"ssif_bench_{schools}.db"
    result = measure(demo_database(db, schools))
    write_results(args.output, {"schools": schools, "database": "sqlite",
                                "goal": "first view after an import <= 3 s and <= 5x its warm rerun", **result})


if __name__ == "__main__":
    main()
