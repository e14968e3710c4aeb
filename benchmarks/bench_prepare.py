"""Each step of the preparer's work list (DESIGN §8): its seconds from empty caches, in the list's order, on a
demo database (SQLite, built when missing) or any `--url`. Results are written after every step, so a list
stopped by `--deadline` still says which steps it reached and what they took. Writes
benchmarks/results/prepare.json.

    python benchmarks/bench_prepare.py --db /tmp/ssif_2000.db --schools 2000
    python benchmarks/bench_prepare.py --url postgresql+psycopg://... --deadline 1200
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from _common import demo_database, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a database URL (default: a SQLite demo database)")
    parser.add_argument("--db", type=Path, help="the SQLite demo database (built when missing)")
    parser.add_argument("--schools", type=int, default=2000)
    parser.add_argument("--deadline", type=float, default=None, help="seconds after which no new step starts")
    args = parser.parse_args()
    db = args.db or Path(os.environ.get("TMPDIR", "/tmp")) / f"ssif_bench_{args.schools}.db"
    url = args.url or demo_database(db, args.schools)
    os.environ["DATABASE_URL"] = url
    import streamlit as st

    from pages.ui import loaders, prepare

    st.cache_data.clear()
    st.cache_resource.clear()
    version = loaders.data_version()
    started, steps = time.perf_counter(), {}
    for step in prepare._plan(version):
        if args.deadline is not None and time.perf_counter() - started > args.deadline:
            steps[step.label] = "not reached"
            continue
        began = time.perf_counter()
        for _ in prepare._run(step, version):
            pass
        steps[step.label] = round(time.perf_counter() - began, 2)
        print(f"{steps[step.label]:8.2f} s  {step.label}", flush=True)
        write_results("prepare", {"database": url.split(":")[0], "steps_s": steps, "partial": True})
    timed = {k: v for k, v in steps.items() if isinstance(v, float)}
    write_results("prepare", {"database": url.split(":")[0], "steps_s": steps, "total_s": round(sum(timed.values()), 1),
                              "slowest": sorted(timed, key=timed.get, reverse=True)[:5],
                              "note": "machines are noisy: figures measured beside other work"})


if __name__ == "__main__":
    main()
