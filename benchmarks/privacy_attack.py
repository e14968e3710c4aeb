"""The privacy-attack suite on whole releases (DESIGN §3 rule 4, §8: it must recover 0 hidden cells).

For each demo seed and each CRDC-shaped file: decide the district's release, collect everything a
district link, a cluster link and a school link release (every public export view, every year),
run the attacks of `analytics.access.attack` and count hidden cells recovered. The same attack on
the release without complementary suppression (rules 1 and 2 only) is reported beside it, to show
the attack would find what the audit closes. On the full release the attack also runs the exact
audit (`analytics.access.exact_audit`: the integer program, minimum and maximum of every hidden cell
over integers, per connected component); its cells audited, components, largest component and
seconds are reported. `release_speed` times the release decision itself (which runs the same exact
audit on its own release) at 200 and 2,000 schools.

    python benchmarks/privacy_attack.py            # 5 demo seeds x 60 schools x 4 years, 5 CRDC-shaped files
    python benchmarks/privacy_attack.py --quick    # 2 demo seeds x 30 schools x 3 years, 2 CRDC-shaped files

Writes benchmarks/results/privacy_attack.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
from _common import write_results

from analytics import cli
from analytics.access import attack
from analytics.access.release_store import release_for
from analytics.data import loads, storage
from analytics.data.demo import load_demo


def _scopes(engine) -> list[dict]:
    schools = loads.load_schools(engine)
    return [{}, {"cluster": schools["cluster"].iloc[0]}, {"school": schools["school_id"].iloc[len(schools) // 2]}]


def run_release(engine, label: str) -> dict:
    schools = loads.load_schools(engine)
    truth = attack.truth_cells(engine)
    out: dict = {"case": label, "schools": len(schools)}
    for complementary in (True, False):
        start = time.perf_counter()
        release = release_for(engine, complementary=complementary)
        decided = time.perf_counter() - start
        released = attack.collect(engine, _scopes(engine), release)
        start = time.perf_counter()
        # The exact (integer-program) audit runs on the full release; without complementary suppression the
        # interval attack already finds plenty.
        report = attack.attack(released, truth, schools, decision=release if complementary else None,
                               exact=complementary)
        key = "release" if complementary else "without_complementary"
        out[key] = {**report.as_dict(), "decide_seconds": round(decided, 2),
                    "attack_seconds": round(time.perf_counter() - start, 2),
                    "cells": len(release.cells), "hidden_by_decision": int((release.cells["state"] != "exact").sum()),
                    "audit_disclosed": release.disclosed}
        out[key]["examples"] = out[key]["examples"][:3]
    return out


def release_speed(quick: bool) -> list[dict]:
    """CPU seconds to decide a whole district's release (cold: what the first shared link after an import
    waits for), at 200 and 2,000 schools x 6 years, beside the same decision with bounds propagation alone
    (no exact audit; the cells the exact audit hides on top are counted) and a floor measured in the same
    run: reading the same cells into one pandas group-by sum (the pooling every release needs)."""
    from analytics.access.release import build_release
    from analytics.access.release_cells import discipline_cells, metric_cells, pooled_cells
    from analytics.data.demo import build_demo

    out = []
    for size in ([200] if quick else [200, 2000]):
        frames = build_demo(schools=size, years=6, seed=42)
        start = time.process_time()
        release = build_release(frames["schools"], frames["metrics"], frames["discipline"])
        seconds = time.process_time() - start
        start = time.process_time()  # bounds propagation alone, without the exact audit
        propagation = build_release(frames["schools"], frames["metrics"], frames["discipline"], exact=False)
        propagation_seconds = time.process_time() - start
        start = time.process_time()
        counted = frames["metrics"].dropna(subset=["numerator", "denominator"])
        pooled_cells(pd.concat([discipline_cells(frames["discipline"]), metric_cells(counted)]), frames["schools"])
        floor = time.process_time() - start
        hidden = int((release.cells["state"] != "exact").sum())
        out.append({"schools": size, "years": 6, "cells": len(release.cells), "cpu_seconds": round(seconds, 2),
                    "propagation_only_cpu_seconds": round(propagation_seconds, 2),
                    "floor_cpu_seconds": round(floor, 2), "goal_seconds_at_200": 1.5, "hidden": hidden,
                    "hidden_by_exact_audit": hidden - int((propagation.cells["state"] != "exact").sum()),
                    "n_hidden_by_exact_audit": int(release.cells["n_hidden"].sum() - propagation.cells["n_hidden"].sum()),
                    "audit_disclosed": release.disclosed})
        print("release", out[-1], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seeds, size, years, crdc = ([1, 2], 30, 3, [3, 4]) if args.quick else ([1, 2, 3, 4, 5], 60, 4, [3, 4, 5, 6, 7])
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            url = f"sqlite:///{Path(tmp) / f'demo{seed}.db'}"
            engine = storage.get_engine(url)
            storage.create_schema(engine)
            load_demo(engine, schools=size, years=years, seed=seed)
            cases.append(run_release(engine, f"demo seed {seed}"))
            print(cases[-1]["case"], cases[-1]["release"]["recovered"], flush=True)
        for seed in crdc:
            folder = Path(tmp) / f"crdc{seed}"
            folder.mkdir()
            url = f"sqlite:///{folder / 'crdc.db'}"
            import os

            os.environ["DATABASE_URL"] = url
            assert cli.main(["import", *attack.crdc_like_files(folder, seed=seed, schools_n=24)]) == 0
            cases.append(run_release(storage.get_engine(url), f"CRDC-shaped seed {seed}"))
            print(cases[-1]["case"], cases[-1]["release"]["recovered"], flush=True)
    total = sum(c["release"]["recovered"] + c["release"]["recovered_n"] for c in cases)
    exact = [c["release"]["exact_audit"] for c in cases]
    write_results("privacy_attack", {
        "quick": args.quick, "bar": "0 hidden cells recovered (DESIGN §8)", "recovered_total": total,
        "meets_bar": total == 0,
        "exact_audit": {"cells_audited": sum(e["audited"] for e in exact),
                        "components": sum(e["components"] for e in exact),
                        "largest_component": max(e["largest_component"] for e in exact),
                        "recovered": sum(e["recovered"] for e in exact),
                        "undecided": sum(e["undecided"] for e in exact),
                        "seconds": round(sum(e["seconds"] for e in exact), 1)},
        "release_speed": release_speed(args.quick),
        "recovered_without_complementary": sum(c["without_complementary"]["recovered"]
                                               + c["without_complementary"]["recovered_n"] for c in cases),
        "cases": cases})


if __name__ == "__main__":
    main()
