"""Each cluster's restorative-practices estimates as the preparer's last step makes them (DESIGN §3, §8): the
suspension outcomes, the outcomes beyond suspensions and the discipline page's view, cluster after cluster in
the step's order with its shared draws, on a demo database (SQLite, built when missing) or any `--url`. CPU
seconds are given beside wall seconds: other work on the machine hardly moves them. Writes
benchmarks/results/rp_clusters.json.

    python benchmarks/bench_rp_clusters.py --db /tmp/ssif_bench_2000.db               # every cluster
    python benchmarks/bench_rp_clusters.py --url postgresql+psycopg://... --clusters 20 --spread
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
    parser.add_argument("--clusters", type=int, default=0, help="how many clusters (default: every one)")
    parser.add_argument("--spread", action="store_true",
                        help="clusters spread over the whole order instead of the first ones (fewer shared draws)")
    args = parser.parse_args()
    db = args.db or Path(os.environ.get("TMPDIR", "/tmp")) / f"ssif_bench_{args.schools}.db"
    os.environ["DATABASE_URL"] = args.url or demo_database(db, args.schools)

    import streamlit as st

    from analytics.stats.did import shared_draws
    from analytics.stats.rp_impact import clusters_by_design
    from pages.ui import catalog_loaders, data_versions, rp_loaders, rp_views

    st.cache_data.clear()
    st.cache_resource.clear()
    version = data_versions.pinned_versions().imports
    began = time.process_time()
    schools = catalog_loaders._schools(version)
    rp_loaders._rp_rows(version), rp_loaders._rp_metric_panels(version), catalog_loaders._metric_labels(version)
    reads_cpu = time.process_time() - began
    order = clusters_by_design(schools)
    every = max(1, len(order) // args.clusters) if args.clusters and args.spread else 1
    chosen = order[::every][:args.clusters or None]
    cpu = {"impact": 0.0, "beyond": 0.0, "view": 0.0}
    started, started_cpu = time.perf_counter(), time.process_time()
    with shared_draws():
        for cluster in chosen:
            for part, make in (("impact", rp_loaders._rp_impact), ("beyond", rp_loaders._rp_beyond)):
                mark = time.process_time()
                make(version, cluster, None)
                cpu[part] += time.process_time() - mark
            mark = time.process_time()
            rp_views._cluster_rp_view(version, cluster)
            cpu["view"] += time.process_time() - mark
    total_cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    write_results("rp_clusters", {
        "database": os.environ["DATABASE_URL"].split(":")[0], "schools": len(schools), "clusters": len(chosen),
        "of_clusters": len(order), "spread": args.spread, "reads_cpu_s": round(reads_cpu, 2),
        "cpu_s": round(total_cpu, 2), "wall_s": round(wall, 2),
        "cpu_s_per_cluster": round(total_cpu / max(len(chosen), 1), 4),
        "cpu_s_per_cluster_by_part": {k: round(v / max(len(chosen), 1), 4) for k, v in cpu.items()},
        "note": "machines are noisy: figures measured beside other work; CPU seconds include the district's "
                "panels, made by the first cluster",
    })


if __name__ == "__main__":
    main()
