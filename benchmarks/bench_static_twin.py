"""Warm rerun of every page beside the rerun of its static twin (DESIGN §8: a warm rerun within 2x its twin's).

For each page of `bench_pages.PAGES`, AppTest runs the page once (cold) as app.py runs it (the data
version pinned once per run, `_twin.run_page`), captures every element it drew, then reruns it `REPEAT`
times (warm). The page's *static twin* is a script that draws the same
elements from results computed beforehand, through the same public Streamlit calls
(`benchmarks/_twin.py`: tables decoded back into DataFrames for `st.dataframe`, Vega-Lite specs with
their datasets for `st.vega_lite_chart`, markdown, metrics, widgets with their options, columns, tabs
and expanders in place); it is rerun the same way in the same process. Goal: warm rerun <= 2x its twin
at 200 and at 2,000 schools x 6 years.

For information the JSON also gives the rerun of a stricter floor, the *message replay*: the page's
finished protobuf messages enqueued again (no serialisation of tables or specs, no widget
registration). Per page: cold first run, warm rerun, twin rerun, ratio, the same two reruns as CPU
seconds of this process (steadier than wall-clock time on a busy machine), replay rerun and its ratio,
and `missed` (pages over the goal, by wall-clock time).

    python benchmarks/bench_static_twin.py            # 200 and 2,000 schools -> results/static_twin.json
    python benchmarks/bench_static_twin.py --quick    # 200 schools, 3 reruns -> results/static_twin_quick.json
    python benchmarks/bench_static_twin.py --pages gaps,school --sizes 2000   # a subset
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from _common import ROOT, demo_database, write_results
from _twin import PAGE_SCRIPT, REPLAY_SCRIPT, TWIN_SCRIPT, as_staff, capture, drawn_kinds
from bench_pages import PAGES

GOAL_RATIO = 2.0


def _warm_median(run, repeat: int) -> tuple[float, float]:
    """Median wall-clock and median CPU seconds (this process) of `repeat` reruns. CPU time is what the
    rerun itself costs, little disturbed by other work on a shared machine."""
    walls, cpus = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return statistics.median(walls), statistics.median(cpus)


def _page_app(name: str, params: dict, workdir: Path):
    """The page run as app.py runs it (see `_twin.run_page`), with its URL parameters, by the signed-in
    member of staff of `_twin.STAFF` when one is set."""
    from streamlit.testing.v1 import AppTest

    script = workdir / f"page_{name}.py"
    script.write_text(PAGE_SCRIPT.format(page=str(ROOT / "pages" / f"{name}.py")))
    at = as_staff(AppTest.from_file(str(script), default_timeout=300))
    for key, value in params.items():
        at.query_params[key] = value
    return at


def measure_page(name: str, params: dict, workdir: Path, repeat: int) -> dict:
    """Cold run, warm rerun and the twins' warm reruns of one page. A twin AppTest cannot rerun (e.g. an
    editor's form whose keyed widgets it cannot restore) leaves the page's own figures, with `twin_error`
    saying why its floor is missing and `meets_goal` None."""
    at = _page_app(name, params, workdir)
    start = time.perf_counter()
    at.run()
    cold = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"{name}: {at.exception[0].value}")
    warm, warm_cpu = _warm_median(at.run, repeat)
    page = {"cold_first_run_s": round(cold, 4), "warm_rerun_s": round(warm, 4), "warm_cpu_s": round(warm_cpu, 4)}
    drawn = workdir / f"{name}.pickle"
    kinds = capture(at, drawn)
    os.environ["SSIF_TWIN_FILE"] = str(drawn)
    try:
        twin = _twin_app(workdir / "twin.py", name, kinds, widgets=True)
        twin_s, twin_cpu = _warm_median(twin.run, repeat)
        # The replayed widgets are drawn messages, not registered widgets: rerun with no widget states.
        replay = _twin_app(workdir / "replay.py", name, kinds, widgets=False)
        replay_s, _ = _warm_median(replay._run, repeat)
    except Exception as exc:  # noqa: BLE001 - the page was measured; only its floor is missing
        return {"elements": len(kinds) - 1, **page, "meets_goal": None,
                "twin_error": f"{type(exc).__name__}: {exc}"[:300]}
    ratio = warm / twin_s
    return {"elements": len(kinds) - 1, **page, "twin_rerun_s": round(twin_s, 4), "ratio_to_twin": round(ratio, 2),
            "meets_goal": ratio <= GOAL_RATIO, "twin_cpu_s": round(twin_cpu, 4),
            "cpu_ratio_to_twin": round(warm_cpu / twin_cpu, 2) if twin_cpu else None,
            "replay_rerun_s": round(replay_s, 4), "ratio_to_replay": round(warm / replay_s, 1)}


def _twin_app(script: Path, name: str, kinds: list[str], widgets: bool):
    """A twin script run once (the first run prepares its results); raises unless it drew the same kinds
    of blocks and elements as the page, in the same order."""
    from streamlit.testing.v1 import AppTest

    twin = AppTest.from_file(str(script), default_timeout=300)
    twin.run() if widgets else twin._run()
    if twin.exception:
        raise RuntimeError(f"{name} twin ({script.stem}): {twin.exception[0].value}")
    drawn = drawn_kinds(twin)
    if drawn != kinds:
        first = next((i for i, (a, b) in enumerate(zip(drawn, kinds, strict=False)) if a != b), min(len(drawn), len(kinds)))
        raise RuntimeError(f"{name} twin ({script.stem}) drew {len(drawn)} blocks and elements, the page {len(kinds)}; "
                           f"first difference at #{first}: {drawn[first:first + 1]} against {kinds[first:first + 1]}")
    return twin


def measure(url: str, workdir: Path, repeat: int, only: set[str] | None = None) -> dict:
    import streamlit as st

    from analytics.data import loads, storage

    os.environ["DATABASE_URL"] = url
    st.cache_data.clear()
    st.cache_resource.clear()
    first_school = loads.load_schools(storage.get_engine(url))["school_id"].iloc[0]
    pages = {}
    for name, params in PAGES:
        if only and name not in only:
            continue
        params = {k: (first_school if v is None else v) for k, v in params.items()}
        pages[name] = measure_page(name, params, workdir, repeat)
        print(name, pages[name], flush=True)
    return {"pages": pages, "missed": sorted(n for n, p in pages.items() if p["meets_goal"] is False),
            "no_twin": sorted(n for n, p in pages.items() if p["meets_goal"] is None)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 schools only, 3 reruns")
    parser.add_argument("--repeat", type=int, default=None, help="warm reruns per page (median; default 7)")
    parser.add_argument("--pages", default="", help="comma-separated page names (default: every page)")
    parser.add_argument("--sizes", default="", help="comma-separated school counts (default: 200,2000)")
    args = parser.parse_args(argv)
    sizes = tuple(int(n) for n in args.sizes.split(",")) if args.sizes else (200,) if args.quick else (200, 2000)
    only = set(args.pages.split(",")) if args.pages else None
    repeat = args.repeat or (3 if args.quick else 7)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "twin.py").write_text(TWIN_SCRIPT)
        (workdir / "replay.py").write_text(REPLAY_SCRIPT)
        os.environ["SSIF_TWIN_DIR"] = str(Path(__file__).resolve().parent)
        results = {f"{n}_schools": measure(demo_database(workdir / f"demo-{n}.db", n), workdir, repeat, only)
                   for n in sizes}
    partial = args.quick or only or args.sizes
    write_results("static_twin" + ("_quick" if partial else ""),
                  {"goal": f"warm rerun <= {GOAL_RATIO}x its static twin at 200 and 2,000 schools x 6 years",
                   "repeat": repeat, "results": results})


if __name__ == "__main__":
    main()
