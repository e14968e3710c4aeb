"""The privacy-attack suite on whole releases (DESIGN §3 rule 4, §8: it must recover 0 hidden cells).

For each demo seed and each CRDC-shaped file: decide the district's release, collect everything a
district link, a cluster link and a school link release (every public export view, every year),
run the attacks of `analytics.access.attack` and count hidden cells recovered. The same attack on
the release without complementary suppression (rules 1 and 2 only) is reported beside it, to show
the attack would find what the audit closes.

    python benchmarks/privacy_attack.py            # 5 demo seeds x 60 schools x 4 years, 5 CRDC-shaped files
    python benchmarks/privacy_attack.py --quick    # 2 demo seeds x 30 schools x 3 years, 2 CRDC-shaped files

Writes benchmarks/results/privacy_attack.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import write_results

from analytics import cli
from analytics.access import attack
from analytics.access.release import release_for
from analytics.data import storage
from analytics.data.demo import load_demo


def _scopes(engine) -> list[dict]:
    schools = storage.load_schools(engine)
    return [{}, {"cluster": schools["cluster"].iloc[0]}, {"school": schools["school_id"].iloc[len(schools) // 2]}]


def run_release(engine, label: str) -> dict:
    schools = storage.load_schools(engine)
    truth = attack.truth_cells(engine)
    out: dict = {"case": label, "schools": len(schools)}
    for complementary in (True, False):
        start = time.perf_counter()
        release = release_for(engine, complementary=complementary)
        decided = time.perf_counter() - start
        released = attack.collect(engine, _scopes(engine), release)
        start = time.perf_counter()
        report = attack.attack(released, truth, schools, decision=release if complementary else None)
        key = "release" if complementary else "without_complementary"
        out[key] = {**report.as_dict(), "decide_seconds": round(decided, 2),
                    "attack_seconds": round(time.perf_counter() - start, 2),
                    "cells": len(release.cells), "hidden_by_decision": int((release.cells["state"] != "exact").sum()),
                    "audit_disclosed": release.disclosed}
        out[key]["examples"] = out[key]["examples"][:3]
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
    write_results("privacy_attack", {
        "quick": args.quick, "bar": "0 hidden cells recovered (DESIGN §8)", "recovered_total": total,
        "meets_bar": total == 0,
        "recovered_without_complementary": sum(c["without_complementary"]["recovered"]
                                               + c["without_complementary"]["recovered_n"] for c in cases),
        "cases": cases})


if __name__ == "__main__":
    main()
