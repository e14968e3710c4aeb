"""Time to build a 10-view data-meeting pack (XLSX, PPTX and ZIP) for one cluster and for the district.

Demo district at 200 schools. Writes benchmarks/results/meeting.json.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import demo_database, write_results

from analytics.data import loads, storage
from analytics.outputs.meeting import ViewSpec, build_pack, deck_bytes, standard_specs, workbook_bytes, zip_bytes

EXTRA_METRICS = ("math_proficient", "chronic_absence", "ela_growth", "math_growth")


def ten_views(cluster: str | None) -> list[ViewSpec]:
    specs = standard_specs(cluster=cluster, year=2025)
    specs += [ViewSpec("rates", f"Rates: {m}", {"cluster": cluster, "year": 2025, "metric": m}) for m in EXTRA_METRICS]
    return specs


def measure(engine, cluster: str | None) -> dict:
    timings = {}
    start = time.perf_counter()
    pack = build_pack(engine, ten_views(cluster), "Benchmark pack")
    timings["build_tables_and_charts_s"] = round(time.perf_counter() - start, 3)
    for name, writer in (("xlsx", workbook_bytes), ("pptx", deck_bytes), ("zip", zip_bytes)):
        start = time.perf_counter()
        size = len(writer(pack))
        timings[f"{name}_s"] = round(time.perf_counter() - start, 3)
        timings[f"{name}_bytes"] = size
    timings["views"] = len(pack.items)
    return timings


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = storage.get_engine(demo_database(Path(tmp) / "demo.db", 200))
        cluster = loads.load_schools(engine)["cluster"].iloc[0]
        write_results("meeting", {"one_cluster": measure(engine, cluster), "district": measure(engine, None)})


if __name__ == "__main__":
    main()
