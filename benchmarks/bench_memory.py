"""Server memory after every page has been opened, and with 20 sessions (DESIGN §8: 512 MiB, 20 sessions within 1.5x one).

Starts `streamlit run app.py` on a SQLite demo district (2,000 schools x 6 years by default), opens every
page once in Debian's Chromium (Playwright), waits until each run has finished, and reads the server's
resident memory (psutil). Then 19 more browser sessions each open the overview, a cluster and a school
of their own, all kept open together, and the memory is read again. Also records the memory of the idle
server before any page (the floor: Python, Streamlit and the imports). `opened_every_page_mib` is read right
after the last page, `prepared_mib` once the server has also finished preparing in the background (every
school's profile and opening view, each cluster's restorative-practices estimates), and `after_every_page_mib`
is the larger of the two. The end of the preparation is the preparer's own account, asked through a probe
thread in the server (`benchmarks/_memory_probe.py`): its version prepared to the end, with its seconds and
each step's (`preparer_seconds`, `preparer_steps`); a checkout without a preparer is waited for until its CPU
is idle instead (`waited_by`). `--breakdown` also records what the server's memory holds once prepared (by
kind, the C heap, Python's allocator, every cache's entries and sizes); it is taken before the sessions,
whose figures then include what measuring left. Goals: <= 512 MiB after every page, 20 sessions <= 1.5x one
session. Writes benchmarks/results/memory.json (or memory-quick.json).

    python benchmarks/bench_memory.py            # 2,000 schools
    python benchmarks/bench_memory.py --quick    # 200 schools, 5 sessions (a smoke run)
    python benchmarks/bench_memory.py --root DIR # measure the app checked out in DIR (before/after)
    python benchmarks/bench_memory.py --breakdown --database /tmp/demo-2000.db   # and what the memory holds
    python benchmarks/bench_memory.py --malloc-arenas 0   # the C library's default arenas, not the README's 2
    python benchmarks/bench_memory.py --mmap-threshold 0  # the C library's growing mmap threshold, not 128 KiB
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import load_harness
from _common import ROOT, demo_database, write_results
from load_harness import BROWSER_ARGS, CHROMIUM

GOAL_MIB = 512
GOAL_SESSIONS_RATIO = 1.5
PROBE = Path(__file__).resolve().parent / "_memory_probe.py"
NO_PREPARER_S = 60  # a server whose probe finds no preparer this long after every page has none: idle CPU then


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


def _open(page, url: str) -> bool:
    """Go to `url` (up to three minutes: a busy machine's server answers slowly); False when it timed out (the
    run goes on and counts it)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.goto(url, timeout=180_000)
    except PlaywrightTimeout:
        return False
    return True


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


def _ask(directory: Path, question: str, timeout_s: float = 600) -> dict:
    """The server's probe's answer to `question` ({} when it gave none in time)."""
    answer = directory / "answer.json"
    answer.unlink(missing_ok=True)
    (directory / "ask").write_text(question)
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if answer.exists():
            return json.loads(answer.read_text())
        time.sleep(0.1)
    return {}


def _wait_prepared(directory: Path, pid: int, timeout_s: float) -> tuple[float | None, str, dict]:
    """Wait until the preparer has prepared the current data version to the end (its own account, through the
    probe); seconds waited (None: not within `timeout_s`), how the end was told, and the preparer's state. A
    server with no preparer to ask is waited for by idle CPU (:func:`_wait_idle`)."""
    start = time.perf_counter()
    while (waited := time.perf_counter() - start) < timeout_s:
        state = _ask(directory, "state", 60)
        if state.get("done"):
            return round(waited, 1), "preparer", state
        if not state.get("found") and waited > NO_PREPARER_S:
            return _wait_idle(pid, timeout_s - waited), "idle CPU", state
        time.sleep(2)
    return None, "preparer", state


def _every_page(school: str, cluster: str) -> list[str]:
    return ["", f"cluster?cluster={cluster}", f"school?school={school}", "gaps", "discipline",
            f"discipline?cluster={cluster}", "learning", "meeting", "changes", "plans", "cycles", "data"]


def measure(root: Path, url: str, sessions: int, arenas: int = 2, wait_s: float = 1800,
            breakdown: bool = False, mmap_threshold: int = 131072) -> dict:
    from playwright.sync_api import sync_playwright

    from analytics.data import loads, storage

    schools = loads.load_schools(storage.get_engine(url))
    ids, clusters = schools["school_id"].tolist(), sorted(schools["cluster"].dropna().unique())
    probe = Path(tempfile.mkdtemp(prefix="memory-probe-"))
    # The README's server command sets MALLOC_ARENA_MAX=2 (0 here: the C library's default, one arena per thread).
    env = {"SSIF_MEMORY_PROBE": str(probe), **({"MALLOC_ARENA_MAX": str(arenas)} if arenas else {}),
           **({"MALLOC_MMAP_THRESHOLD_": str(mmap_threshold)} if mmap_threshold else {})}
    app = load_harness.start_app(url, root=root, extra_env=env, launcher=(str(PROBE),))
    proc, base = app.proc, app.base
    held = {}
    try:
        idle = _rss_mib(proc.pid)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            first = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            pages = {}
            timeouts = 0
            for path in _every_page(ids[0], clusters[0]):
                timeouts += not _open(first, f"{base}/{path}")
                pages[path or "overview"] = {"seconds": _settle(first), "rss_mib": _rss_mib(proc.pid)}
                print(path or "overview", pages[path or "overview"], file=sys.stderr, flush=True)
            opened = _rss_mib(proc.pid)
            # The preparer goes on in the background (every school's profile and opening view, each cluster's
            # restorative-practices estimates): what it keeps counts towards a server's memory too.
            waited, waited_by, state = _wait_prepared(probe, proc.pid, wait_s) if wait_s else (None, "none", {})
            prepared = _rss_mib(proc.pid)
            print("prepared", prepared, "MiB after", waited, "s", file=sys.stderr, flush=True)
            one_session = max(opened, prepared)
            if breakdown:
                held = _ask(probe, "breakdown")
                print("breakdown", json.dumps(held), file=sys.stderr, flush=True)  # kept whatever happens next
            others = []
            for i in range(1, sessions):
                tab = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                for path in ("", f"cluster?cluster={clusters[i % len(clusters)]}", f"school?school={ids[i]}"):
                    timeouts += not _open(tab, f"{base}/{path}")
                    _settle(tab)
                others.append(tab)
            all_sessions = _rss_mib(proc.pid)
            browser.close()
    finally:
        app.close()
        shutil.rmtree(probe, ignore_errors=True)
    return {"malloc_arena_max": arenas or "default", "malloc_mmap_threshold": mmap_threshold or "default", "idle_server_mib": idle, "after_every_page_mib": one_session,
            "opened_every_page_mib": opened, "prepared_mib": prepared, "background_done_after_s": waited,
            "waited_by": waited_by, "preparer_seconds": state.get("seconds"),
            "preparer_steps": state.get("step_seconds"), "preparer_failed": state.get("failed"), "sessions": sessions,
            "after_sessions_mib": all_sessions, "sessions_ratio": round(all_sessions / one_session, 2),
            "meets_512_mib": one_session <= GOAL_MIB,
            "meets_sessions_ratio": all_sessions / one_session <= GOAL_SESSIONS_RATIO, "timeouts": timeouts,
            "pages": pages,
            **({"breakdown": held} if breakdown else {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 schools and 5 sessions")
    parser.add_argument("--root", type=Path, default=ROOT, help="app checkout to measure (default: this one)")
    parser.add_argument("--database", type=Path, help="demo SQLite file to reuse (built when missing)")
    parser.add_argument("--malloc-arenas", type=int, default=int(load_harness.SERVER_MALLOC["MALLOC_ARENA_MAX"]),
                        help="MALLOC_ARENA_MAX of the server, as the README runs it (0: the C library's default)")
    parser.add_argument("--mmap-threshold", type=int,
                        default=int(load_harness.SERVER_MALLOC["MALLOC_MMAP_THRESHOLD_"]),
                        help="MALLOC_MMAP_THRESHOLD_ of the server, as the README runs it (0: the C library's "
                             "threshold, which grows with the largest block freed)")
    parser.add_argument("--wait", type=float, default=1800,
                        help="seconds to wait for the server's background preparation after every page (0: none)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also record what the server's memory holds once prepared (before the sessions)")
    args = parser.parse_args()
    n_schools, sessions = (200, 5) if args.quick else (2000, 20)
    with tempfile.TemporaryDirectory() as tmp:
        url = demo_database(args.database or Path(tmp) / f"demo-{n_schools}.db", n_schools)
        result = measure(args.root.resolve(), url, sessions, args.malloc_arenas, args.wait, args.breakdown,
                         args.mmap_threshold)
    write_results("memory-quick" if args.quick else "memory", {
        "goal": f"<= {GOAL_MIB} MiB after every page at 2,000 schools; {sessions} sessions <= "
                f"{GOAL_SESSIONS_RATIO}x one session",
        "schools": n_schools, "root": str(args.root), "results": result})


if __name__ == "__main__":
    main()
