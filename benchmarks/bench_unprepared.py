"""Each page's first view before the preparer has run, each page in a process of its own (DESIGN §8: first view <= 3 s).

What a page opened right after an import or a server restart pays, before the preparer's work list has made the
district's results: each page is opened by a new AppTest session, signed in as the staff editor
(`_twin.sign_in_staff`), in a new Python process with every cache empty, and its first run timed as wall-clock
seconds, as CPU seconds of that process (steadier than wall-clock time on a busy machine) and, on a PostgreSQL
server on this machine, as the server's CPU seconds meanwhile (`bench_import.server_cpu`). Twice: in a fresh
process (`fresh`: the page's modules imported by its first view, as bench_state's cold view does) and in a process
that opened the page once and then emptied every cache (`warm`: a running server, which imports ahead).

    python benchmarks/bench_unprepared.py --pages learning,gaps,data --db /tmp/ssif_bench_2000.db
    python benchmarks/bench_unprepared.py --url postgresql+psycopg://postgres@127.0.0.1:55494/postgres --pages gaps
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, demo_database, write_results

GOAL_S = 3.0


def first_view(url: str, name: str, params: dict, warm: bool) -> dict:
    """The page's first view in this process (run by :func:`main` in a process of its own)."""
    from _twin import sign_in_staff
    from bench_cold import _app, _empty_caches, _page_script
    from bench_import import server_cpu

    from analytics.stats import did

    os.environ["DATABASE_URL"] = url
    os.environ["SSIF_TWIN_DIR"] = str(Path(__file__).resolve().parent)
    sign_in_staff()
    with tempfile.TemporaryDirectory() as tmp:
        script = _page_script(Path(tmp), name)
        if warm:
            _app(script, params).run()
        _empty_caches()
        did._design.cache_clear()  # randomization inference's designs, kept beside Streamlit's caches
        at = _app(script, params)
        server = server_cpu(url)
        server_before = server() if server else 0.0
        started, cpu = time.perf_counter(), time.process_time()
        at.run()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        server_used = server() - server_before if server else None
        if at.exception:
            return {"error": str(at.exception[0].value)[:300]}
    found = {"first_view_s": round(wall, 3), "first_view_cpu_s": round(cpu, 3), "meets_goal": wall <= GOAL_S}
    return found if server_used is None else {**found, "first_view_server_cpu_s": round(server_used, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="the database (default: the SQLite demo district of --schools at --db)")
    parser.add_argument("--db", type=Path, help="the SQLite demo district (built once when missing)")
    parser.add_argument("--schools", type=int, default=2000)
    parser.add_argument("--pages", default="learning,gaps,data", help="comma-separated page names")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # "page:warm|fresh:params-json": one view, this process
    parser.add_argument("-o", "--output", default="unprepared_first_views")
    args = parser.parse_args()
    url = args.url or demo_database(args.db or Path(tempfile.gettempdir()) / f"ssif_bench_{args.schools}.db",
                                    args.schools)
    if args.one:
        name, kind, params = args.one.split(":", 2)
        print(json.dumps(first_view(url, name, json.loads(params), kind == "warm")))
        return
    from bench_state import PAGES

    from analytics.data import loads, storage

    school = loads.load_schools(storage.get_engine(url))["school_id"].iloc[0]
    pages = {}
    for name, params in PAGES:
        if name not in args.pages.split(","):
            continue
        params = {k: school if v is None else v for k, v in params.items()}
        pages[name] = {}
        for kind in ("fresh", "warm"):
            done = subprocess.run([sys.executable, __file__, "--url", url, "--one", f"{name}:{kind}:{json.dumps(params)}"],
                                  cwd=ROOT, capture_output=True, text=True, check=False,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            pages[name][kind] = json.loads(lines[-1]) if lines else {"error": done.stderr[-300:]}
            print(name, kind, pages[name][kind], flush=True)
    write_results(args.output, {"database": url.split(":", 1)[0], "goal": f"first view before the preparer <= {GOAL_S:g} s",
                                "pages": pages, "missed": sorted(n for n, p in pages.items()
                                                                 if not p["warm"].get("meets_goal"))})


if __name__ == "__main__":
    main()
