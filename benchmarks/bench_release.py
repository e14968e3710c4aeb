"""Where the release decision spends its time (DESIGN §3 rule 3), per phase, at a given district size.

Times ``build_release`` on ``build_demo(schools, years)``: CPU and wall seconds, split into bounds
propagation (``release.audit``) and the exact integer audit (``release.exact_pinned``), with the exact
rounds, solver calls (integer and linear), cells and n hidden, peak memory (``ru_maxrss``) and a
fingerprint of the released cells (SHA-256 of every cell's state and hidden n: the same fingerprint
means the same release). ``--profile`` adds the top functions of a cProfile run by cumulative time.

    python benchmarks/bench_release.py --schools 200
    python benchmarks/bench_release.py --schools 2000
    python benchmarks/bench_release.py --fingerprints      # 60 x 4, 40 x 3 and 200 x 6 releases only
    python benchmarks/bench_release.py --schools 200 --apart  # as a server decides: in a child process

``--apart`` runs ``release.decide_apart`` (what ``release_for`` does with a large district) and reports the
child's CPU seconds and peak memory beside the parent's peak: the parent is what a server process holds.

Writes benchmarks/results/bench_release_<schools>.json (or bench_release_fingerprints.json).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import pstats
import resource
import sys
import time
from collections.abc import Callable

from _common import write_results

from analytics.access import exact_audit, release
from analytics.data.demo import build_demo


class _Phases:
    """Wraps the decision's audits to time them and keep the exact audit's reports."""

    def __init__(self) -> None:
        self.seconds = {"propagation": 0.0, "exact": 0.0}
        self.reports: list[exact_audit.ExactReport] = []

    def timed(self, name: str, fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.process_time() - start
                self.seconds[name] += spent
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
                print(f"{name}: {spent:.1f} CPU-s, peak {rss} MB", file=sys.stderr, flush=True)
        return wrapper

    def keep(self, fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            report = fn(*args, **kwargs)
            self.reports.append(report)
            return report
        return wrapper


def fingerprint(cells) -> str:
    """SHA-256 of every cell's key, state and hidden n, in key order."""
    rows = cells.reset_index()[[*release.KEYS, "state", "n_hidden"]].astype(str)
    rows = rows.sort_values(release.KEYS)
    return hashlib.sha256(rows.to_csv(index=False).encode()).hexdigest()[:16]


def measure(schools: int, years: int, seed: int, profile: bool) -> dict:
    frames = build_demo(schools=schools, years=years, seed=seed)
    phases = _Phases()
    originals = (release.audit, release.exact_pinned, release.exact_unique)
    release.audit = phases.timed("propagation", release.audit)
    release.exact_pinned = phases.timed("exact", release.exact_pinned)
    release.exact_unique = phases.keep(release.exact_unique)
    profiler = cProfile.Profile() if profile else None
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        decided = release.build_release(frames["schools"], frames["metrics"], frames["discipline"])
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        release.audit, release.exact_pinned, release.exact_unique = originals
    cells = decided.cells
    out = {"schools": schools, "years": years, "seed": seed, "cells": len(cells),
           "cpu_seconds": round(cpu, 2), "wall_seconds": round(wall, 2),
           "propagation_cpu_seconds": round(phases.seconds["propagation"], 2),
           "exact_cpu_seconds": round(phases.seconds["exact"], 2),
           "exact_rounds": [r.as_dict() for r in phases.reports],
           "solves": sum(r.solves for r in phases.reports), "lp_solves": sum(r.lp_solves for r in phases.reports),
           "hidden": int((cells["state"] != "exact").sum()), "n_hidden": int(cells["n_hidden"].sum()),
           "disclosed": decided.disclosed, "fingerprint": fingerprint(cells),
           # Pieces that ran past release.PIECE_SECONDS are withheld whole: their cells hidden on top.
           "cells_in_withheld_pieces": int(cells["piece_withheld"].sum()),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    if profiler:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
        out["profile"] = text.getvalue().splitlines()
    return out


def measure_apart(schools: int, years: int, seed: int) -> dict:
    frames = build_demo(schools=schools, years=years, seed=seed)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    wall = time.perf_counter()
    decided = release.decide_apart(frames["schools"], frames["metrics"], frames["discipline"])
    wall = time.perf_counter() - wall
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"schools": schools, "years": years, "seed": seed, "apart": True, "cells": len(decided.cells),
            "withheld": decided.withheld, "wall_seconds": round(wall, 2),
            "child_cpu_seconds": round(child.ru_utime + child.ru_stime, 2),
            "child_peak_rss_mb": round(child.ru_maxrss / 1024),
            "parent_peak_rss_mb_before_deciding": before,
            "parent_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "fingerprint": fingerprint(decided.cells)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=200)
    parser.add_argument("--years", type=int, default=6)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--fingerprints", action="store_true")
    parser.add_argument("--apart", action="store_true")
    args = parser.parse_args()
    if args.apart:
        write_results(f"bench_release_{args.schools}_apart", measure_apart(args.schools, args.years, args.seed))
        return
    if args.fingerprints:
        runs = [measure(s, y, seed, False) for s, y, seed in ((60, 4, 1), (40, 3, 2), (200, 6, 42))]
        write_results("bench_release_fingerprints", {"runs": runs})
        return
    write_results(f"bench_release_{args.schools}", measure(args.schools, args.years, args.seed, args.profile))


if __name__ == "__main__":
    main()
