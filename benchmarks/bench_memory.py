"""Server memory after every page has been opened, and with 20 sessions (DESIGN §8: 512 MiB, 20 sessions within 1.5x one).

Starts `streamlit run app.py` on a SQLite demo district (2,000 schools x 6 years by default), opens every
page once in Debian's Chromium (Playwright), waits until each run has finished, and reads the server's
resident memory (psutil). Then 19 more browser sessions each open the overview, a cluster and a school
of their own, all kept open together, and the memory is read again. Also records the memory of the idle
server before any page (the floor: Python, Streamlit and the imports). `after_every_page_mib` is read once the
server has also finished preparing in the background (`background_done_after_s`; it keeps every school's profile
and opening view), `opened_every_page_mib` right after the last page. Goals: <= 512 MiB after every page,
20 sessions <= 1.5x one session. Writes benchmarks/results/memory.json (or memory-quick.json).

    python benchmarks/bench_memory.py            # 2,000 schools
    python benchmarks/bench_memory.py --quick    # 200 schools, 5 sessions (a smoke run)
    python benchmarks/bench_memory.py --root DIR # measure the app checked out in DIR (before/after)
    python benchmarks/bench_memory.py --malloc-arenas 0   # the C library's default arenas, not the README's 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import load_harness
from _common import ROOT, demo_database, write_results
from load_harness import BROWSER_ARGS, CHROMIUM

GOAL_MIB = 512
GOAL_SESSIONS_RATIO = 1.5


def _rss_mib(pid: int) -> float:
    import psutil

    return round(psutil.Process(pid).memory_info().rss / 2**20, 1)


def _settle(page, timeout_s: float = 300) -> float | None:
    """Wait for the page title, then until the script run has finished; seconds waited (None: timed out,
    the page is then measured as it stands)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    start = time.perf_counter()
    try:
        page.wait_for_selector("[data-testid=stMain] h1", timeout=timeout_s * 1000)
        page.wait_for_timeout(400)
        page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')",
                               timeout=timeout_s * 1000)
    except PlaywrightTimeout:
        return None
    return round(time.perf_counter() - start, 2)


def _wait_idle(pid: int, timeout_s: float, window_s: float = 10, idle_percent: float = 5) -> float | None:
    """Wait until the server has used under `idle_percent` of a core for `window_s` seconds (the preparer's
    background steps, every school's profile and opening views among them, are then done); seconds waited,
    or None when it was still busy after `timeout_s`."""
    import psutil

    process, start = psutil.Process(pid), time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        if process.cpu_percent(interval=window_s) < idle_percent:
            return round(time.perf_counter() - start, 1)
    return None


def _every_page(school: str, cluster: str) -> list[str]:
    return ["", f"cluster?cluster={cluster}", f"school?school={school}", "gaps", "discipline",
            f"discipline?cluster={cluster}", "learning", "meeting", "changes", "plans", "cycles", "data"]


def measure(root: Path, url: str, sessions: int, arenas: int = 2, wait_s: float = 1800) -> dict:
    from playwright.sync_api import sync_playwright

    from analytics.data import storage

    schools = storage.load_schools(storage.get_engine(url))
    ids, clusters = schools["school_id"].tolist(), sorted(schools["cluster"].dropna().unique())
    # The README's server command sets MALLOC_ARENA_MAX=2 (0 here: the C library's default, one arena per thread).
    app = load_harness.start_app(url, root=root, extra_env={"MALLOC_ARENA_MAX": str(arenas)} if arenas else None)
    proc, base = app.proc, app.base
    try:
        idle = _rss_mib(proc.pid)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            first = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            pages = {}
            for path in _every_page(ids[0], clusters[0]):
                first.goto(f"{base}/{path}")
                pages[path or "overview"] = {"seconds": _settle(first), "rss_mib": _rss_mib(proc.pid)}
                print(path or "overview", pages[path or "overview"], file=sys.stderr, flush=True)
            opened = _rss_mib(proc.pid)
            # The preparer goes on in the background (every school's profile and opening view, each cluster's
            # restorative-practices estimates): what it keeps counts towards a server's memory too.
            waited = _wait_idle(proc.pid, wait_s) if wait_s else None
            one_session = max(opened, _rss_mib(proc.pid))
            others = []
            for i in range(1, sessions):
                tab = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                for path in ("", f"cluster?cluster={clusters[i % len(clusters)]}", f"school?school={ids[i]}"):
                    tab.goto(f"{base}/{path}")
                    _settle(tab)
                others.append(tab)
            all_sessions = _rss_mib(proc.pid)
            browser.close()
    finally:
        app.close()
    return {"malloc_arena_max": arenas or "default", "idle_server_mib": idle, "after_every_page_mib": one_session,
            "opened_every_page_mib": opened, "background_done_after_s": waited, "sessions": sessions,
            "after_sessions_mib": all_sessions, "sessions_ratio": round(all_sessions / one_session, 2),
            "meets_512_mib": one_session <= GOAL_MIB,
            "meets_sessions_ratio": all_sessions / one_session <= GOAL_SESSIONS_RATIO, "pages": pages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 schools and 5 sessions")
    parser.add_argument("--root", type=Path, default=ROOT, help="app checkout to measure (default: this one)")
    parser.add_argument("--database", type=Path, help="demo SQLite file to reuse (built when missing)")
    parser.add_argument("--malloc-arenas", type=int, default=2,
                        help="MALLOC_ARENA_MAX of the server, as the README runs it (0: the C library's default)")
    parser.add_argument("--wait", type=float, default=1800,
                        help="seconds to wait for the server's background preparation after every page (0: none)")
    args = parser.parse_args()
    n_schools, sessions = (200, 5) if args.quick else (2000, 20)
    with tempfile.TemporaryDirectory() as tmp:
        url = demo_database(args.database or Path(tmp) / f"demo-{n_schools}.db", n_schools)
        result = measure(args.root.resolve(), url, sessions, args.malloc_arenas, args.wait)
    write_results("memory-quick" if args.quick else "memory", {
        "goal": f"<= {GOAL_MIB} MiB after every page at 2,000 schools; {sessions} sessions <= "
                f"{GOAL_SESSIONS_RATIO}x one session",
        "schools": n_schools, "root": str(args.root), "results": result})


if __name__ == "__main__":
    main()
