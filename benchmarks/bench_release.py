"""Where the release decision spends its time (DESIGN §3 rule 3), per phase, at a given district size.

Times ``build_release`` on ``build_demo(schools, years)``: CPU and wall seconds, split into bounds
propagation (``release_audit.audit``) and the exact integer audit (``release_audit.exact_pinned``), with the exact
rounds, solver calls (integer and linear), cells and n hidden, peak memory (``ru_maxrss``) and a
fingerprint of the released cells (SHA-256 of every cell's state and hidden n: the same fingerprint
means the same release). ``--profile`` adds the top functions of a cProfile run by cumulative time.

    python benchmarks/bench_release.py --schools 200
    python benchmarks/bench_release.py --schools 2000
    python benchmarks/bench_release.py --fingerprints      # 60 x 4, 40 x 3 and 200 x 6 releases only
    python benchmarks/bench_release.py --schools 200 --apart  # as a server decides: in a child process

``--apart`` runs ``release_store.decide_apart`` (what ``release_for`` does with a large district) and reports the
child's CPU seconds and peak memory beside the parent's peak: the parent is what a server process holds.

``--after-import`` times the decision a server makes after an import (``release_for`` in a child process, as
for a large district), on copies of a database (``--db``, only read; else a demo database of ``--schools``
built once under /tmp): first a whole decision from nothing, stored; then for each import, (a) one year's
discipline changed for 20 schools (a corrected file: one fewer out-of-school suspension in every group) and (b)
a whole new year of metrics (the latest year's file a year on, numerators moved by -1, 0 or +1), the decision
*before* (no stored decision to start from: every piece decided, as before pieces were reused) and *after*
(from the stored decision: only the pieces the import changed). Each gives CPU seconds (this process's and
the child's) and wall seconds, the pieces and cells decided, and the released cells' fingerprint: before and
after must give the same one.

    python benchmarks/bench_release.py --after-import --schools 200
    python benchmarks/bench_release.py --after-import --db /tmp/rel/r.db --schools 2000
    python benchmarks/bench_release.py --after-import --db SEEDED.db --seeded --runs after --schools 2000

``--seeded`` starts from a database whose stored decision this code made (a copy of a base database after a
run), so no whole decision is made first; ``--adopt-stored`` from one whose decision was stored before pieces
were fingerprinted (:func:`adopt_stored` adds them, checked against the data); ``--runs`` picks the decisions
to time, ``--imports`` the imports.

Writes benchmarks/results/bench_release_<schools>.json (bench_release_fingerprints.json,
bench_release_<schools>_after_import.json).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import inspect
import io
import pstats
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from _common import copy_of, demo_database, write_results

from analytics.access import exact_audit, release, release_audit, release_cells, release_decide, release_store
from analytics.config import DEFAULT_SETTINGS
from analytics.data import loads, schema, storage
from analytics.data.demo import build_demo
from analytics.data.importer import import_files


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
    rows = cells.reset_index()[[*release_cells.KEYS, "state", "n_hidden"]].astype(str)
    rows = rows.sort_values(release_cells.KEYS)
    return hashlib.sha256(rows.to_csv(index=False).encode()).hexdigest()[:16]


def measure(schools: int, years: int, seed: int, profile: bool) -> dict:
    frames = build_demo(schools=schools, years=years, seed=seed)
    phases = _Phases()
    # Wrapped where they are called: the decision calls both audits, the exact audit the solver.
    originals = (release_decide.audit, release_decide.exact_pinned, release_audit.exact_unique)
    release_decide.audit = phases.timed("propagation", release_decide.audit)
    release_decide.exact_pinned = phases.timed("exact", release_decide.exact_pinned)
    release_audit.exact_unique = phases.keep(release_audit.exact_unique)
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
        release_decide.audit, release_decide.exact_pinned, release_audit.exact_unique = originals
    cells = decided.cells
    out = {"schools": schools, "years": years, "seed": seed, "cells": len(cells),
           "cpu_seconds": round(cpu, 2), "wall_seconds": round(wall, 2),
           "propagation_cpu_seconds": round(phases.seconds["propagation"], 2),
           "exact_cpu_seconds": round(phases.seconds["exact"], 2),
           "exact_rounds": [r.as_dict() for r in phases.reports],
           "solves": sum(r.solves for r in phases.reports), "lp_solves": sum(r.lp_solves for r in phases.reports),
           "hidden": int((cells["state"] != "exact").sum()), "n_hidden": int(cells["n_hidden"].sum()),
           "disclosed": decided.disclosed, "fingerprint": fingerprint(cells),
           # Pieces that ran past release_decide.PIECE_SECONDS are withheld whole: their cells hidden on top.
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
    decided = release_store.decide_apart(frames["schools"], frames["metrics"], frames["discipline"])
    wall = time.perf_counter() - wall
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"schools": schools, "years": years, "seed": seed, "apart": True, "cells": len(decided.cells),
            "withheld": decided.withheld, "wall_seconds": round(wall, 2),
            "child_cpu_seconds": round(child.ru_utime + child.ru_stime, 2),
            "child_peak_rss_mb": round(child.ru_maxrss / 1024),
            "parent_peak_rss_mb_before_deciding": before,
            "parent_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "fingerprint": fingerprint(decided.cells)}


def _child_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed_decision(path: Path) -> tuple[dict, release.Release]:
    """``release_for`` on the database at ``path`` as a server makes it (in a child process), timed."""
    engine = storage.get_engine(f"sqlite:///{path}")
    release_store._CACHE.clear()
    cpu, child, wall = time.process_time(), _child_cpu(), time.perf_counter()
    decided = release_store.release_for(engine, apart=True)
    wall, cpu, child = time.perf_counter() - wall, time.process_time() - cpu, _child_cpu() - child
    engine.dispose()
    return {"wall_seconds": round(wall, 2), "cpu_seconds": round(cpu + child, 2),
            "child_cpu_seconds": round(child, 2), "server_cpu_seconds": round(cpu, 2),
            "withheld": decided.withheld, "cells_in_withheld_pieces": int(decided.cells["piece_withheld"].sum()),
            "fingerprint": fingerprint(decided.cells)}, decided


def _forget_decisions(path: Path) -> None:
    engine = storage.get_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.delete(schema.release_decisions))
    engine.dispose()


def changed_discipline(engine, folder: Path, schools: int = 20) -> Path:
    """The latest year's discipline file of ``schools`` schools, corrected: one fewer out-of-school suspension in
    every group that has one (no count goes above its enrolment or its groups above ALL)."""
    rows = loads.load_discipline(engine)
    year = rows["school_year"].max()
    chosen = np.sort(rows["school_id"].unique())[:: max(1, rows["school_id"].nunique() // schools)][:schools]
    rows = rows[(rows["school_year"] == year) & rows["school_id"].isin(chosen)].copy()
    rows["students_oss"] = (rows["students_oss"] - 1).clip(lower=0)
    path = folder / "discipline_corrected.csv"
    rows.to_csv(path, index=False)
    return path


def new_metrics_year(engine, folder: Path, seed: int = 7) -> Path:
    """The latest year's metrics file a year on: numerators moved by -1, 0 or +1 (within 0..denominator), values
    given as counts recomputed."""
    rows = loads.load_metrics(engine)
    year = rows["school_year"].max()
    rows = rows[rows["school_year"] == year].copy()
    counted = rows["numerator"].notna() & rows["denominator"].notna()
    as_rate = counted & np.isclose(rows["value"], 100 * rows["numerator"] / rows["denominator"])
    step = np.random.default_rng(seed).integers(-1, 2, len(rows))
    rows.loc[counted, "numerator"] = (rows["numerator"] + step).clip(0, rows["denominator"])[counted]
    rows.loc[as_rate, "value"] = 100 * rows["numerator"] / rows["denominator"]
    rows["school_year"] = year + 1
    path = folder / "metrics_new_year.csv"
    rows.to_csv(path, index=False)
    return path


IMPORTS = {"discipline_one_year_20_schools": ("discipline", changed_discipline),
           "metrics_new_year": ("metrics", new_metrics_year)}


def adopt_stored(path: Path) -> None:
    """The decision stored for the database's current data by code that did not fingerprint pieces, stored
    again with its pieces' fingerprints, computed from the data as a decision computes them: the decision this
    code would store (the same rules, checked by the stored fingerprint), without deciding it again."""
    engine = storage.get_engine(f"sqlite:///{path}")
    schools, metrics, discipline = (loads.load_schools(engine), loads.load_metrics(engine),
                                    loads.load_discipline(engine))
    settings = DEFAULT_SETTINGS
    fingerprint = release_store.decision_fingerprint(schools, metrics, discipline, settings, True)
    stored = release_store._stored(engine, fingerprint)
    if stored is None:
        raise RuntimeError(f"{path}: no decision of its data is stored")
    cells, _ = release_cells.release_cells(schools, metrics, discipline)
    cells = cells.reset_index(drop=True)
    parts = release_decide.pieces(cells)
    rounds = inspect.signature(release_decide.decide).parameters["max_rounds"].default
    prints = release_decide.piece_fingerprints(cells, parts, settings, rounds, True, True)
    label = np.empty(len(cells), dtype=np.int64)
    for number, rows in enumerate(parts):
        label[rows] = number
    keys = pd.MultiIndex.from_arrays([cells["unit"], cells["school_year"].astype("float64"), cells["measure"],
                                      cells["student_group"]])
    at = stored.cells.index.get_indexer(keys)
    if (at < 0).any() or len(at) != len(stored.cells):
        raise RuntimeError(f"{path}: the stored decision's cells are not its data's")
    codes = np.empty(len(at), dtype=np.int64)
    codes[at] = label
    kept = stored.cells.drop(columns=["piece"]).assign(piece=pd.Categorical.from_codes(codes, prints))
    _forget_decisions(path)
    release_store._store(engine, fingerprint, release.Release(kept, stored.suspension_derived,
                                                        decided_under=release.decision_terms(settings)))
    engine.dispose()


def measure_after_import(source: Path, schools: int, runs: list[str], seeded: bool, name: str,
                         adopt: bool = False, imports: list[str] | None = None) -> dict:
    """Whole decision, then per import the runs asked for; the results so far are written after each run."""
    with tempfile.TemporaryDirectory(prefix="bench-release-") as folder:
        folder = Path(folder)
        (folder / "base").mkdir()
        base = copy_of(source, folder / "base")
        if adopt:
            adopt_stored(base)
        elif not seeded:
            _forget_decisions(base)  # the whole decision below is stored in the form whose pieces are reused
        seeded = seeded or adopt
        whole, decided = timed_decision(base)
        pieces = set(decided.cells["piece"].cat.categories)
        out = {"schools": schools, "database": str(source), "cells": len(decided.cells), "pieces": len(pieces),
               "whole_decision" if not seeded else "stored_decision_read": whole, "imports": {}}
        print("stored decision read" if seeded else "whole decision", whole, file=sys.stderr, flush=True)
        for change in imports or list(IMPORTS):
            table, make = IMPORTS[change]
            measured = out["imports"].setdefault(change, {})
            for kind in runs:
                (folder / change / kind).mkdir(parents=True)
                path = copy_of(base, folder / change / kind)
                engine = storage.get_engine(f"sqlite:///{path}")
                report = import_files(engine, [make(engine, folder / change / kind)], table=table, max_bytes=1 << 40)
                if not report.ok:
                    raise RuntimeError(report.problems[0].format())
                engine.dispose()
                if kind == "before":
                    _forget_decisions(path)
                measured[kind], decided = timed_decision(path)
                # Pieces the import changed (a fingerprint the whole decision has not): all that "after" decides.
                changed = decided.cells["piece"].isin(list(set(decided.cells["piece"].cat.categories) - pieces))
                every = kind == "before"
                measured[kind].update(pieces_decided=int(decided.cells["piece"].nunique() if every else
                                                         decided.cells.loc[changed, "piece"].nunique()),
                                      cells_decided=int(len(changed) if every else changed.sum()))
                print(change, kind, measured[kind], file=sys.stderr, flush=True)
                for path_ in (folder / change / kind).iterdir():
                    path_.unlink()
                if {"before", "after"} <= set(measured):
                    measured["same_release"] = measured["before"]["fingerprint"] == measured["after"]["fingerprint"]
                    measured["cpu_ratio_after_to_before"] = round(
                        measured["after"]["cpu_seconds"] / measured["before"]["cpu_seconds"], 3)
                write_results(name, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=200)
    parser.add_argument("--years", type=int, default=6)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--fingerprints", action="store_true")
    parser.add_argument("--apart", action="store_true")
    parser.add_argument("--after-import", action="store_true")
    parser.add_argument("--db", type=Path, help="--after-import: the database to copy (never written)")
    parser.add_argument("--runs", nargs="+", choices=["before", "after"], default=["before", "after"],
                        help="--after-import: the decisions to time after each import")
    parser.add_argument("--seeded", action="store_true",
                        help="--after-import: --db already holds its decision as this code stores it (read, not made)")
    parser.add_argument("--imports", nargs="+", choices=list(IMPORTS), help="--after-import: these imports only")
    parser.add_argument("--adopt-stored", action="store_true",
                        help="--after-import: --db holds its decision as stored before pieces were fingerprinted; "
                             "its copy gets them (adopt_stored) instead of a whole decision")
    args = parser.parse_args()
    if args.after_import:
        source = args.db or Path(f"/tmp/bench_release_{args.schools}.db")
        if not args.db:
            demo_database(source, args.schools)
        seeded = args.seeded or args.adopt_stored
        parts = [*args.runs, *(args.imports or [])] if seeded or args.imports else []
        measure_after_import(source, args.schools, args.runs, args.seeded,
                             f"bench_release_{args.schools}_after_import{''.join('_' + p for p in parts)}",
                             args.adopt_stored, args.imports)
        return
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
