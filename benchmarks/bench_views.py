"""Time to compute every export view (DESIGN §7) for a whole district at 200 and 2,000 schools.

Floor: `loads.load_metrics` of every metrics row, measured in the same run. Writes
benchmarks/results/views.json.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from _common import best_of, demo_database, write_results

from analytics.data import loads, storage
from analytics.outputs.views import VIEWS, build_view


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (200, 2000):
            engine = storage.get_engine(demo_database(Path(tmp) / f"demo-{n}.db", n))
            floor = best_of(lambda e=engine: loads.load_metrics(e), repeat=2)
            views = {}
            for view in VIEWS:
                seconds = best_of(lambda v=view, e=engine: build_view(e, v, year=2025), repeat=2)
                views[view] = {"seconds": round(seconds, 3), "ratio_to_loading_all_metrics": round(seconds / floor, 2)}
            public = best_of(lambda e=engine: build_view(e, "rates", year=2025, public=True), repeat=2)
            results[f"{n}_schools"] = {"load_all_metrics_s": round(floor, 3), "views": views,
                                       "rates_public_s": round(public, 3)}
    write_results("views", {"goal": "every view within a few seconds at 2,000 schools x 6 years", "results": results})


if __name__ == "__main__":
    main()
