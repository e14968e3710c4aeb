"""First view of every page after an import, with and without computing ahead (DESIGN §8: first view within 3 s and 5x its warm rerun).

For each page (`bench_state.PAGES`, run as app.py runs it: `_twin.run_page`), in one warm process (modules
imported, as in a running server): every cache is emptied, as an import leaves them, and the page's first
view is timed (`cold_s`); the caches are emptied again, the preparer's work list (`pages/ui/prepare.py`)
is run as the server runs it after an import (`prepare_s`, measured once), and the first view of a new
session is timed again (`prepared_s`); then a warm rerun (`warm_s`). Goals: first view <= 3 s and <= 5x
the warm rerun at 2,000 schools. Staff views (no privacy release on screen); the release the shared links
need is part of `prepare_s`.

Beside each page, its floor: the page's static twin (`_twin.draw`, the same elements drawn from results
made beforehand) opened by a new session (`twin_cold_s`) and rerun (`twin_warm_s`). What a new session
costs Streamlit itself (widgets registered, tables and specs serialised) is in `twin_cold_s`; a page whose
prepared first view misses 5x its warm rerun is named with that floor.

`--profile DIR` writes cProfile statistics of each page's prepared first view and warm rerun to DIR
(`<page>_prepared.prof`, `<page>_warm.prof`) and prints the functions the first view spends the most
time in that the rerun does not.

`--repeat N` also opens N - 1 other schools (school page) and clusters (cluster and discipline pages) after the same
preparation, each a first view of its own, and gives the medians.

`--after-edit` times, instead, each page's first view from empty caches (`cold_s`, which makes every result the
view reads), then saves a PDSA cycle's notes (a workspace edit, on a copy of the database: the original is never
written) and times a new session's first view right after it, with no preparation (`after_edit_s`): results
read from imported tables alone are still cached, so a page that reads nothing else costs about its warm rerun
(`warm_s`) plus a new session's cost, not `cold_s` again. Each page gets an edit of its own.

    python benchmarks/bench_cold.py [--schools 2000] [--quick] [--pages overview,gaps] [--profile DIR] [--prepared-only]
        [--repeat N] [--after-edit] [-o FILE]
"""

from __future__ import annotations

import argparse
import functools
import os
import pstats
import statistics
import tempfile
import time
from pathlib import Path

from _common import ROOT, copy_of, demo_database, save_a_pdsa_note, write_results
from _twin import PAGE_SCRIPT, TWIN_SCRIPT, as_staff, capture
from bench_state import PAGES

GOAL_S, GOAL_RATIO = 3.0, 5.0


def _app(script: Path, params: dict):
    """A new session of `script`. Streamlit's component discovery (once per server, at start) is shared by
    every session here: AppTest would otherwise repeat it for each new session (about 2 s). It runs as the
    signed-in member of staff of `_twin.STAFF` when one is set."""
    from streamlit.testing.v1 import AppTest

    at = as_staff(AppTest.from_file(str(script), default_timeout=600))
    at._bidi_component_manager = _components()
    for key, value in params.items():
        at.query_params[key] = value
    return at


@functools.cache
def _components():
    from streamlit.components.v2.component_manager import BidiComponentManager

    manager = BidiComponentManager()
    manager.discover_and_register_components(start_file_watching=False)
    return manager


def _timed(at, profile: Path | None = None) -> float:
    """Seconds of one run of `at` (a first view when `at` is new); the page's run on the script thread is
    profiled to `profile` when given (`_twin.run_page`)."""
    if profile:
        os.environ["SSIF_PROFILE_TO"] = str(profile)
    try:
        started = time.perf_counter()
        at.run()
        seconds = time.perf_counter() - started
    finally:
        os.environ.pop("SSIF_PROFILE_TO", None)
    if at.exception:
        raise RuntimeError(f"{at.exception[0].value}")
    return seconds


def _page_script(workdir: Path, name: str) -> Path:
    """A script that runs page `name` as app.py runs it (`_twin.run_page`)."""
    script = workdir / f"page_{name}.py"
    script.write_text(PAGE_SCRIPT.format(page=str(ROOT / "pages" / f"{name}.py")))
    return script


def _empty_caches() -> None:
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def _prepare() -> float:
    from pages.ui import data_versions, prepare

    started = time.perf_counter()
    prepare.prepare_now(data_versions.pinned_versions())
    return time.perf_counter() - started


def _only_first(prepared: Path, warm: Path, top: int = 12) -> list[str]:
    """The functions the first view spends most cumulative time in beyond the warm rerun."""
    first, rerun = pstats.Stats(str(prepared)).stats, pstats.Stats(str(warm)).stats  # type: ignore[attr-defined]
    extra = {fn: s[3] - rerun.get(fn, (0, 0, 0, 0))[3] for fn, s in first.items()}
    return [f"{seconds:.3f} s {Path(fn[0]).name}:{fn[1]}({fn[2]})"
            for fn, seconds in sorted(extra.items(), key=lambda kv: -kv[1])[:top]]


def measure_page(name: str, params: dict, workdir: Path, profile: Path | None, cold_too: bool = True) -> dict:
    script = _page_script(workdir, name)
    cold = None
    if cold_too:
        _empty_caches()
        cold = _timed(_app(script, params))
        _empty_caches()
        _prepare()
    at = _app(script, params)
    prepared = _timed(at, profile / f"{name}_prepared.prof" if profile else None)
    warm = _timed(at, profile / f"{name}_warm.prof" if profile else None)
    # The floor: the twin drawn by a new session (its results decoded by an earlier one), then rerun.
    os.environ["SSIF_TWIN_FILE"] = str(workdir / f"{name}.pickle")
    out = {"cold_s": round(cold, 3) if cold is not None else None, "prepared_s": round(prepared, 3),
           "warm_s": round(warm, 3),
           "prepared_ratio_to_warm": round(prepared / warm, 1),
           "meets_goal": prepared <= GOAL_S and prepared <= GOAL_RATIO * warm}
    try:
        capture(at, workdir / f"{name}.pickle")
        _timed(_app(workdir / "twin.py", {}))
        twin = _app(workdir / "twin.py", {})
        twin_cold, twin_warm = _timed(twin), _timed(twin)
    except Exception as exc:  # noqa: BLE001 - AppTest cannot always rerun a twin's keyed widgets: no floor then
        out["twin_error"] = f"{type(exc).__name__}: {exc}"[:200]
    else:
        out.update(twin_cold_s=round(twin_cold, 3), twin_warm_s=round(twin_warm, 3),
                   twin_cold_ratio_to_warm=round(twin_cold / twin_warm, 1))
    if profile:
        out["first_view_only"] = _only_first(profile / f"{name}_prepared.prof", profile / f"{name}_warm.prof")
    return out


def others(name: str, params: dict, schools, n: int) -> list[dict]:
    """`n - 1` more views of a page that shows one school or one cluster: other schools or clusters, spread over
    the district (a second session of the same view would only read what the first one drew)."""
    if n <= 1:
        return []
    key = "school" if "school" in params else "cluster" if "cluster" in params else None
    if key is None:
        return []
    names = list(schools["school_id"]) if key == "school" else sorted(schools["cluster"].dropna().unique())
    names = [v for v in names if v != params[key]]
    step = max(len(names) // (n - 1), 1)
    return [{**params, key: v} for v in names[::step][:n - 1]]


def repeated(name: str, views: list[dict], workdir: Path, first: dict) -> dict:
    """Prepared first view and warm rerun of each of `views` beside the page's own; their medians."""
    script = _page_script(workdir, name)
    firsts, warms = [first["prepared_s"]], [first["warm_s"]]
    for params in views:
        at = _app(script, params)
        firsts.append(round(_timed(at), 3))
        warms.append(round(_timed(at), 3))
    median_first, median_warm = statistics.median(firsts), statistics.median(warms)
    return {"views": len(firsts), "prepared_s": firsts, "warm_s": warms, "median_prepared_s": median_first,
            "median_warm_s": median_warm, "median_ratio_to_warm": round(median_first / median_warm, 1),
            "median_meets_goal": median_first <= GOAL_S and median_first <= GOAL_RATIO * median_warm}


def after_edit(name: str, params: dict, workdir: Path, url: str) -> dict:
    """A page's first view from empty caches and its warm rerun; then a workspace edit and a new session's first
    view right after it (nothing prepared in between)."""
    script = _page_script(workdir, name)
    _empty_caches()
    at = _app(script, params)
    cold, warm = _timed(at), _timed(at)
    edited = save_a_pdsa_note(url)
    after = _timed(_app(script, params))
    return {"cold_s": round(cold, 3), "warm_s": round(warm, 3), "edited_cycle": edited,
            "after_edit_s": round(after, 3), "after_edit_ratio_to_cold": round(after / cold, 2)}


def measure(url: str, workdir: Path, only: set[str] | None, profile: Path | None, cold_too: bool = True,
            repeat: int = 1, edit: bool = False) -> dict:
    from analytics.data import loads, storage

    os.environ["DATABASE_URL"] = url
    os.environ["SSIF_TWIN_DIR"] = str(Path(__file__).resolve().parent)
    (workdir / "twin.py").write_text(TWIN_SCRIPT)
    schools = loads.load_schools(storage.get_engine(url))
    first_school = schools["school_id"].iloc[0]
    pages = [(name, {k: first_school if v is None else v for k, v in params.items()}) for name, params in PAGES
             if not only or name in only]
    for name, params in pages:  # a warm process: every module imported, as in a running server
        _timed(_app(_page_script(workdir, name), params))
    if edit:
        return {"pages": {name: after_edit(name, params, workdir, url) for name, params in pages}}
    _empty_caches()
    prepare_s = _prepare()
    out = {}
    for name, params in pages:
        try:
            out[name] = measure_page(name, params, workdir, profile, cold_too)
            if views := others(name, params, schools, repeat):
                out[name]["repeated"] = repeated(name, views, workdir, out[name])
        except Exception as exc:  # noqa: BLE001 - one page's failure is a result, the others still run
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        print(name, out[name], flush=True)
    _empty_caches()
    return {"prepare_s": round(prepare_s, 2), "pages": out,
            "missed": sorted(name for name, page in out.items() if not page.get("meets_goal"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="200 schools")
    parser.add_argument("--db", type=Path, help="reuse (or build) the demo database at this path")
    parser.add_argument("--pages", default="", help="comma-separated page names (default: every page)")
    parser.add_argument("--profile", type=Path, help="write cProfile statistics of each first view here")
    parser.add_argument("--prepared-only", action="store_true",
                        help="prepare once and time each page's prepared first view and rerun (no cold views: a "
                             "preparation per page takes minutes at 2,000 schools on a busy machine)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="views of other schools and clusters for the school, cluster and discipline pages (medians)")
    parser.add_argument("--after-edit", action="store_true",
                        help="time each page's first view from empty caches, then right after a workspace edit "
                             "(on a copy of the database; no preparation)")
    parser.add_argument("-o", "--output", default="cold_after_import")
    args = parser.parse_args()
    schools = 200 if args.quick else args.schools
    db = args.db or Path(os.environ.get("TMPDIR", "/tmp")) / f"ssif_bench_{schools}.db"
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = demo_database(db, schools)
        if args.after_edit:
            url = f"sqlite:///{copy_of(db, Path(tmp))}"
        result = measure(url, Path(tmp), set(args.pages.split(",")) if args.pages else None,
                         args.profile, not args.prepared_only, args.repeat, args.after_edit)
    write_results(args.output, {"schools": schools, "database": "sqlite",
                                "goal": f"first view after an import <= {GOAL_S:g} s and <= {GOAL_RATIO:g}x its "
                                        "warm rerun", **result})


if __name__ == "__main__":
    main()
