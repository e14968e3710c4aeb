"""Shared helpers for the benchmark scripts: demo databases, best-of timing, JSON output."""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Fastest of `repeat` runs in seconds (the least disturbed by other work on the machine)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def demo_database(path: Path, schools: int) -> str:
    """A SQLite demo district of the given size at `path` (built once and reused)."""
    from analytics.data import storage
    from analytics.data.demo import load_demo

    url = f"sqlite:///{path}"
    if not path.exists():
        load_demo(storage.get_engine(url), schools=schools)
    return url


def copy_of(path: Path, directory: Path) -> Path:
    """A copy of the SQLite database at `path` in `directory`, read through SQLite's backup (the original is only
    read: a benchmark that writes, e.g. a workspace edit, writes the copy)."""
    import sqlite3

    target = directory / path.name
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    return target


def save_a_pdsa_note(url: str) -> str:
    """A workspace edit as an editor makes it: the first PDSA cycle's "Do" notes saved (one records.save)."""
    from analytics.data import storage
    from analytics.workspace import records

    engine = storage.get_engine(url)
    cycle = records.load(engine, "pdsa_cycles").iloc[0].to_dict()
    records.save(engine, "pdsa_cycles", {**cycle, "do_notes": f"{cycle.get('do_notes') or ''} (seen again)"},
                 int(cycle["version"]), "benchmark")
    return str(cycle["cycle_id"])


def write_results(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()}, **payload}
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(payload, indent=2))
    print(json.dumps(payload, indent=2))
    return out
