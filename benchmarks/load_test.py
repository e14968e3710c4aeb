"""20 browser sessions clicking through every shared view while imports land, on PostgreSQL (DESIGN §8).

Writes JSON: views opened, errors (must be 0), view times, imports that landed during the run, and the
server's memory before and after. `--quick` runs 3 sessions once through. The browsers take only the CPU the
server leaves, as users' browsers on their own machines would (`load_harness.lower_browser_priority`);
`--browsers-compete` runs them at the server's priority.

    python benchmarks/load_test.py [--sessions 20] [--rounds 2] [--schools 200] [--browsers-compete] [--quick] [-o FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import load_harness  # noqa: E402

from analytics.data import loads, storage  # noqa: E402
from analytics.data.demo import load_demo  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--schools", type=int, default=200)
    parser.add_argument("--imports", type=int, default=3)
    parser.add_argument("--browsers-compete", action="store_true",
                        help="run the browsers at the server's priority, on its cores")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("-o", "--output", default="benchmarks/results/load_test.json")
    args = parser.parse_args()
    if args.quick:
        args.sessions, args.rounds, args.schools = 3, 1, 40
    server = load_harness.PostgresServer(load_harness.pg_bindir()).init()
    engine = storage.get_engine(server.url)
    started = time.monotonic()
    load_demo(engine, schools=args.schools)
    demo_s = time.monotonic() - started
    app = load_harness.start_app(server.url)
    try:
        # One session first, to record what a single session costs in memory.
        single = load_harness.load_run(engine, app, sessions=1, rounds=1, files=[], imports=0,
                                        browsers_yield=not args.browsers_compete)
        rows = loads.load_discipline(engine)
        some = rows[rows["school_id"].isin(sorted(rows["school_id"].unique())[:20])]
        files = [("discipline.csv", some.to_csv(index=False).encode())]
        result = load_harness.load_run(engine, app, sessions=args.sessions, rounds=args.rounds, files=files,
                                       imports=args.imports, deadline_s=1800, postgres_dir=server.datadir,
                                       browsers_yield=not args.browsers_compete)
    finally:
        app.close()
        engine.dispose()
        server.destroy()
    result.update({"database": "postgresql", "schools": args.schools, "demo_load_s": round(demo_s, 1),
                   "single_session_rss_mib": single["server_rss_after_mib"],
                   "memory_ratio_vs_single": round(result["server_rss_after_mib"] / single["server_rss_after_mib"], 2)})
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
